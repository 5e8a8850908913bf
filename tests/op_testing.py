"""Shared helpers for op tests: run one vampnet op with the native kernel and with its reference function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

import vampnet_ort
from op_cases import CASES
from vampnet_ort import ops

# The golden reference data (tiny upstream checkpoints and upstream's outputs for them) ships with the tests:
# tests/golden/README.md says what each file holds and how upstream computed it.
GOLDEN = Path(__file__).resolve().parent / "golden"

NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.uint8): TensorProto.UINT8,
}


# scripts/sanitize.sh sets VAMPNET_SANITIZE=1: ASan's quarantine keeps freed memory, so RSS checks are skipped there
# (the plain run does them).
UNDER_SANITIZER = os.environ.get("VAMPNET_SANITIZE", "") not in ("", "0")


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def golden(name: str) -> Mapping[str, np.ndarray]:
    return np.load(GOLDEN / name)


def op_model(
    op_type: str,
    feeds: Mapping[str, np.ndarray],
    outputs: Sequence[tuple[str, int, Sequence[int | str | None]]],
    attributes: Mapping[str, object] | None = None,
    symbolic: bool = True,
) -> onnx.ModelProto:
    """One-node model for `op_type` whose inputs match `feeds` (dims symbolic unless symbolic=False)."""
    inputs = []
    for name, value in feeds.items():
        shape = [f"{name}_d{i}" for i in range(value.ndim)] if symbolic else list(value.shape)
        inputs.append((name, NP_TO_ONNX[np.asarray(value).dtype], shape))
    model = ops.single_op_model(op_type, inputs, outputs, attributes)
    onnx.checker.check_model(model, full_check=True)
    return model


def case_model(op_type: str, feeds: Mapping[str, np.ndarray], attributes: Mapping[str, object] | None = None,
               symbolic: bool = True) -> onnx.ModelProto:
    """One-node model for `op_type` with the case table's outputs (names, types and ranks from the contract)."""
    case = CASES[op_type]
    outputs = [(name, NP_TO_ONNX[dtype], [f"{name}_d{i}" for i in range(rank)])
               for (name, dtype), rank in zip(case.output_types(), case.output_ranks(feeds))]
    return op_model(op_type, feeds, outputs, attributes, symbolic)


def run_both(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], threads: int = 2
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(kernel outputs, reference-function outputs) of `model` on `feeds`."""
    data = model.SerializeToString()
    native = vampnet_ort.create_session(data, with_library=True, intra_op_threads=threads).run(None, dict(feeds))
    reference = vampnet_ort.create_session(data, with_library=False, intra_op_threads=threads).run(None, dict(feeds))
    return native, reference


def run_native(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], threads: int = 2) -> list[np.ndarray]:
    return vampnet_ort.create_session(model.SerializeToString(), intra_op_threads=threads).run(None, dict(feeds))


def native_error(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> str:
    """The error message of running the native kernel on `feeds` (fails the test if it succeeds)."""
    session = vampnet_ort.create_session(model.SerializeToString())
    try:
        session.run(None, dict(feeds))
    except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
            ort.capi.onnxruntime_pybind11_state.RuntimeException) as exc:
        return str(exc)
    raise AssertionError("expected the op to reject these inputs")


def inferred_output_shapes(model: onnx.ModelProto) -> list[list[int | str]]:
    """Output shapes by ONNX shape inference (through the model-local functions)."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    shapes = []
    for out in inferred.graph.output:
        dims = out.type.tensor_type.shape.dim
        shapes.append([d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims])
    return shapes
