"""vampnet.RelativePositionAttentionInt8: RelativePositionAttention with int8 QK^T and PV (docs/ATTENTION.md).

Expected values: an independent numpy implementation of the quantization written from the op's definition
(ops/cpp/relative_position_attention_int8.h) with float64 softmax, and the float32 op (the int8 op must stay close
to it). Kernel (ORT + library), reference function (stock ORT), pybind, VNNI and portable paths, thread counts.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import vampnet_ort
from op_testing import native_error, op_model, run_both
from op_cases import numpy_attention, numpy_int8_attention
from vampnet_ort import _kernels, ops

OP = "RelativePositionAttentionInt8"
OUT_DIMS = ["out_b", "out_t", "out_d"]


def int8_model(heads: int, **attrs: int) -> onnx.ModelProto:
    feeds = {"qkv": np.zeros((1, 1, 3 * heads), np.float32), "rel_bias": np.zeros((1, heads), np.float32)}
    return op_model(OP, feeds, [("out", TensorProto.FLOAT, OUT_DIMS)], {"num_heads": heads, **attrs})


def _feeds(batch: int, t: int, heads: int, head_dim: int, seed: int = 0, buckets: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"qkv": rng.standard_normal((batch, t, 3 * heads * head_dim)).astype(np.float32),
            "rel_bias": rng.standard_normal((buckets, heads)).astype(np.float32)}


@pytest.mark.parametrize("batch, t, heads, head_dim", [(1, 1, 1, 4), (2, 37, 4, 16), (1, 130, 2, 64), (1, 19, 3, 5)])
def test_kernel_reference_numpy_and_float(batch: int, t: int, heads: int, head_dim: int) -> None:
    feeds = _feeds(batch, t, heads, head_dim)
    (native,), (reference,) = run_both(int8_model(heads), feeds)
    expected = numpy_int8_attention(feeds["qkv"], feeds["rel_bias"], heads)
    scale = float(np.abs(expected).max())
    # numpy's float64 softmax may land a probability on the other side of a uint8 rounding step: tiny differences
    np.testing.assert_allclose(native, expected, rtol=0, atol=2e-2 * scale)
    assert np.mean(np.abs(native - expected)) < 2e-3 * scale
    np.testing.assert_allclose(reference, native, rtol=0, atol=2e-2 * scale)
    pybind = _kernels.relative_position_attention_int8(feeds["qkv"], feeds["rel_bias"], heads)
    np.testing.assert_array_equal(pybind, native)
    # int8 stays close to the float32 op
    exact = numpy_attention(feeds["qkv"], feeds["rel_bias"], heads)
    assert np.linalg.norm(native - exact) / np.linalg.norm(exact) < 0.03


def test_vnni_and_portable_paths_and_threads_are_bit_identical() -> None:
    feeds = _feeds(2, 75, 4, 64, seed=1)
    args = (feeds["qkv"], feeds["rel_bias"], 4)
    base = _kernels.relative_position_attention_int8(*args, threads=1)
    np.testing.assert_array_equal(_kernels.relative_position_attention_int8(*args, threads=1, allow_vnni=False), base)
    np.testing.assert_array_equal(_kernels.relative_position_attention_int8(*args, threads=3), base)
    model = int8_model(4).SerializeToString()
    outs = [vampnet_ort.create_session(model, intra_op_threads=n).run(None, feeds)[0] for n in (1, 2, 4)]
    for out in outs:
        np.testing.assert_array_equal(out, base)


def test_reports_its_path() -> None:
    assert isinstance(_kernels.attention_int8_has_vnni(), bool)


def test_nan_propagates() -> None:
    feeds = _feeds(1, 9, 2, 8, seed=2)
    d = 16
    feeds["qkv"][0, 3, 0] = np.nan  # query row 3, head 0
    feeds["qkv"][0, 5, 2 * d + 9] = np.inf  # value column 1 of head 1
    out = _kernels.relative_position_attention_int8(feeds["qkv"], feeds["rel_bias"], 2)
    assert np.isnan(out[0, 3, :8]).all() and np.isfinite(np.delete(out[0, :, :8], 3, axis=0)).all()
    assert np.isnan(out[0, :, 9]).all() and np.isfinite(np.delete(out[0, :, 8:], 1, axis=1)).all()
    feeds["qkv"][0, 4, d + 1] = np.nan  # a key of head 0: the whole head
    out = _kernels.relative_position_attention_int8(feeds["qkv"], feeds["rel_bias"], 2)
    assert np.isnan(out[0, :, :8]).all()


def _unshaped(attrs: dict[str, int]) -> onnx.ModelProto:
    node = helper.make_node(OP, ["qkv", "rel_bias"], ["out"], domain=ops.DOMAIN, **attrs)
    f = TensorProto.FLOAT
    graph = helper.make_graph([node], "unshaped", [helper.make_tensor_value_info("qkv", f, None),
                                                   helper.make_tensor_value_info("rel_bias", f, None)],
                              [helper.make_tensor_value_info("out", f, None)])
    return ops.make_model(graph)


@pytest.mark.parametrize(
    "qkv_shape, bias_shape, message",
    [((1, 4, 36), (32, 5), "one bias column per head"), ((4, 36), (32, 4), "'qkv' must have rank 3"),
     ((1, 4, 37), (32, 4), "last dim must be 3*D"), ((1, 4, 30), (32, 4), "not divisible by num_heads")],
)
def test_bad_inputs_are_rejected(qkv_shape, bias_shape, message) -> None:
    qkv, rel_bias = np.zeros(qkv_shape, np.float32), np.zeros(bias_shape, np.float32)
    text = native_error(_unshaped({"num_heads": 4}), {"qkv": qkv, "rel_bias": rel_bias})
    assert f"{OP}: " in text and message in text, text
    with pytest.raises(ValueError, match=re.escape(message)):
        _kernels.relative_position_attention_int8(qkv, rel_bias, 4)


def test_too_long_is_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds 65536"):
        _kernels.relative_position_attention_int8(np.zeros((1, 65537, 3), np.float32), np.zeros((32, 1), np.float32), 1)


@pytest.mark.parametrize("attrs, message", [({}, "'num_heads' is required"), ({"num_heads": 0}, "must be > 0"),
                                            ({"num_heads": 2, "num_buckets": 31}, "must be even")])
def test_bad_attributes_are_rejected(attrs, message) -> None:
    with pytest.raises(Exception, match=message):
        vampnet_ort.create_session(_unshaped(attrs).SerializeToString()).run(
            None, {"qkv": np.zeros((1, 2, 6), np.float32), "rel_bias": np.zeros((32, 2), np.float32)})


def test_reference_function_is_float32_only_and_checks() -> None:
    model = int8_model(4)
    onnx.checker.check_model(model, full_check=True)
    function = next(f for f in model.functions if f.name == OP)
    for node in function.node:
        for attr in node.attribute:
            assert not (node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.DOUBLE), "no float64"
            if attr.name == "axis":
                assert attr.i >= 0, f"{node.op_type} with a negative axis"


def test_int8_bundles_use_it() -> None:
    from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import GOLDEN_LIKE_CONFIG, random_codec
    from vampnet_ort.export.vampnet_export import logits_model

    ckpt = random_vampnet_checkpoint(vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=2, embedding_dim=32), seed=1)
    codec = random_codec(GOLDEN_LIKE_CONFIG, seed=0)

    def op_types(model: onnx.ModelProto) -> set[str]:
        found: set[str] = set()

        def visit(g: onnx.GraphProto) -> None:
            for node in g.node:
                found.add(node.op_type)
                for attr in node.attribute:
                    if attr.type == onnx.AttributeProto.GRAPH:
                        visit(attr.g)
        visit(model.graph)
        return found

    assert OP in op_types(logits_model(ckpt, codec, quantize="int8"))
    for precision in ("none", "int4"):
        types = op_types(logits_model(ckpt, codec, quantize=precision))
        assert OP not in types and "RelativePositionAttention" in types


def test_odd_shapes_all_paths_agree() -> None:
    """Head dims and lengths off every packing multiple (4, 16, 32): VNNI == portable, and both near numpy."""
    rng = np.random.default_rng(7)
    for _ in range(24):
        batch, t, heads, head_dim = (int(rng.integers(1, 3)), int(rng.integers(1, 70)), int(rng.integers(1, 4)),
                                     int(rng.integers(1, 40)))
        feeds = _feeds(batch, t, heads, head_dim, seed=int(rng.integers(1 << 30)))
        args = (feeds["qkv"], feeds["rel_bias"], heads)
        fast = _kernels.relative_position_attention_int8(*args, threads=2)
        np.testing.assert_array_equal(_kernels.relative_position_attention_int8(*args, allow_vnni=False), fast)
        expected = numpy_int8_attention(*args)
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(fast, expected, rtol=0, atol=2e-2 * scale, err_msg=str((batch, t, heads, head_dim)))
