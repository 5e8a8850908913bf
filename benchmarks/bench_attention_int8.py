"""RelativePositionAttentionInt8 against the float32 RelativePositionAttention at VampNet's width.

    python benchmarks/bench_attention_int8.py [--lengths 173,575,1150] [--threads 2] [--rounds 9]

D = 1280, H = 20 (dh = 64), B = 1, the kernels called through the pybind module (the same C++ code ORT runs), in
interleaved rounds (best round), with the int8 op's portable path (no VNNI) as a third column when
``--portable``. Prints the CPU model, whether the VNNI path runs, the 1-minute load average per row, the speed-up,
and the int8 output's relative error against the float32 op.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_codec_int8_forms import cpu_model  # noqa: E402

from vampnet_ort import _kernels  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="173,575,1150")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--portable", action="store_true", help="also time the portable (non-VNNI) int8 path")
    args = parser.parse_args()
    heads, dim = 20, 1280
    print(f"{cpu_model()}; int8 VNNI path: {_kernels.attention_int8_has_vnni()}; D={dim}, H={heads}, B=1, "
          f"{args.threads} threads, best of {args.rounds} interleaved rounds; load {os.getloadavg()}")
    rng = np.random.default_rng(0)
    bias = rng.standard_normal((32, heads)).astype(np.float32)
    for t in (int(v) for v in args.lengths.split(",")):
        qkv = rng.standard_normal((1, t, 3 * dim)).astype(np.float32)
        runs = {"float32": lambda: _kernels.relative_position_attention(qkv, bias, heads, threads=args.threads),
                "int8": lambda: _kernels.relative_position_attention_int8(qkv, bias, heads, threads=args.threads)}
        if args.portable:
            runs["int8 portable"] = lambda: _kernels.relative_position_attention_int8(
                qkv, bias, heads, threads=args.threads, allow_vnni=False)
        best = {name: float("inf") for name in runs}
        for r in range(args.rounds):
            for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                start = time.perf_counter()
                runs[name]()
                best[name] = min(best[name], time.perf_counter() - start)
        ref, q = runs["float32"](), runs["int8"]()
        rel = float(np.linalg.norm(q - ref) / np.linalg.norm(ref))
        cells = " | ".join(f"{name} {seconds * 1e3:8.2f} ms" for name, seconds in best.items())
        print(f"T={t:5d} load {os.getloadavg()[0]:4.1f} | {cells} | int8 speed-up {best['float32'] / best['int8']:.2f}x"
              f" | int8 rel. error {rel:.4f}", flush=True)


if __name__ == "__main__":
    main()
