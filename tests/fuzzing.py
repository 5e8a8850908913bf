"""Fuzzing harness for the vampnet ops: valid feeds per op, then random mutations of shapes, dtypes, contents,
attributes and node arity. Every case must end in a result or a clean ORT error (never a crash or a hang).

Used by tests/test_fuzz_ops.py (short run in CI) and scripts/fuzz_ops.py (long local run). To cover a new op,
add an OpSpec to SPECS.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable, Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import vampnet_ort
from vampnet_ort import ops

Feeds = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class OpSpec:
    name: str
    make_feeds: Callable[[np.random.Generator], Feeds]  # a valid set of inputs
    outputs: tuple[tuple[str, int], ...]  # (name, TensorProto dtype)
    attributes: Mapping[str, object] = dataclasses.field(default_factory=dict)
    int_attributes: tuple[str, ...] = ()  # attributes the fuzzer may corrupt


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _rms_norm(rng: np.random.Generator) -> Feeds:
    d = int(rng.integers(1, 40))
    return {"X": _f32(rng, int(rng.integers(1, 4)), int(rng.integers(1, 9)), d), "scale": _f32(rng, d)}


def _film(rng: np.random.Generator) -> Feeds:
    b, t, d = (int(v) for v in rng.integers(1, 6, size=3))
    return {"X": _f32(rng, b, t, d), "gamma": _f32(rng, b, d), "beta": _f32(rng, b, d)}


def _embedding(rng: np.random.Generator) -> Feeds:
    b, c, t, v, d = (int(x) for x in rng.integers(1, 6, size=5))
    return {
        "codes": rng.integers(0, v + 1, size=(b, c, t)).astype(np.int64),
        "tables": _f32(rng, c, v + 1, d),
        "bias": _f32(rng, d),
    }


def _philox(rng: np.random.Generator) -> Feeds:
    return {
        "seed": np.asarray(int(rng.integers(-(2**63), 2**63 - 1)), np.int64),
        "step": np.asarray(int(rng.integers(0, 40)), np.int64),
        "shape": rng.integers(1, 5, size=3).astype(np.int64),
    }


def _sample_and_remask(rng: np.random.Generator) -> Feeds:
    b, p, t = (int(x) for x in rng.integers(1, 4, size=3))
    conditioning, vocab = int(rng.integers(0, 3)), int(rng.integers(2, 9))
    c = p + conditioning
    codes = rng.integers(0, vocab, size=(b, c, t)).astype(np.int64)
    codes[rng.random((b, c, t)) < 0.6] = vocab  # MASK
    num_steps = int(rng.integers(1, 6))
    scalar = lambda v, dt: np.asarray(v, dt)  # noqa: E731
    return {
        "logits": _f32(rng, b, p, t, vocab),
        "codes": codes,
        "start_codes": np.where(codes == vocab, 0, codes),
        "n0": (codes == vocab).sum(axis=(1, 2)).astype(np.int64),
        "step": scalar(int(rng.integers(0, num_steps)), np.int64),
        "num_steps": scalar(num_steps, np.int64),
        "uniforms": rng.uniform(0.01, 0.99, size=(2, b, p, t)).astype(np.float32),
        "temperature": scalar(rng.choice([0.0, 0.7, 1.0]), np.float32),
        "mask_temperature": scalar(rng.choice([0.0, 10.5]), np.float32),
        "top_p": scalar(rng.choice([0.0, 0.9]), np.float32),
        "top_k": scalar(int(rng.integers(0, 4)), np.int64),
        "typical_mass": scalar(rng.choice([0.0, 0.15]), np.float32),
        "typical_min_tokens": scalar(int(rng.integers(1, 4)), np.int64),
        "sample_cutoff": scalar(rng.choice([-1.0, 1.0]), np.float32),
    }


def _attention(rng: np.random.Generator) -> Feeds:
    b, t = int(rng.integers(1, 3)), int(rng.integers(1, 40))
    heads = 4  # must match the spec's num_heads attribute
    d = heads * int(rng.integers(1, 9))
    return {"qkv": _f32(rng, b, t, 3 * d), "rel_bias": _f32(rng, 32, heads)}


def _snake(rng: np.random.Generator) -> Feeds:
    b, c, length = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 50))
    return {"x": _f32(rng, b, c, length), "alpha": rng.uniform(0.5, 1.5, size=(1, c, 1)).astype(np.float32)}


SPECS: dict[str, OpSpec] = {
    "RMSNorm": OpSpec("RMSNorm", _rms_norm, (("Y", TensorProto.FLOAT),), {"epsilon": 1e-6}),
    "FiLM": OpSpec("FiLM", _film, (("Y", TensorProto.FLOAT),)),
    "CodebookEmbedding": OpSpec("CodebookEmbedding", _embedding, (("Y", TensorProto.FLOAT),)),
    "RelativePositionAttention": OpSpec(
        "RelativePositionAttention", _attention, (("out", TensorProto.FLOAT),),
        {"num_heads": 4, "num_buckets": 32, "max_distance": 128}, ("num_heads", "num_buckets", "max_distance")),
    "RelativePositionAttentionInt8": OpSpec(
        "RelativePositionAttentionInt8", _attention, (("out", TensorProto.FLOAT),),
        {"num_heads": 4, "num_buckets": 32, "max_distance": 128}, ("num_heads", "num_buckets", "max_distance")),
    "Snake": OpSpec("Snake", _snake, (("y", TensorProto.FLOAT),)),
    "PhiloxUniform": OpSpec("PhiloxUniform", _philox, (("uniforms", TensorProto.FLOAT),)),
    "SampleAndRemask": OpSpec("SampleAndRemask", _sample_and_remask,
                              (("next_codes", TensorProto.INT64), ("sampled", TensorProto.INT64))),
}

_ONNX_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
              np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.float16): TensorProto.FLOAT16}


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
    feeds = spec.make_feeds(rng)
    attributes = dict(spec.attributes)
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
    elif mutation == "drop_input":
        names = names[:-1]
        feeds.pop(target if target not in names else names[-1], None)
        feeds = {n: feeds[n] for n in names if n in feeds}
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
