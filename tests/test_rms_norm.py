"""vampnet.RMSNorm: kernel == reference function == numpy; errors; pybind agrees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from op_cases import numpy_rms_norm
from op_testing import inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels


def rms_model(x: np.ndarray, scale: np.ndarray, eps: float | None = None):
    attrs = {} if eps is None else {"epsilon": eps}
    out_shape = [f"X_d{i}" for i in range(x.ndim)]
    return op_model("RMSNorm", {"X": x, "scale": scale}, [("Y", TensorProto.FLOAT, out_shape)], attrs)


@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 7), min_size=0, max_size=3),
    dim=st.sampled_from([1, 3, 13, 64, 67, 100, 1280]),
    eps=st.sampled_from([None, 1e-6, 1e-3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matches_reference_and_numpy(lead: list[int], dim: int, eps: float | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, dim)).astype(np.float32) * rng.uniform(0.01, 10)
    scale = (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
    expected = numpy_rms_norm(x, scale, 1e-6 if eps is None else eps)
    (native,), (reference,) = run_both(rms_model(x, scale, eps), {"X": x, "scale": scale})
    np.testing.assert_allclose(native, expected, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(reference, expected, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(_kernels.rms_norm(x, scale, 1e-6 if eps is None else eps), native, rtol=0, atol=0)


def test_thread_count_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 575, 1280)).astype(np.float32)
    scale = rng.standard_normal(1280).astype(np.float32)
    model = rms_model(x, scale)
    one = run_native(model, {"X": x, "scale": scale}, threads=1)[0]
    two = run_native(model, {"X": x, "scale": scale}, threads=2)[0]
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(_kernels.rms_norm(x, scale, threads=1), _kernels.rms_norm(x, scale, threads=4))


def test_nan_and_inf_propagate_without_crashing() -> None:
    x = np.ones((2, 8), np.float32)
    x[0, 3] = np.nan
    x[1, 2] = np.inf
    scale = np.ones(8, np.float32)
    y = run_native(rms_model(x, scale), {"X": x, "scale": scale})[0]
    assert np.isnan(y[0]).all()
    assert not np.isfinite(y[1]).all()


def test_shape_inference_gives_output_shape() -> None:
    x = np.zeros((2, 5, 16), np.float32)
    model = rms_model(x, np.zeros(16, np.float32))
    assert inferred_output_shapes(model) == [["X_d0", "X_d1", "X_d2"]]


@pytest.mark.parametrize(
    "x_shape, scale_shape, message",
    [
        ((2, 8), (7,), "input 'scale' dim 0 is 7 but must equal the last dim of X"),
        ((2, 8), (2, 8), "input 'scale' must have rank 1"),
        ((0, 8), (8,), "input 'X' is empty"),
    ],
)
def test_bad_shapes_are_reported(x_shape, scale_shape, message) -> None:
    x = np.zeros(x_shape, np.float32)
    scale = np.zeros(scale_shape, np.float32)
    assert message in native_error(rms_model(x, scale), {"X": x, "scale": scale})
    with pytest.raises(ValueError, match="RMSNorm: " + message):
        _kernels.rms_norm(x, scale)


def test_wrong_dtype_is_rejected() -> None:
    x = np.zeros((2, 8), np.float64)
    model = op_model("RMSNorm", {"X": x, "scale": np.zeros(8, np.float64)}, [("Y", TensorProto.DOUBLE, ["a", "b"])])
    with pytest.raises(Exception, match="(?i)type"):
        run_native(model, {"X": x, "scale": np.zeros(8)})


def test_bad_epsilon_attribute_is_an_error() -> None:
    x = np.zeros((2, 8), np.float32)
    scale = np.zeros(8, np.float32)
    model = rms_model(x, scale, eps=-1.0)
    with pytest.raises(Exception, match="epsilon"):
        run_native(model, {"X": x, "scale": scale})
