"""Short fuzz run (CI): every vampnet op under random shapes, dtypes, contents, attributes and arities.

A crash would take the whole pytest process down; a hang is caught by the per-case time budget. The long run
is `python scripts/fuzz_ops.py --cases 5000`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzzing import SPECS, case_seed, reproduce_hint, run_seeded_case

CASES_PER_OP = 150


@pytest.mark.parametrize("op_name", sorted(SPECS))
def test_fuzz_op_never_crashes(op_name: str) -> None:
    """Case i runs from ``case_seed(op_name, i)``; every failure message carries its seed. A crash (which takes
    pytest down before it can report) is found with ``python scripts/fuzz_ops.py --op OP --cases 150 --verbose``,
    which prints each case's seed before running it."""
    kinds: dict[str, int] = {}
    for index in range(CASES_PER_OP):
        seed = case_seed(op_name, index)
        start = time.monotonic()
        outcome = run_seeded_case(SPECS[op_name], seed)
        hint = reproduce_hint(op_name, seed)
        assert time.monotonic() - start < 30, f"{op_name}: case '{outcome.mutation}' took too long; {hint}"
        kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
        if outcome.kind == "error":
            # Errors must be explicit: an ORT status naming the problem, not an empty message.
            assert outcome.message.strip(), f"{op_name}: empty error for mutation {outcome.mutation}; {hint}"
    assert kinds.get("ok", 0) > 0 and kinds.get("error", 0) > 0, kinds


def test_a_case_seed_reproduces_its_case_in_another_process() -> None:
    """The seed is stable across processes (hash(op_name) was not) and fixes the whole case."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fuzzing import case_seed; "
            "print(case_seed('SampleAndRemask', 7))")
    other = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONHASHSEED="random"), check=True,
                           cwd=Path(__file__).parent)  # not the checkout root: its sources would shadow the package
    seed = case_seed("SampleAndRemask", 7)
    assert int(other.stdout) == seed and seed != case_seed("SampleAndRemask", 8) != case_seed("RMSNorm", 7)
    first, again = (run_seeded_case(SPECS["SampleAndRemask"], seed) for _ in range(2))
    assert first == again


def test_every_registered_op_has_a_fuzz_spec() -> None:
    from vampnet_ort import ops

    assert {f.to_function_proto().name for f in ops.ALL_FUNCTIONS} <= set(SPECS)
