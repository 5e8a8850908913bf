"""Long fuzz run of every vampnet op (see tests/fuzzing.py). Prints outcome counts per op and mutation.

    python scripts/fuzz_ops.py --cases 5000 [--op RMSNorm] [--seed 0]

Run it under the sanitizer build for the strongest check (LD_PRELOAD as in scripts/sanitize.sh).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzzing import SPECS, run_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--op", action="append", help="op name (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for name in args.op or sorted(SPECS):
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        start = time.monotonic()
        for _ in range(args.cases):
            outcome = run_case(SPECS[name], rng, threads=int(rng.integers(1, 3)))
            counts[(outcome.mutation, outcome.kind)] += 1
        total_ok = sum(v for (m, k), v in counts.items() if k == "ok")
        print(f"{name}: {args.cases} cases in {time.monotonic() - start:.1f}s, {total_ok} ran, "
              f"{args.cases - total_ok} clean errors, 0 crashes")
        for (mutation, kind), n in sorted(counts.items()):
            print(f"    {mutation:14s} {kind:6s} {n}")


if __name__ == "__main__":
    main()
