"""The GEGLU's tanh Gelu: the fusable form against the unfused one, in the coarse forward (docs/QUANTIZATION.md).

    python benchmarks/bench_gelu_forms.py                        # release coarse, T=575, int8 and float32
    python benchmarks/bench_gelu_forms.py --size medium --precisions int8

The exporter writes Gelu_tanh as plain Mul/Add/Tanh (WebGPU runs no `Gelu(approximate="tanh")` correctly,
docs/WEB.md) in the form ONNX Runtime's FastGeluFusion matches, ``(0.5 x)(1 + tanh((s x)(1 + c x x)))``, so a CPU
session runs one FastGelu per layer. The other form, ``0.5 x (1 + tanh(s (x + c x x x)))`` (what the exporter
wrote before), is not matched and runs as eight elementwise nodes. For each precision both forms of the same random
weights are exported (logits graph only) and timed in one child process, interleaved rounds, best round each;
every row prints the 1-minute load average, the header the CPU model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_codec_int8_forms import cpu_model  # noqa: E402
from bench_step import SIZES  # noqa: E402

CHILD = """
import json, os, sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
import vampnet_ort
from bench_decode import decode_feeds
work, threads, t, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sessions = {form: vampnet_ort.create_session(f"{work}/{form}/coarse_logits.onnx", intra_op_threads=threads,
                                             disable_prepacking=True) for form in ("fusable", "unfused")}
names = {i.name for i in sessions["fusable"].get_inputs()}
feeds = {k: v for k, v in decode_feeds(4, t, 0, 1).items() if k in names}
outs = {form: s.run(None, feeds)[0] for form, s in sessions.items()}  # warm-up
best = {form: float("inf") for form in sessions}
loads = []
for r in range(rounds):
    for form in (("fusable", "unfused") if r % 2 == 0 else ("unfused", "fusable")):
        start = time.perf_counter()
        sessions[form].run(None, feeds)
        best[form] = min(best[form], time.perf_counter() - start)
    loads.append(os.getloadavg()[0])
diff = float(np.abs(outs["fusable"] - outs["unfused"]).max())
print("RESULT " + json.dumps({"best": best, "load": max(loads), "max_abs_logit_diff": diff}))
"""


def unfused_gelu_tanh(w, x: str, *, hint: str) -> str:
    """The earlier form, 0.5 x (1 + tanh(s (x + c x^3))): the same function, not matched by FastGeluFusion."""
    from vampnet_ort.export.transformer_graph import GELU_TANH_CUBIC, GELU_TANH_SCALE

    cube = w.op1("Mul", [w.op1("Mul", [x, x], hint=hint + "_sq"), x], hint=hint + "_cube")
    inner = w.op1("Add", [x, w.op1("Mul", [cube, w.const_float(GELU_TANH_CUBIC)], hint=hint + "_c3")],
                  hint=hint + "_in")
    t = w.op1("Tanh", [w.op1("Mul", [inner, w.const_float(GELU_TANH_SCALE)], hint=hint + "_scaled")],
              hint=hint + "_tanh")
    half_x = w.op1("Mul", [x, w.const_float(0.5)], hint=hint + "_half")
    return w.op1("Mul", [half_x, w.op1("Add", [t, w.const_float(1.0)], hint=hint + "_1t")], hint=hint)


def export(work: Path, size: str, precision: str) -> None:
    from vampnet_ort.export import transformer_graph
    from vampnet_ort.export.random_checkpoint import lac_kwargs, random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import random_codec
    from vampnet_ort.export.vampnet_export import export_stage, logits_graph

    ckpt = random_vampnet_checkpoint(vampnet_kwargs(**SIZES[size]), seed=0, name=f"{size} coarse")
    codec = random_codec(lac_kwargs(), seed=1)
    fusable = transformer_graph.emit_gelu_tanh
    for form, emit in (("fusable", fusable), ("unfused", unfused_gelu_tanh)):
        transformer_graph.emit_gelu_tanh = emit
        (work / form).mkdir()
        try:
            export_stage(work / form, "coarse", ckpt, codec, None, {"coarse_logits.onnx": logits_graph}, precision)
        finally:
            transformer_graph.emit_gelu_tanh = fusable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="release")
    parser.add_argument("--precisions", default="int8,none")
    parser.add_argument("--frames", type=int, default=575)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; coarse {args.size} {SIZES[args.size]} logits graph, "
          f"T={args.frames}, {args.threads} threads, {args.rounds} interleaved rounds (best); "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'precision':>9s} {'fusable s':>10s} {'unfused s':>10s} {'speed-up':>9s} {'max |dlogit|':>13s} "
          f"{'load':>5s}")
    bench_dir = str(Path(__file__).resolve().parent)
    for precision in args.precisions.split(","):
        with tempfile.TemporaryDirectory(prefix="bench_gelu_") as tmp:
            start = time.perf_counter()
            export(Path(tmp), args.size, precision)
            exported = time.perf_counter() - start
            out = subprocess.run([sys.executable, "-c", CHILD, bench_dir, tmp, str(args.threads), str(args.frames),
                                  str(args.rounds)], check=True, capture_output=True, text=True, cwd=tmp)
            result = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
            best = result["best"]
            name = {"none": "float32"}.get(precision, precision)
            print(f"{name:>9s} {best['fusable']:10.3f} {best['unfused']:10.3f} "
                  f"{best['unfused'] / best['fusable']:8.2f}x {result['max_abs_logit_diff']:13.2e} "
                  f"{result['load']:5.2f}   (exported both in {exported:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
