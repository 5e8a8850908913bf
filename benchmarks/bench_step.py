"""What a decode step costs beyond its forward, batch 2 against 2 x 1, and thread scaling (coarse stage).

    python benchmarks/bench_step.py                                  # release coarse, int8 + float32, T=575
    python benchmarks/bench_step.py --size medium --precisions int8 --steps 4

For each precision the coarse stage is exported (random weights, the logits graph and the Loop decode graph), and
one child process per (precision, threads) measures, in interleaved rounds (best round):

  forward      the logits graph, B=1 (a forward with the logits of every position; for scale)
  step         (decode with `--steps` steps - decode with 1 step) / (steps - 1), B=1: one Loop iteration
  batch 2      the decode graph with B=2 (the app's two variations) against 2 x the B=1 decode
  profile      one B=1 decode with ORT's profiler: node time by op type inside the decode (the transformer's ops,
               SampleAndRemask, PhiloxUniform, the rest), and wall time not spent in any node (the Loop's and the
               session's own cost), as shares of the decode

Prints the 1-minute load average with every row and the CPU model: ratios between rows measured side by side are
usable for choosing; absolute figures on a shared machine are not evidence.
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

SIZES = {
    "release": dict(n_heads=20, n_layers=20, n_codebooks=4, embedding_dim=1280),
    "medium": dict(n_heads=12, n_layers=6, n_codebooks=4, embedding_dim=768),
}

CHILD = """
import json, os, sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
import vampnet_ort
from bench_decode import decode_feeds
work, threads, t, steps, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
decode = vampnet_ort.create_session(f"{work}/coarse.onnx", intra_op_threads=threads, disable_prepacking=True)
logits = vampnet_ort.create_session(f"{work}/coarse_logits.onnx", intra_op_threads=threads, disable_prepacking=True)
one = decode_feeds(4, t, 0, steps)
two = {k: (np.repeat(v, 2, axis=0) if k in ("codes", "mask") else v) for k, v in one.items()}
names = {i.name for i in logits.get_inputs()}
fwd_feeds = {k: v for k, v in one.items() if k in names}
runs = {
    "forward": lambda: logits.run(None, fwd_feeds),
    "decode_1": lambda: decode.run(None, {**one, "num_steps": np.array(1, np.int64)}),
    "decode_n": lambda: decode.run(None, one),
    "decode_b2": lambda: decode.run(None, two),
}
for fn in runs.values():
    fn()  # warm-up
best = {k: float("inf") for k in runs}
loads = []
for r in range(rounds):
    order = list(runs) if r % 2 == 0 else list(runs)[::-1]
    for k in order:
        start = time.perf_counter()
        runs[k]()
        best[k] = min(best[k], time.perf_counter() - start)
    loads.append(os.getloadavg()[0])
import onnxruntime as ort
options = vampnet_ort.session_options(intra_op_threads=threads)
options.add_session_config_entry("session.disable_prepacking", "1")
options.enable_profiling = True
options.profile_file_prefix = os.path.join(work, f"profile_{threads}")
profiled = vampnet_ort.create_session(f"{work}/coarse.onnx", options=options)
profiled.run(None, one)  # warm-up (profiled too; only the second run is counted)
start_us = None
begin = time.perf_counter()
profiled.run(None, one)
wall = time.perf_counter() - begin
trace = json.load(open(profiled.end_profiling()))
runs_seen = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
last = runs_seen[-1]
lo, hi = last["ts"], last["ts"] + last["dur"]
by_op = {}
for e in trace:
    if e.get("cat") == "Node" and lo <= e["ts"] <= hi and e["name"].endswith("_kernel_time"):
        op = e.get("args", {}).get("op_name", "?")
        by_op[op] = by_op.get(op, 0.0) + e["dur"] / 1e6
print("RESULT " + json.dumps({"best": best, "load": max(loads), "profile": by_op, "profile_wall": last["dur"] / 1e6}))
"""


def export(work: Path, size: str, precision: str) -> None:
    from vampnet_ort.export.decode_graph import decode_graph
    from vampnet_ort.export.random_checkpoint import lac_kwargs, random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import random_codec
    from vampnet_ort.export.vampnet_export import export_stage, logits_graph

    ckpt = random_vampnet_checkpoint(vampnet_kwargs(**SIZES[size]), seed=0, name=f"{size} coarse")
    export_stage(work, "coarse", ckpt, random_codec(lac_kwargs(), seed=1), None,
                 {"coarse.onnx": decode_graph, "coarse_logits.onnx": logits_graph}, precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="release")
    parser.add_argument("--precisions", default="int8,none")
    parser.add_argument("--frames", type=int, default=575)
    parser.add_argument("--steps", type=int, default=4, help="steps of the long decode (>= 2)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.steps < 2:
        raise SystemExit("--steps must be >= 2")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; coarse {args.size} {SIZES[args.size]}, T={args.frames}, "
          f"{args.steps}-step decode, {args.rounds} interleaved rounds (best); load {os.getloadavg()}", flush=True)
    bench_dir = str(Path(__file__).resolve().parent)
    for precision in args.precisions.split(","):
        with tempfile.TemporaryDirectory(prefix="bench_step_", dir=args.workdir) as tmp:
            start = time.perf_counter()
            export(Path(tmp), args.size, precision)
            print(f"\n{precision}: exported in {time.perf_counter() - start:.0f} s", flush=True)
            print(f"  {'threads':>7s} {'forward s':>10s} {'step s':>8s} {'B=2 decode s':>13s} "
                  f"{'2 x B=1 s':>10s} {'B=2 / 2xB=1':>12s} {'load':>5s}")
            for threads in [int(v) for v in args.threads.split(",")]:
                out = subprocess.run([sys.executable, "-c", CHILD, bench_dir, tmp, str(threads), str(args.frames),
                                      str(args.steps), str(args.rounds)], check=True, capture_output=True, text=True)
                line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
                result = json.loads(line[7:])
                best = result["best"]
                step = (best["decode_n"] - best["decode_1"]) / (args.steps - 1)
                print(f"  {threads:7d} {best['forward']:10.3f} {step:8.3f} "
                      f"{best['decode_b2']:13.2f} {2 * best['decode_n']:10.2f} "
                      f"{best['decode_b2'] / (2 * best['decode_n']):12.2f} {result['load']:5.1f}", flush=True)
                profile, wall = result["profile"], result["profile_wall"]
                # Loop/If/Scan nodes contain their bodies' nodes: count only leaf ops
                leaves = {op: s for op, s in profile.items() if op not in ("Loop", "Scan", "If")}
                in_nodes = sum(leaves.values())
                top = sorted(leaves.items(), key=lambda kv: -kv[1])
                shown = ", ".join(f"{op} {s / wall:.1%}" for op, s in top[:8])
                print(f"          profile of a {args.steps}-step decode ({wall:.2f} s): {shown}; other ops "
                      f"{sum(s for _, s in top[8:]) / wall:.1%}; outside any node (Loop, session) "
                      f"{(wall - in_nodes) / wall:.1%}", flush=True)


if __name__ == "__main__":
    main()
