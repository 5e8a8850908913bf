"""vampnet.FiLM: kernel == reference function == numpy; errors; pybind agrees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from op_cases import numpy_film
from op_testing import inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels


def film_model(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray):
    return op_model("FiLM", {"X": x, "gamma": gamma, "beta": beta}, [("Y", TensorProto.FLOAT, ["X_d0", "X_d1", "X_d2"])])


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 4),
    time=st.sampled_from([1, 2, 37, 575]),
    dim=st.sampled_from([1, 5, 64, 67, 1280]),
    broadcast=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matches_reference_and_numpy(batch: int, time: int, dim: int, broadcast: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, time, dim)).astype(np.float32)
    cond_batch = 1 if broadcast else batch
    gamma = rng.standard_normal((cond_batch, dim)).astype(np.float32)
    beta = rng.standard_normal((cond_batch, dim)).astype(np.float32)
    expected = numpy_film(x, gamma, beta)
    feeds = {"X": x, "gamma": gamma, "beta": beta}
    (native,), (reference,) = run_both(film_model(x, gamma, beta), feeds)
    np.testing.assert_allclose(native, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reference, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(_kernels.film(x, gamma, beta), native)


def test_threads_and_shape_inference() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 575, 1280)).astype(np.float32)
    gamma = rng.standard_normal((2, 1280)).astype(np.float32)
    beta = rng.standard_normal((2, 1280)).astype(np.float32)
    model = film_model(x, gamma, beta)
    feeds = {"X": x, "gamma": gamma, "beta": beta}
    np.testing.assert_array_equal(run_native(model, feeds, threads=1)[0], run_native(model, feeds, threads=2)[0])
    assert inferred_output_shapes(model) == [["X_d0", "X_d1", "X_d2"]]


@pytest.mark.parametrize(
    "x_shape, g_shape, b_shape, message",
    [
        ((2, 3, 8), (2, 7), (2, 7), "input 'gamma' dim 1 is 7 but must equal the last dim of X"),
        ((2, 3, 8), (3, 8), (3, 8), "input 'gamma' dim 0 must be 1 or the batch size of X"),
        ((2, 3, 8), (2, 8), (1, 8), "inputs 'gamma' and 'beta' must have the same shape"),
        ((2, 8), (2, 8), (2, 8), "input 'X' must have rank 3"),
        ((2, 0, 8), (2, 8), (2, 8), "input 'X' is empty"),
    ],
)
def test_bad_shapes_are_reported(x_shape, g_shape, b_shape, message) -> None:
    x, g, b = (np.zeros(s, np.float32) for s in (x_shape, g_shape, b_shape))
    feeds = {"X": x, "gamma": g, "beta": b}
    model = op_model("FiLM", feeds, [("Y", TensorProto.FLOAT, ["a", "b", "c"])])
    assert message in native_error(model, feeds)
    with pytest.raises(ValueError, match="FiLM: " + message):
        _kernels.film(x, g, b)
