"""Every vampnet op from the case table (tests/op_cases.py): native kernel vs inlined reference function (and ORT
built-ins where one does the same job), with GFLOP/s from the table's FLOP count and GB/s from the bytes moved.

    python benchmarks/bench_ops.py [--threads 2] [--size release|small] [--op RMSNorm ...] [--repeats 60]
    python benchmarks/bench_ops.py --op CodebookEmbedding --dim C=4      # the coarse model's 4 codebooks

--size release: VampNet's release size (each case's release_dims); --size small: the tests' seeded small inputs
(a quick check that the script runs); --dim NAME=VALUE overrides one dimension (repeatable). Every number is a
median over interleaved rounds of one run; ratios are what to read (machines are noisy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from _timing import compare, print_table  # noqa: E402
from op_cases import CASES, OpCase, bytes_moved  # noqa: E402

import vampnet_ort  # noqa: E402
from vampnet_ort import ops  # noqa: E402

NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


def _value_infos(feeds: Mapping[str, np.ndarray]) -> list:
    return [helper.make_tensor_value_info(n, NP_TO_ONNX[v.dtype], list(v.shape)) for n, v in feeds.items()]


def builtin_rms_norm(feeds: Mapping[str, np.ndarray], attributes: Mapping[str, object], threads: int):
    """ORT's own SimplifiedLayerNormalization: the same computation as RMSNorm."""
    graph = helper.make_graph(
        [helper.make_node("SimplifiedLayerNormalization", ["X", "scale"], ["Y"], axis=-1,
                          epsilon=float(attributes["epsilon"]))],
        "builtin", _value_infos(feeds), [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    return vampnet_ort.create_session(model.SerializeToString(), with_library=False, intra_op_threads=threads)


# Built-in ORT graphs that compute the same as an op (name shown in the table, session factory).
BUILTINS: dict[str, tuple[str, Callable]] = {"RMSNorm": ("ORT SimplifiedLayerNormalization", builtin_rms_norm)}


def bench_case(case: OpCase, size: str, threads: int, repeats: int, overrides: Mapping[str, int]) -> None:
    rng = np.random.default_rng(0)
    dims = dict(case.release_dims if size == "release" else case.random_dims(rng))
    dims.update({k: v for k, v in overrides.items() if k in dims})
    feeds, attributes = case.feeds(rng, dims), case.attributes(dims)
    outputs = [(name, NP_TO_ONNX[dtype], None) for name, dtype in case.output_types()]
    model = ops.single_op_model(case.name, [(n, NP_TO_ONNX[v.dtype], list(v.shape)) for n, v in feeds.items()],
                                outputs, attributes).SerializeToString()
    native = vampnet_ort.create_session(model, with_library=True, intra_op_threads=threads)
    reference = vampnet_ort.create_session(model, with_library=False, intra_op_threads=threads)
    candidates = {f"{case.name} kernel": lambda: native.run(None, feeds),
                  "inlined reference function": lambda: reference.run(None, feeds)}
    result = native.run(None, feeds)
    if case.name in BUILTINS:
        label, factory = BUILTINS[case.name]
        builtin = factory(feeds, attributes, threads)
        # The built-in must compute the same thing before its time means anything.
        case.tolerance.assert_close(builtin.run(None, feeds)[0], result[0], feeds, label)
        candidates[label] = lambda: builtin.run(None, feeds)
    seconds = compare(candidates, repeats=repeats)
    shape = ", ".join(f"{k}={v}" for k, v in dims.items())
    print_table(f"{case.name} [{shape}]", seconds, "inlined reference function")
    flops, moved = case.flops(dims), bytes_moved(feeds, result)
    for name, s in seconds.items():
        gflops = f"{flops / s / 1e9:8.2f} GFLOP/s" if flops else "       - GFLOP/s"
        print(f"  {name:44s} {gflops} {moved / s / 1e9:8.2f} GB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", choices=("release", "small"), default="release")
    parser.add_argument("--op", action="append", choices=sorted(CASES), help="op name (repeatable); default: all")
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                        help="override a dimension of the cases that have it (e.g. C=4, T=173)")
    args = parser.parse_args()
    try:
        overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.dim)}
    except ValueError:
        parser.error("--dim takes NAME=INTEGER, e.g. --dim T=173")
    print(f"intra-op threads: {args.threads}, size: {args.size}")
    for name in args.op or list(CASES):
        bench_case(CASES[name], args.size, args.threads, args.repeats, overrides)


if __name__ == "__main__":
    main()
