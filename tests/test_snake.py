"""vampnet.Snake: kernel == reference function == numpy (float64); errors; pybind agrees; thread invariance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

import vampnet_ort
from op_cases import SNAKE_TOLERANCE, snake_numpy
from op_testing import inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels


def snake_model(x: np.ndarray, alpha: np.ndarray):
    return op_model("Snake", {"X": x, "alpha": alpha}, [("Y", TensorProto.FLOAT, ["X_d0", "X_d1", "X_d2"])])


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.sampled_from([1, 3, 16, 67]),
    length=st.sampled_from([1, 2, 15, 16, 17, 1000]),
    flat_alpha=st.booleans(),
    scale=st.sampled_from([0.1, 1.0, 30.0, 3000.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matches_reference_and_numpy(batch, channels, length, flat_alpha, scale, seed) -> None:
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal((batch, channels, length))).astype(np.float32)
    alpha = rng.uniform(0.05, 3.0, channels).astype(np.float32)
    alpha = alpha if flat_alpha else alpha.reshape(1, channels, 1)
    expected = snake_numpy(x, alpha)
    feeds = {"X": x, "alpha": alpha}
    tol = SNAKE_TOLERANCE.bound(expected, feeds)  # float32 representation and sin^2 rounding (tests/op_cases.py)
    (native,), (reference,) = run_both(snake_model(x, alpha), feeds)
    assert np.all(np.abs(native - expected) <= tol)
    assert np.all(np.abs(reference - expected) <= tol)
    np.testing.assert_array_equal(_kernels.snake(x, alpha), native)


def test_large_arguments_take_the_exact_path() -> None:
    # |alpha x| beyond the fast range reduction (65536) falls back to std::sin for the row.
    x = np.array([[[1e6, -3e5, 7.5, 0.0, 70000.0]]], dtype=np.float32)
    alpha = np.array([1.3], dtype=np.float32)
    expected = x.astype(np.float64) + np.sin(np.float32(1.3) * x).astype(np.float64) ** 2 / (1.3 + 1e-9)
    (native,), _ = run_both(snake_model(x, alpha), {"X": x, "alpha": alpha})
    np.testing.assert_allclose(native, expected, rtol=1e-6, atol=1e-6)


def test_threads_and_shape_inference() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 96, 5000)).astype(np.float32)
    alpha = rng.uniform(0.5, 1.5, (1, 96, 1)).astype(np.float32)
    model = snake_model(x, alpha)
    feeds = {"X": x, "alpha": alpha}
    np.testing.assert_array_equal(run_native(model, feeds, threads=1)[0], run_native(model, feeds, threads=2)[0])
    np.testing.assert_array_equal(_kernels.snake(x, alpha, threads=1), _kernels.snake(x, alpha, threads=3))
    assert inferred_output_shapes(model) == [["X_d0", "X_d1", "X_d2"]]


def test_empty_length_is_fine() -> None:
    x = np.zeros((2, 3, 0), np.float32)
    alpha = np.ones(3, np.float32)
    (native,), (reference,) = run_both(snake_model(x, alpha), {"X": x, "alpha": alpha})
    assert native.shape == reference.shape == (2, 3, 0)


@pytest.mark.parametrize(
    "x_shape, a_shape, message",
    [
        ((2, 8), (8,), "input 'X' must have rank 3"),
        ((2, 3, 8), (4,), "input 'alpha' dim 0 is 4 but must equal the channel dim of X"),
        ((2, 3, 8), (1, 3, 2), "input 'alpha' must have shape [1, C, 1] or [C] with C = 3"),
        ((2, 3, 8), (3, 1), "input 'alpha' must have shape [1, C, 1] or [C], got [3, 1]"),
    ],
)
def test_bad_shapes_are_reported(x_shape, a_shape, message) -> None:
    x, a = np.zeros(x_shape, np.float32), np.ones(a_shape, np.float32)
    feeds = {"X": x, "alpha": a}
    model = op_model("Snake", feeds, [("Y", TensorProto.FLOAT, ["a", "b", "c"])])
    assert message in native_error(model, feeds)
    with pytest.raises(ValueError, match="Snake: " + message.replace("[", r"\[").replace("]", r"\]")):
        _kernels.snake(x, a)


@pytest.mark.parametrize("flat_alpha", [True, False])
def test_channels_last_matches_channels_first(flat_alpha: bool) -> None:
    """channels_last=1 on X [B, L, C] is the channels-first op on the transposed X, bit for bit (kernel and pybind),
    and the reference function agrees within the tolerance."""
    rng = np.random.default_rng(3)
    x = (4.0 * rng.standard_normal((2, 37, 67))).astype(np.float32)  # [B, L, C]
    alpha = rng.uniform(0.05, 3.0, 67).astype(np.float32)
    alpha_cl = alpha if flat_alpha else alpha.reshape(1, 1, 67)
    feeds = {"X": x, "alpha": alpha_cl}
    model = op_model("Snake", feeds, [("Y", TensorProto.FLOAT, ["a", "b", "c"])], {"channels_last": 1})
    (native,), (reference,) = run_both(model, feeds)
    channels_first = _kernels.snake(np.ascontiguousarray(x.transpose(0, 2, 1)), alpha)
    np.testing.assert_array_equal(native, channels_first.transpose(0, 2, 1))
    np.testing.assert_array_equal(_kernels.snake(x, alpha_cl, channels_last=1, threads=3), native)
    expected = snake_numpy(x, alpha, channels_last=1)
    assert np.all(np.abs(reference - expected) <= SNAKE_TOLERANCE.bound(expected, feeds))
    # a large argument in one element sends that row through the exact path; the others keep the fast one
    x[1, 5, 3] = 1e6
    (native,), _ = run_both(model, {"X": x, "alpha": alpha_cl})
    expected = snake_numpy(x, alpha, channels_last=1)
    np.testing.assert_allclose(native, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "x_shape, a_shape, attributes, message",
    [
        ((2, 8, 3), (1, 3, 1), {"channels_last": 1}, "input 'alpha' must have shape [1, 1, C] or [C] with C = 3"),
        ((2, 8, 3), (8,), {"channels_last": 1}, "input 'alpha' dim 0 is 8 but must equal the channel dim of X"),
    ],
)
def test_channels_last_errors(x_shape, a_shape, attributes, message) -> None:
    x, a = np.zeros(x_shape, np.float32), np.ones(a_shape, np.float32)
    feeds = {"X": x, "alpha": a}
    model = op_model("Snake", feeds, [("Y", TensorProto.FLOAT, ["a", "b", "c"])], attributes)
    assert message in native_error(model, feeds)
    with pytest.raises(ValueError, match="Snake: " + message.replace("[", r"\[").replace("]", r"\]")):
        _kernels.snake(x, a, channels_last=attributes["channels_last"])


def test_bad_channels_last_is_rejected() -> None:
    x, a = np.zeros((2, 3, 8), np.float32), np.ones(3, np.float32)
    model = op_model("Snake", {"X": x, "alpha": a}, [("Y", TensorProto.FLOAT, ["a", "b", "c"])], {"channels_last": 2})
    with pytest.raises(Exception, match="attribute 'channels_last' must be 0 or 1, got 2"):
        vampnet_ort.create_session(model.SerializeToString()).run(None, {"X": x, "alpha": a})
    with pytest.raises(ValueError, match="attribute 'channels_last' must be 0 or 1, got 2"):
        _kernels.snake(x, a, channels_last=2)
