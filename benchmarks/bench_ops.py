"""Foundation ops at VampNet's release size: native kernel vs inlined reference function vs ORT built-ins.

    python benchmarks/bench_ops.py [--threads 2]

Every number is a median over interleaved rounds of one run; ratios are what to read (machines are noisy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, print_table  # noqa: E402

import vampnet_ort  # noqa: E402
from vampnet_ort import ops  # noqa: E402

B, T, D = 1, 575, 1280


def sessions(model: onnx.ModelProto, threads: int):
    data = model.SerializeToString()
    return (
        vampnet_ort.create_session(data, with_library=True, intra_op_threads=threads),
        vampnet_ort.create_session(data, with_library=False, intra_op_threads=threads),
    )


def bench_rms_norm(threads: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    scale = rng.standard_normal(D).astype(np.float32)
    model = ops.single_op_model(
        "RMSNorm", [("X", TensorProto.FLOAT, ["B", "T", D]), ("scale", TensorProto.FLOAT, [D])],
        [("Y", TensorProto.FLOAT, ["B", "T", D])])
    native, reference = sessions(model, threads)
    builtin_graph = helper.make_graph(
        [helper.make_node("SimplifiedLayerNormalization", ["X", "scale"], ["Y"], axis=-1, epsilon=1e-6)],
        "builtin", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", "T", D]),
                    helper.make_tensor_value_info("scale", TensorProto.FLOAT, [D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["B", "T", D])])
    builtin_model = helper.make_model(builtin_graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    builtin = vampnet_ort.create_session(builtin_model.SerializeToString(), with_library=False,
                                         intra_op_threads=threads)
    feeds = {"X": x, "scale": scale}
    np.testing.assert_allclose(native.run(None, feeds)[0], builtin.run(None, feeds)[0], rtol=1e-4, atol=1e-5)
    seconds = compare({
        "RMSNorm kernel": lambda: native.run(None, feeds),
        "ORT SimplifiedLayerNormalization": lambda: builtin.run(None, feeds),
        "inlined reference function": lambda: reference.run(None, feeds),
    }, repeats=60)
    print_table(f"RMSNorm [{B}, {T}, {D}]", seconds, "inlined reference function")
    print(f"  kernel vs ORT built-in: {seconds['ORT SimplifiedLayerNormalization'] / seconds['RMSNorm kernel']:.2f}x")


def bench_film(threads: int) -> None:
    rng = np.random.default_rng(1)
    feeds = {
        "X": rng.standard_normal((B, T, D)).astype(np.float32),
        "gamma": rng.standard_normal((B, D)).astype(np.float32),
        "beta": rng.standard_normal((B, D)).astype(np.float32),
    }
    model = ops.single_op_model(
        "FiLM", [("X", TensorProto.FLOAT, ["B", "T", D]), ("gamma", TensorProto.FLOAT, ["B", D]),
                 ("beta", TensorProto.FLOAT, ["B", D])], [("Y", TensorProto.FLOAT, ["B", "T", D])])
    native, reference = sessions(model, threads)
    seconds = compare({
        "FiLM kernel": lambda: native.run(None, feeds),
        "inlined reference function": lambda: reference.run(None, feeds),
    }, repeats=60)
    print_table(f"FiLM [{B}, {T}, {D}]", seconds, "inlined reference function")


def bench_embedding(threads: int, codebooks: int) -> None:
    rng = np.random.default_rng(2)
    feeds = {
        "codes": rng.integers(0, 1025, size=(B, codebooks, T), dtype=np.int64),
        "tables": rng.standard_normal((codebooks, 1025, D)).astype(np.float32),
        "bias": rng.standard_normal(D).astype(np.float32),
    }
    model = ops.single_op_model(
        "CodebookEmbedding", [("codes", TensorProto.INT64, ["B", codebooks, "T"]),
                              ("tables", TensorProto.FLOAT, [codebooks, 1025, D]), ("bias", TensorProto.FLOAT, [D])],
        [("Y", TensorProto.FLOAT, ["B", "T", D])])
    native, reference = sessions(model, threads)
    seconds = compare({
        "CodebookEmbedding kernel": lambda: native.run(None, feeds),
        "inlined reference function": lambda: reference.run(None, feeds),
    }, repeats=60)
    print_table(f"CodebookEmbedding C={codebooks} [{B}, {T}, {D}]", seconds, "inlined reference function")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"intra-op threads: {args.threads}")
    bench_rms_norm(args.threads)
    bench_film(args.threads)
    bench_embedding(args.threads, 4)
    bench_embedding(args.threads, 14)


if __name__ == "__main__":
    main()
