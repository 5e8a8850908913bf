"""Every op through its case-table entry (tests/op_cases.py), on seeded valid inputs: the kernel (ORT + library)
and the reference function (stock ORT) against the numpy reference within the table's tolerance (against each
other, bit for bit, where the op has no numpy model), the pybind entry point == the kernel, one thread == two
threads. The op-specific tests (error messages, golden data, special values) stay in tests/test_<op>.py."""

from __future__ import annotations

import numpy as np
import pytest

from op_cases import CASES, EXACT, Tolerance
from op_testing import case_model, run_both, run_native

SEEDS = range(6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op_name", sorted(CASES))
def test_kernel_and_reference_function_match_the_numpy_reference(op_name: str, seed: int) -> None:
    case = CASES[op_name]
    rng = np.random.default_rng(seed)
    dims = case.random_dims(rng)
    feeds, attributes = case.feeds(rng, dims), case.attributes(dims)
    model = case_model(op_name, feeds, attributes)
    native, reference = run_both(model, feeds)
    assert [o.dtype for o in native] == [dtype for _, dtype in case.output_types()]
    if case.reference is None:
        assert case.reference_note, f"{op_name}: say what the oracle is when there is no numpy reference"
        for got, want in zip(reference, native):
            case.tolerance.assert_close(got, want, feeds, f"{op_name} reference function vs kernel, dims {dims}")
    else:
        expected = case.reference(feeds, attributes)
        assert len(expected) == len(native) == len(case.contract.outputs)
        for got_native, got_reference, want in zip(native, reference, expected):
            case.tolerance.assert_close(got_native, want, feeds, f"{op_name} kernel, dims {dims}")
            case.tolerance.assert_close(got_reference, want, feeds, f"{op_name} reference function, dims {dims}")
    one_thread = run_native(model, feeds, threads=1)
    for a, b in zip(one_thread, native):
        np.testing.assert_array_equal(a, b)
    if case.pybind is not None:
        for a, b in zip(case.pybind(feeds, attributes, 2), native):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("op_name", sorted(CASES))
def test_cases_are_reproducible_and_count_flops(op_name: str) -> None:
    case = CASES[op_name]
    first, again = (case.feeds(np.random.default_rng(7)) for _ in range(2))
    assert first.keys() == again.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert case.flops(case.release_dims) >= 0
    assert set(case.release_dims) == set(case.random_dims(np.random.default_rng(0)))


def test_tolerances_fail_where_they_should() -> None:
    expected = np.array([1.0, -2.0, 4.0], np.float32)
    feeds = {"X": np.array([100.0, 0.0, 0.0], np.float32)}
    EXACT.assert_close(expected.copy(), expected, feeds)
    with pytest.raises(AssertionError):
        EXACT.assert_close(np.nextafter(expected, np.float32(9)), expected, feeds)
    near = expected + np.float32(1e-5)
    Tolerance(atol=2e-5).assert_close(near, expected, feeds)
    with pytest.raises(AssertionError):
        Tolerance(atol=5e-6).assert_close(near, expected, feeds)
    # an input-proportional term allows more error where that input is large, and only there
    shifted = expected + np.array([1e-3, 0, 0], np.float32)
    Tolerance(atol=1e-6, per_input=(("X", 2e-5),)).assert_close(shifted, expected, feeds)
    with pytest.raises(AssertionError):
        Tolerance(atol=1e-6, per_input=(("X", 2e-5),)).assert_close(expected + np.float32(1e-3), expected, feeds)
    # of_max: a fraction of the largest |expected| (4.0 here) everywhere
    Tolerance(of_max=1e-2).assert_close(expected + np.float32(0.03), expected, feeds)
    with pytest.raises(AssertionError):
        Tolerance(of_max=1e-2).assert_close(expected + np.float32(0.05), expected, feeds)
    with pytest.raises(AssertionError):  # NaN where the reference has none
        Tolerance(of_max=1e-2).assert_close(np.array([np.nan, -2, 4], np.float32), expected, feeds)
