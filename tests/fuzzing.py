"""Fuzzing harness for the vampnet ops: valid feeds per op, then random mutations of shapes, dtypes, contents,
attributes and node arity. Every case must end in a result or a clean ORT error (never a crash or a hang).

Used by tests/test_fuzz_ops.py (short run in CI) and scripts/fuzz_ops.py (long local run). An op is covered once
it has an entry in the case table (tests/op_cases.py): SPECS is derived from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import vampnet_ort
from op_cases import CASES, OpCase
from vampnet_ort import ops

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """What the fuzzer needs of an op, all derived from its entry of the case table (tests/op_cases.py) and its
    contract: input and output names and types, attributes and which of them are ints."""

    case: OpCase

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def outputs(self) -> tuple[tuple[str, int], ...]:  # (name, TensorProto dtype)
        return tuple((name, _ONNX_TYPE[dtype]) for name, dtype in self.case.output_types())

    @property
    def int_attributes(self) -> tuple[str, ...]:  # attributes the fuzzer may corrupt with non-ints
        return self.case.int_attributes()

    def make_feeds(self, rng: np.random.Generator) -> tuple[Feeds, dict[str, object]]:
        """A valid set of inputs and the attributes that go with them."""
        dims = self.case.random_dims(rng)
        return self.case.feeds(rng, dims), dict(self.case.attributes(dims))


_ONNX_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
              np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.uint8): TensorProto.UINT8}

# Every op of the contract, through its case-table entry (tests/test_contract.py checks that none is missing).
SPECS: dict[str, OpSpec] = {name: OpSpec(case) for name, case in CASES.items()}


def build_model(spec: OpSpec, feeds: Feeds, attributes: Mapping[str, object], input_names: list[str]) -> bytes:
    """Model with fully dynamic input shapes (rank taken from the feeds) so ORT defers every check to the kernel."""
    inputs = [helper.make_tensor_value_info(n, _ONNX_TYPE[feeds[n].dtype], [None] * feeds[n].ndim)
              for n in input_names if n in feeds]
    node = helper.make_node(spec.name, input_names, [n for n, _ in spec.outputs], domain=ops.DOMAIN, **attributes)
    graph = helper.make_graph([node], "fuzz", inputs,
                              [helper.make_tensor_value_info(n, t, None) for n, t in spec.outputs])
    model = helper.make_model(graph, opset_imports=ops.opset_imports(), ir_version=ops.IR_VERSION,
                              functions=ops.used_functions(graph))
    return model.SerializeToString()


MUTATIONS = ("none", "dim", "rank", "dtype", "nan", "inf", "huge_int", "negative_int", "zero_dim",
             "attribute", "drop_input", "extra_input", "scalar")


@dataclasses.dataclass
class Outcome:
    kind: str  # "ok" or "error"
    mutation: str
    message: str = ""


def mutate(spec: OpSpec, rng: np.random.Generator) -> tuple[str, Feeds, dict, list[str]]:
    feeds, attributes = spec.make_feeds(rng)
    names = list(feeds)
    mutation = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    target = names[int(rng.integers(len(names)))]
    value = feeds[target]
    if mutation == "dim" and value.ndim:
        shape = list(value.shape)
        axis = int(rng.integers(value.ndim))
        shape[axis] = int(rng.integers(1, 9))
        feeds[target] = np.resize(value, shape).astype(value.dtype)
    elif mutation == "rank":
        feeds[target] = value.reshape(-1) if value.ndim != 1 else value.reshape(1, 1, -1)
    elif mutation == "dtype":
        feeds[target] = value.astype(np.float64 if value.dtype == np.float32 else np.float32)
    elif mutation in ("nan", "inf") and value.dtype == np.float32 and value.size:
        flat = value.reshape(-1).copy()
        flat[rng.integers(flat.size, size=max(1, flat.size // 4))] = np.nan if mutation == "nan" else -np.inf
        feeds[target] = flat.reshape(value.shape)
    elif mutation in ("huge_int", "negative_int") and value.dtype == np.int64 and value.size:
        flat = value.reshape(-1).copy()
        extreme = bool(rng.integers(2))  # the int64 limits themselves (INT64_MIN - 1 would overflow, ...)
        if mutation == "huge_int":
            flat[int(rng.integers(flat.size))] = 2**63 - 1 if extreme else 2**62 + 7
        else:
            flat[int(rng.integers(flat.size))] = -(2**63) if extreme else -int(rng.integers(1, 2**40))
        feeds[target] = flat.reshape(value.shape)
    elif mutation == "zero_dim" and value.ndim:
        shape = list(value.shape)
        shape[int(rng.integers(value.ndim))] = 0
        feeds[target] = np.zeros(shape, value.dtype)
    elif mutation == "scalar":
        feeds[target] = np.asarray(value.reshape(-1)[:1].reshape(()) if value.size else 0, value.dtype)
    elif mutation == "attribute":
        if attributes:
            key = list(attributes)[int(rng.integers(len(attributes)))]
            choice = int(rng.integers(4))
            if choice == 0:
                del attributes[key]
            elif choice == 1:
                attributes[key] = "text"
            elif choice == 2:
                attributes[key] = -int(rng.integers(0, 5)) if key in spec.int_attributes else float("nan")
            else:
                attributes[key] = 2.5 if key in spec.int_attributes else 3
        else:
            attributes["unexpected"] = 1
    elif mutation == "drop_input":  # the node loses its last input (and the graph that input)
        names = names[:-1]
        feeds = {n: feeds[n] for n in names}
    elif mutation == "extra_input":
        feeds["extra"] = np.zeros(2, np.float32)
        names = names + ["extra"]
    return mutation, feeds, attributes, names


def run_case(spec: OpSpec, rng: np.random.Generator, threads: int = 1) -> Outcome:
    mutation, feeds, attributes, names = mutate(spec, rng)
    try:
        model = build_model(spec, feeds, attributes, names)
        options = vampnet_ort.session_options(intra_op_threads=threads)
        options.log_severity_level = 4  # errors are expected here; keep ORT's logger quiet
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
    except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph, ort.capi.onnxruntime_pybind11_state.RuntimeException,
            ort.capi.onnxruntime_pybind11_state.NotImplemented, onnx.checker.ValidationError, ValueError,
            TypeError) as exc:
        return Outcome("error", mutation, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return Outcome("ok", mutation)


def case_seed(op_name: str, index: int, base: int = 0) -> int:
    """The seed of fuzz case `index` of `op_name` in a run seeded `base`: the same in every process (unlike
    ``hash(str)``, which Python salts per process), so a printed seed always reproduces its case."""
    digest = hashlib.sha256(f"{base}:{op_name}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # a non-negative int64


def run_seeded_case(spec: OpSpec, seed: int) -> Outcome:
    """One fuzz case, entirely determined by `seed` (mutation, feeds, attributes and thread count)."""
    rng = np.random.default_rng(seed)
    return run_case(spec, rng, threads=int(rng.integers(1, 3)))


def reproduce_hint(op_name: str, seed: int) -> str:
    return f"reproduce with: python scripts/fuzz_ops.py --op {op_name} --case-seed {seed}"
