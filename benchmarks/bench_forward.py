"""One VampNet forward at release size (coarse: 20 layers, d=1280, 20 heads, 4 codebooks), B=1, T=575.

Side by side in one run, on the same random weights (one external-data file shared by all graphs):
  - custom-op graph: the exported ``coarse_logits.onnx`` with the vampnet op library registered,
  - inlined reference: the same model without the library (ORT inlines the model-local reference functions),
  - ORT-only composition: SimplifiedLayerNormalization, com.microsoft.MultiHeadAttention with the [1, H, T, T]
    position bias precomputed (a graph input), MatMul, Gelu, Gather embedding,
and ORT's own MatMul peak measured in the same run (575x1280 @ 1280x5120, B an initializer). Each variant runs
in its own process, in alternating rounds. Prints median seconds, GFLOP/s and the fraction of that peak. Also times a full-size export from .pth files in a child process
(seconds, peak RSS vs the weights' size).

    python benchmarks/bench_forward.py [--threads 2] [--repeats 3] [--skip-export] [--workdir DIR]

Never assert on these timings in tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vampnet_ort.export.random_codec import random_codec
from vampnet_ort.export.random_checkpoint import (  # noqa: E402
    RELEASE_COARSE_KWARGS,
    lac_kwargs,
    random_vampnet_checkpoint,
)
from vampnet_ort.export.transformer_graph import NodeWriter, TransformerNames  # noqa: E402
from vampnet_ort.export.vampnet_export import export_stage, logits_graph  # noqa: E402
from vampnet_ort.export.vampnet_weights import VampNetConfig  # noqa: E402

T = 575


def forward_flops(c: VampNetConfig, t: int) -> float:
    d = c.embedding_dim
    linear = 2.0 * t * d * (3 * d + d + 4 * d + 2 * d) * c.n_layers
    attention = 4.0 * t * t * d * c.n_layers
    classifier = 2.0 * t * d * c.n_predict_codebooks * c.vocab_size
    return linear + attention + classifier


def position_bias(rel_table: np.ndarray, t: int) -> np.ndarray:
    """[1, H, T, T] T5 bias (tests/golden/README.md item 10), computed in numpy for the ORT-only graph."""
    rel = np.arange(t)[None, :] - np.arange(t)[:, None]
    n = np.abs(rel)
    with np.errstate(divide="ignore"):
        scaled = np.log(n.astype(np.float32) / np.float32(8)) / np.float32(np.log(16.0)) * np.float32(8)
    large = np.minimum(8 + np.where(n >= 8, scaled, 0).astype(np.int64), 15)
    buckets = (rel > 0) * 16 + np.where(n < 8, n, large)
    return np.ascontiguousarray(rel_table[buckets].transpose(2, 0, 1)[None])


def ort_only_model(c: VampNetConfig, names: TransformerNames, initializers: list[TensorProto]) -> onnx.ModelProto:
    """The same forward with stock ORT ops only (what a custom-op-free export would run)."""
    w = NodeWriter("ort")
    f = TensorProto.FLOAT
    offsets = helper.make_tensor("emb_offsets", TensorProto.INT64, [1, c.n_codebooks, 1],
                                 [i * (c.vocab_size + 1) for i in range(c.n_codebooks)])
    idx = w.op1("Add", ["codes", w.op1("Constant", [], value=offsets)])
    flat = w.op1("Reshape", [names.tables, w.const_ints([-1, c.embedding_dim])])
    x = w.op1("Add", [w.op1("ReduceSum", [w.op1("Gather", [flat, idx], axis=0), w.const_ints([1])], keepdims=0),
                      names.embedding_bias])
    for i, ln in enumerate(names.layers):
        h = w.op1("SimplifiedLayerNormalization", [x, ln.norm_1], axis=-1, epsilon=1e-6)
        q, k, v = w.op("Split", [w.op1("MatMul", [h, ln.w_qkv])], 3, axis=-1, num_outputs=3)
        att = w.op1("MultiHeadAttention", [q, k, v, "", "", "attention_bias"], domain="com.microsoft",
                    num_heads=c.n_heads)
        x = w.op1("Add", [x, w.op1("MatMul", [att, ln.w_out])])
        h = w.op1("SimplifiedLayerNormalization", [x, ln.norm_3], axis=-1, epsilon=1e-6)
        a, b = w.op("Split", [w.op1("MatMul", [h, ln.w_1])], 2, axis=-1, num_outputs=2)
        x = w.op1("Add", [x, w.op1("MatMul", [w.op1("Mul", [a, w.op1("Gelu", [b], approximate="tanh")]), ln.w_2])])
    h = w.op1("SimplifiedLayerNormalization", [x, names.final_norm], axis=-1, epsilon=1e-6)
    logits = w.op1("Add", [w.op1("MatMul", [h, names.classifier_weight]), names.classifier_bias])
    shaped = w.op1("Reshape", [logits, w.const_ints([0, 0, c.n_predict_codebooks, c.vocab_size])])
    w.op("Transpose", [shaped], ["logits"], perm=[0, 2, 1, 3])
    graph = helper.make_graph(
        w.nodes, "ort_only",
        [helper.make_tensor_value_info("codes", TensorProto.INT64, [1, c.n_codebooks, "T"]),
         helper.make_tensor_value_info("attention_bias", f, [1, c.n_heads, "T", "T"])],
        [helper.make_tensor_value_info("logits", f, [1, c.n_predict_codebooks, "T", c.vocab_size])],
        initializer=initializers,
    )
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 20),
                                                                  helper.make_opsetid("com.microsoft", 1)])


def matmul_model(m: int, k: int, n: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32) * 0.02, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], initializer=[weight])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 20)])


EXPORT_CHILD = """
import resource, sys, time
from vampnet_ort.export.vampnet_export import export_stage, logits_graph
start = time.perf_counter()
export_stage(sys.argv[1], "coarse", sys.argv[2], sys.argv[3], graphs={"coarse_logits.onnx": logits_graph})
print(f"{time.perf_counter() - start:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
"""


TIMING_CHILD = """
import sys, time, numpy as np, vampnet_ort
model, library, threads, work, repeats, out_file = sys.argv[1:7]
session = vampnet_ort.create_session(model, with_library=library == "1", intra_op_threads=int(threads))
names = [i.name for i in session.get_inputs()]
if names == ["x"]:
    feeds = {"x": np.random.default_rng(0).standard_normal((575, 1280), dtype=np.float32)}
else:
    feeds = {name: np.load(f"{work}/{name}.npy") for name in names}
out = session.run(None, feeds)[0]
np.save(out_file, out)
times = []
for _ in range(int(repeats)):
    start = time.perf_counter()
    session.run(None, feeds)
    times.append(time.perf_counter() - start)
print(*times)
"""


def time_export(workdir: Path, ckpt, codec) -> None:
    from vampnet_ort.export import save_checkpoint

    pth, codec_pth = workdir / "coarse.pth", workdir / "codec.pth"
    save_checkpoint(pth, ckpt.state, ckpt.kwargs)
    save_checkpoint(codec_pth, codec.state, codec.kwargs)
    weights = sum(v.nbytes for v in ckpt.state.values())
    out = workdir / "export"
    out.mkdir()
    wall = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", EXPORT_CHILD, str(out), str(pth), str(codec_pth)],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    inner, rss_kib = done.stdout.split()
    rss = int(rss_kib) * 1024
    print(f"\nfull-size export from .pth (child process): {wall:.1f} s wall incl. interpreter start "
          f"({float(inner):.1f} s inside), peak RSS {rss / 2**30:.2f} GiB = {rss / weights:.2f}x the "
          f"checkpoint's {weights / 2**30:.2f} GiB (targets: < 120 s, < 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of one process per variant")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the inlined-reference graph")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench_forward_", dir=args.workdir)
    work = Path(tmp.name)
    print(f"release coarse config, random weights, B=1, T={T}, {args.threads} intra-op threads")
    t0 = time.perf_counter()
    ckpt = random_vampnet_checkpoint(RELEASE_COARSE_KWARGS, seed=0, lora_rank=8, name="release coarse")
    codec = random_codec(lac_kwargs(), seed=1)
    print(f"random checkpoint: {time.perf_counter() - t0:.1f} s, "
          f"{sum(v.nbytes for v in ckpt.state.values()) / 2**30:.2f} GiB")
    if not args.skip_export:
        time_export(work, ckpt, codec)

    t0 = time.perf_counter()
    stage, _ = export_stage(work, "coarse", ckpt, codec, graphs={"coarse_logits.onnx": logits_graph})
    print(f"in-process export (from numpy): {time.perf_counter() - t0:.1f} s")
    config = stage.config
    onnx.save_model(ort_only_model(config, stage.names, stage.store.initializers), str(work / "ort_only.onnx"))
    rel_table = onnx.numpy_helper.to_array(
        next(t for t in stage.store.initializers if t.name == stage.names.rel_bias))
    del ckpt, stage

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, size=(1, config.n_codebooks, T))
    codes[rng.random(codes.shape) < 0.5] = 1024
    np.save(work / "codes.npy", codes)
    np.save(work / "attention_bias.npy", position_bias(rel_table, T))
    onnx.save_model(matmul_model(T, 1280, 5120), str(work / "matmul.onnx"))

    variants = {"custom-op graph": ("coarse_logits.onnx", "1"), "ORT-only composition": ("ort_only.onnx", "0")}
    if not args.skip_reference:
        variants["inlined reference graph"] = ("coarse_logits.onnx", "0")
    variants["ORT MatMul 575x1280x5120"] = ("matmul.onnx", "0")
    # Each variant runs in its own process (one session per process: several large sessions in one process
    # disturbed each other's timings here), in alternating rounds so machine load hits every variant alike.
    samples: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, str] = {}
    for round_index in range(args.rounds):
        for name, (model, library) in variants.items():
            out_file = work / f"out_{len(outputs)}.npy"
            done = subprocess.run(
                [sys.executable, "-c", TIMING_CHILD, str(work / model), library, str(args.threads), str(work),
                 str(args.repeats), str(out_file)], check=True, capture_output=True, text=True)
            samples[name] += [float(v) for v in done.stdout.split()]
            if round_index == 0 and not name.startswith("ORT MatMul"):
                outputs[name] = str(out_file)
    reference = np.load(outputs["custom-op graph"])
    for name, path in outputs.items():
        print(f"  max |{name} - custom-op graph| = {np.abs(np.load(path) - reference).max():.2e}")
    seconds = {name: statistics.median(v) for name, v in samples.items()}
    peak = 2.0 * T * 1280 * 5120 / seconds.pop("ORT MatMul 575x1280x5120")
    flops = forward_flops(config, T)
    print(f"\nforward FLOPs: {flops / 1e9:.1f} GFLOP; ORT MatMul peak in this run: {peak / 1e9:.1f} GFLOP/s "
          f"(bound: {flops / peak:.2f} s); medians of {args.rounds} x {args.repeats} runs")
    base = seconds["ORT-only composition"]
    print(f"  {'variant':28s} {'s':>8s} {'GFLOP/s':>9s} {'of peak':>8s} {'vs ORT-only':>12s}")
    for name, sec in seconds.items():
        print(f"  {name:28s} {sec:8.3f} {flops / sec / 1e9:9.1f} {flops / sec / peak:8.1%} {base / sec:11.2f}x")
    tmp.cleanup()


if __name__ == "__main__":
    main()
