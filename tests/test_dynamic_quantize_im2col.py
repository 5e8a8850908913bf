"""vampnet.DynamicQuantizeIm2Col: ONNX Runtime's DynamicQuantizeLinear fused with a 1-D conv's im2col.

Kernel == reference function (stock ORT's DynamicQuantizeLinear, Pad, Gather) == numpy, bit for bit, on random and
special values; the im2col layout checked through the GEMM it feeds against an independent numpy convolution;
errors for bad inputs and attributes (ORT and pybind); thread invariance; shape inference.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import vampnet_ort
from op_cases import dynamic_quantize_im2col_numpy, dynamic_quantize_linear_numpy
from op_testing import inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels

OUTPUTS = [("Y", TensorProto.UINT8, ["y0", "y1", "y2"]), ("Y_scale", TensorProto.FLOAT, []),
           ("Y_zero_point", TensorProto.UINT8, [])]


def im2col_model(x: np.ndarray, **attributes: int):
    return op_model("DynamicQuantizeIm2Col", {"X": x}, OUTPUTS, attributes)


def assert_all_agree(x: np.ndarray, kernel_size: int = 1, dilation: int = 1, padding: int = 0) -> list[np.ndarray]:
    attributes = {"kernel_size": kernel_size, "dilation": dilation, "padding": padding}
    native, reference = run_both(im2col_model(x, **attributes), {"X": x})
    expected = dynamic_quantize_im2col_numpy(x, kernel_size, dilation, padding)
    pybind = _kernels.dynamic_quantize_im2col(x, kernel_size, dilation, padding, threads=2)
    for got_native, got_reference, got_pybind, want in zip(native, reference, pybind, expected):
        assert got_native.dtype == want.dtype
        np.testing.assert_array_equal(got_native, want)
        np.testing.assert_array_equal(got_reference, want)
        np.testing.assert_array_equal(got_pybind, want)
    return native


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 2),
    channels=st.sampled_from([1, 3, 16, 67, 192]),
    length=st.integers(1, 300),
    kernel_size=st.sampled_from([1, 2, 3, 7, 11]),
    dilation=st.sampled_from([1, 3, 9]),
    extra_padding=st.integers(0, 3),
    scale=st.sampled_from([1e-3, 1.0, 50.0]),
    offset=st.sampled_from([-3.0, 0.0, 0.7]),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matches_reference_function_and_numpy(batch, channels, length, kernel_size, dilation, extra_padding,
                                                      scale, offset, seed) -> None:
    padding = dilation * (kernel_size - 1) // 2 + extra_padding  # "same" padding and more
    length = max(length, dilation * (kernel_size - 1) - 2 * padding + 1)  # L_out >= 1
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal((batch, length, channels)) + offset * scale).astype(np.float32)
    assert_all_agree(x, kernel_size, dilation, padding)


@pytest.mark.parametrize("values", [
    [0.0, 0.0, 0.0],  # all zero: ORT's scale 1, zero point 0
    [0.0, -0.0, 0.0],
    [1e-30, 0.0, 0.0],
    [1e-45, -1e-45, 0.0],  # the scale underflows to 0 (x / 0 = +-inf, clamped)
    [1e-45, 0.0, 0.0],  # ... and 0 / 0
    [3e38, -3e38, 1.0],  # the range overflows: scale inf
    [2.5, 2.5, 2.5],  # positive constant: zero point 0
    [-7.0, -1.0, -3.0],  # all negative: zero point 255
    [0.5, -0.5, 0.25],  # halves: round half to even in the zero point and the values
], ids=lambda v: ",".join(str(x) for x in v))
def test_special_values_quantize_as_onnx_runtime_does(values) -> None:
    x = np.array(values, np.float32).reshape(1, 3, 1)
    native = assert_all_agree(x, kernel_size=3, dilation=1, padding=1)
    # ... and as ORT's own DynamicQuantizeLinear node (the numpy model above is checked against it here)
    graph = helper.make_graph([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(n, t, None) for n, t in
                               (("y", TensorProto.UINT8), ("s", TensorProto.FLOAT), ("z", TensorProto.UINT8))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    q, scale, zero_point = vampnet_ort.create_session(model.SerializeToString(), with_library=False).run(None, {"x": x})
    np.testing.assert_array_equal(native[1], scale)
    np.testing.assert_array_equal(native[2], zero_point)
    np.testing.assert_array_equal(native[0][0, :, 1], q[0, :, 0])  # tap 1 of row t is X[t] (C = 1)
    expected = dynamic_quantize_linear_numpy(x)
    np.testing.assert_array_equal(expected[0], q)


def test_im2col_feeds_a_gemm_that_is_the_convolution() -> None:
    """(Y - zero point) @ W_q [k*C, C'] * scale equals numpy's convolution of the dequantized X with W_q: the layout
    (tap-major columns, zero-point padding) is what MatMulInteger needs (export/quantize.py codec_conv_weight_int8)."""
    rng = np.random.default_rng(0)
    batch, length, channels, out_channels, k, d = 2, 50, 6, 5, 3, 4
    padding = d * (k - 1) // 2
    x = rng.standard_normal((batch, length, channels)).astype(np.float32)
    w = rng.integers(-127, 128, (out_channels, channels, k)).astype(np.int64)  # conv weight [C', C, k]
    y, scale, zero_point = run_native(im2col_model(x, kernel_size=k, dilation=d, padding=padding), {"X": x})
    w_q = w.transpose(2, 1, 0).reshape(k * channels, out_channels)  # row j*C + c = w[:, c, j]
    gemm = (y.astype(np.int64) - int(zero_point)) @ w_q  # [B, L, C'] int64: exact
    q = dynamic_quantize_linear_numpy(x)[0].astype(np.int64) - int(zero_point)  # dequantized / scale
    conv = np.zeros((batch, length, out_channels), np.int64)
    for t in range(length):
        for j in range(k):
            s = t + j * d - padding
            if 0 <= s < length:
                conv[:, t] += q[:, s] @ w[:, :, j].T
    np.testing.assert_array_equal(gemm, conv)
    assert float(scale) > 0


def test_threads_and_shape_inference() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3000, 96)).astype(np.float32)
    model = im2col_model(x, kernel_size=7, dilation=3, padding=9)
    one, two = run_native(model, {"X": x}, threads=1), run_native(model, {"X": x}, threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_kernels.dynamic_quantize_im2col(x, 7, 3, 9, threads=1), one):
        np.testing.assert_array_equal(a, b)
    shapes = inferred_output_shapes(model)
    assert shapes[1:] == [[], []]
    assert len(shapes[0]) == 3


@pytest.mark.parametrize(
    "shape, attributes, message",
    [
        ((4, 6), {}, "input 'X' must have rank 3"),
        ((1, 0, 3), {}, "input 'X' is empty"),
        ((1, 4, 2), {"kernel_size": 7, "dilation": 1, "padding": 0},
         "input 'X' is too short for the conv window"),
    ],
)
def test_bad_inputs_are_reported(shape, attributes, message) -> None:
    x = np.ones(shape, np.float32)
    assert message in native_error(im2col_model(x, **attributes), {"X": x})
    args = {"kernel_size": 1, "dilation": 1, "padding": 0, **attributes}
    with pytest.raises(ValueError, match="DynamicQuantizeIm2Col: " + message):
        _kernels.dynamic_quantize_im2col(x, **args)


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"kernel_size": 0}, "attribute 'kernel_size' must be >= 1, got 0"),
        ({"dilation": 0}, "attribute 'dilation' must be >= 1, got 0"),
        ({"padding": -1}, "attribute 'padding' must be >= 0, got -1"),
        ({"kernel_size": 2**25}, "must each be <= 2\\^24"),
    ],
)
def test_bad_attributes_are_rejected(attributes, message) -> None:
    x = np.ones((1, 4, 2), np.float32)
    with pytest.raises(Exception, match=message):  # when the session creates the kernel
        vampnet_ort.create_session(im2col_model(x, **attributes).SerializeToString()).run(None, {"X": x})
    with pytest.raises(ValueError, match=message):
        _kernels.dynamic_quantize_im2col(x, **{"kernel_size": 1, "dilation": 1, "padding": 0, **attributes})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(bad: float) -> None:
    x = np.ones((1, 40, 3), np.float32)
    x[0, 37, 1] = bad
    message = "input 'X' holds NaN or infinite values"
    assert message in native_error(im2col_model(x, kernel_size=3, padding=1), {"X": x})
    with pytest.raises(ValueError, match=message):
        _kernels.dynamic_quantize_im2col(x, 3, 1, 1)
