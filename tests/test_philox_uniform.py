"""PhiloxUniform: native kernel == reference function == pure-Python Philox4x32-10, keying rules, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from scipy import stats

from op_cases import MASK32, item_seeds, philox_block, python_uniforms
from op_testing import native_error, op_model, run_both, run_native
from vampnet_ort import _kernels

# Random123 known-answer vectors for philox4x32_10 (kat_vectors): (counter, key) -> output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK32,) * 4, (MASK32, MASK32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def feeds_for(seed: np.ndarray, step: int, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    return {
        "seed": np.asarray(seed, np.int64),
        "step": np.array(step, np.int64),
        "shape": np.array(shape, np.int64),
    }


def model_for(feeds: dict[str, np.ndarray]):
    return op_model("PhiloxUniform", feeds, [("uniforms", TensorProto.FLOAT, ["two", "B", "P", "T"])])


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answers(counter, key, expected):
    assert philox_block(counter, key) == expected
    assert tuple(_kernels.philox4x32_10(list(counter), list(key))) == expected


@pytest.mark.parametrize(
    "seed,step,shape",
    [
        (0, 0, (1, 1, 1)),
        (12345, 3, (2, 3, 5)),
        (-1, 7, (3, 2, 4)),
        (2**63 - 1, 1, (3, 1, 4)),  # seed + b wraps around to -2^63
        (-(2**63), 2**32 - 1, (1, 4, 3)),
        ([5, -5, 2**40 + 17], 11, (3, 2, 3)),
        ([2**63 - 1, -(2**63)], 0, (2, 1, 6)),
    ],
)
def test_kernel_reference_python_agree(seed, step, shape):
    feeds = feeds_for(np.array(seed, np.int64), step, shape)
    native, reference = run_both(model_for(feeds), feeds)
    expected = python_uniforms(item_seeds(feeds["seed"], shape[0]), step, shape[1], shape[2])
    np.testing.assert_array_equal(native[0], expected)
    np.testing.assert_array_equal(reference[0], expected)
    np.testing.assert_array_equal(_kernels.philox_uniform(feeds["seed"], step, feeds["shape"]), expected)


def test_scalar_seed_equals_consecutive_item_seeds():
    scalar = feeds_for(np.array(41, np.int64), 2, (3, 4, 10))
    per_item = feeds_for(np.array([41, 42, 43], np.int64), 2, (3, 4, 10))
    a = run_native(model_for(scalar), scalar)[0]
    b = run_native(model_for(per_item), per_item)[0]
    np.testing.assert_array_equal(a, b)


def test_item_alone_equals_item_in_batch_and_threads_do_not_matter():
    batch = feeds_for(np.array([7, 8, 9], np.int64), 5, (3, 4, 300))
    alone = feeds_for(np.array([8], np.int64), 5, (1, 4, 300))
    one_thread = run_native(model_for(batch), batch, threads=1)[0]
    two_threads = run_native(model_for(batch), batch, threads=2)[0]
    np.testing.assert_array_equal(one_thread, two_threads)
    np.testing.assert_array_equal(run_native(model_for(alone), alone)[0][:, 0], one_thread[:, 1])


def test_step_purpose_seed_change_the_stream():
    base = _kernels.philox_uniform(np.array(3, np.int64), 0, np.array([1, 2, 64], np.int64))
    other_step = _kernels.philox_uniform(np.array(3, np.int64), 1, np.array([1, 2, 64], np.int64))
    other_seed = _kernels.philox_uniform(np.array(4, np.int64), 0, np.array([1, 2, 64], np.int64))
    assert not np.array_equal(base, other_step)
    assert not np.array_equal(base, other_seed)
    assert not np.array_equal(base[0], base[1])
    assert len(np.unique(base)) == base.size


def test_uniform_statistics_and_open_interval():
    u = _kernels.philox_uniform(np.array(2024, np.int64), 3, np.array([4, 10, 2500], np.int64), threads=2).ravel()
    assert u.size == 200_000
    assert 0.0 < u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    assert abs(u.var() - 1 / 12) < 0.002
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # Consecutive values (along t) are uncorrelated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    # The extreme words map strictly inside (0, 1), exactly.
    lowest, highest = np.float32((0 + 0.5) / 2**23), np.float32(((MASK32 >> 9) + 0.5) / 2**23)
    assert lowest > 0 and highest < 1 and float(highest) == 1 - 2**-24


def test_output_shape_with_symbolic_dims_and_empty():
    feeds = feeds_for(np.array(1, np.int64), 0, (2, 0, 5))
    assert run_native(model_for(feeds), feeds)[0].shape == (2, 2, 0, 5)


@pytest.mark.parametrize(
    "seed,step,shape,message",
    [
        (np.array([1, 2], np.int64), 0, np.array([3, 1, 1], np.int64), "seed"),
        (np.zeros((1, 1), np.int64), 0, np.array([1, 1, 1], np.int64), "seed"),
        (np.array(1, np.int64), -1, np.array([1, 1, 1], np.int64), "step"),
        (np.array(1, np.int64), 2**32, np.array([1, 1, 1], np.int64), "step"),
        (np.array(1, np.int64), 0, np.array([1, -1, 1], np.int64), "shape"),
        (np.array(1, np.int64), 0, np.array([1, 1], np.int64), "shape"),
    ],
)
def test_bad_inputs(seed, step, shape, message):
    feeds = {"seed": seed, "step": np.array(step, np.int64), "shape": shape}
    error = native_error(model_for(feeds), feeds)
    assert "PhiloxUniform" in error and message in error
    with pytest.raises(ValueError, match=message):
        _kernels.philox_uniform(seed, step, shape)
