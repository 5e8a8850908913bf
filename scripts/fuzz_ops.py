"""Long fuzz run of every vampnet op (see tests/fuzzing.py). Prints outcome counts per op and mutation.

    python scripts/fuzz_ops.py --cases 5000 [--op RMSNorm] [--seed 0] [--verbose]
    python scripts/fuzz_ops.py --op SampleAndRemask --case-seed N     # rerun one case from its printed seed

Case i of op OP runs from fuzzing.case_seed(OP, i, --seed): the same in every process. --verbose prints each
case's seed before running it, so the last line printed before a crash names the crashing case.

Run it under the sanitizer build for the strongest check (LD_PRELOAD as in scripts/sanitize.sh).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzzing import SPECS, case_seed, run_seeded_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--op", action="append", help="op name (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the run")
    parser.add_argument("--case-seed", type=int, help="run only the case with this seed (needs one --op)")
    parser.add_argument("--verbose", action="store_true", help="print each case's seed before running it")
    args = parser.parse_args()
    if args.case_seed is not None:
        if not args.op or len(args.op) != 1:
            parser.error("--case-seed needs exactly one --op")
        outcome = run_seeded_case(SPECS[args.op[0]], args.case_seed)
        print(f"{args.op[0]} case seed {args.case_seed}: {outcome.mutation} -> {outcome.kind} {outcome.message}")
        return
    for name in args.op or sorted(SPECS):
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        start = time.monotonic()
        for index in range(args.cases):
            seed = case_seed(name, index, args.seed)
            if args.verbose:
                print(f"{name} case {index} seed {seed}", flush=True)
            outcome = run_seeded_case(SPECS[name], seed)
            counts[(outcome.mutation, outcome.kind)] += 1
        total_ok = sum(v for (m, k), v in counts.items() if k == "ok")
        print(f"{name}: {args.cases} cases in {time.monotonic() - start:.1f}s, {total_ok} ran, "
              f"{args.cases - total_ok} clean errors, 0 crashes")
        for (mutation, kind), n in sorted(counts.items()):
            print(f"    {mutation:14s} {kind:6s} {n}")

if __name__ == "__main__":
    main()
