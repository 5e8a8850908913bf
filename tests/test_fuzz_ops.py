"""Short fuzz run (CI): every vampnet op under random shapes, dtypes, contents, attributes and arities.

A crash would take the whole pytest process down; a hang is caught by the per-case time budget. The long run
is `python scripts/fuzz_ops.py --cases 5000`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from fuzzing import SPECS, run_case

CASES_PER_OP = 150


@pytest.mark.parametrize("op_name", sorted(SPECS))
def test_fuzz_op_never_crashes(op_name: str) -> None:
    rng = np.random.default_rng(abs(hash(op_name)) % 2**32)
    kinds: dict[str, int] = {}
    for _ in range(CASES_PER_OP):
        start = time.monotonic()
        outcome = run_case(SPECS[op_name], rng, threads=int(rng.integers(1, 3)))
        assert time.monotonic() - start < 30, f"{op_name}: case '{outcome.mutation}' took too long"
        kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
        if outcome.kind == "error":
            # Errors must be explicit: an ORT status naming the problem, not an empty message.
            assert outcome.message.strip(), f"{op_name}: empty error for mutation {outcome.mutation}"
    assert kinds.get("ok", 0) > 0 and kinds.get("error", 0) > 0, kinds


def test_every_registered_op_has_a_fuzz_spec() -> None:
    from vampnet_ort import ops

    assert {f.to_function_proto().name for f in ops.ALL_FUNCTIONS} <= set(SPECS)
