"""vampnet.RelativePositionAttention: golden buckets/bias, golden layer attention, kernel == reference == numpy,
thread-count independence, NaN/inf, errors, model checks."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import onnx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import vampnet_ort
from op_cases import numpy_attention, numpy_buckets  # the numpy references (also read by the int8 op's tests)
from op_testing import GOLDEN, golden, inferred_output_shapes, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels, ops

OP = "RelativePositionAttention"
OUT_DIMS = ["out_b", "out_t", "out_d"]


def attention_model(heads: int, num_buckets: int | None = None, max_distance: int | None = None,
                    symbolic: bool = True) -> onnx.ModelProto:
    attrs: dict[str, int] = {"num_heads": heads}
    if num_buckets is not None:
        attrs["num_buckets"] = num_buckets
    if max_distance is not None:
        attrs["max_distance"] = max_distance
    feeds = {"qkv": np.zeros((1, 1, 3 * heads), np.float32), "rel_bias": np.zeros((1, heads), np.float32)}
    return op_model(OP, feeds, [("out", TensorProto.FLOAT, OUT_DIMS)], attrs, symbolic=symbolic)


# ---- golden: buckets and bias ------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def golden_state(model: str) -> tuple[dict[str, np.ndarray], dict]:
    from vampnet_ort.export.checkpoint import load_checkpoint

    ckpt = load_checkpoint(GOLDEN / f"{model}.pth")
    return ckpt.state, ckpt.kwargs


@pytest.mark.parametrize("t", [37, 300])
def test_buckets_match_golden(t: int) -> None:
    expected = golden("position_bias.npz")[f"buckets_T{t}"]
    np.testing.assert_array_equal(_kernels.relative_position_buckets(t, t, 32, 128), expected)
    np.testing.assert_array_equal(numpy_buckets(t), expected)  # the test's own reference agrees with upstream


@pytest.mark.parametrize("model", ["coarse", "c2f"])
@pytest.mark.parametrize("t", [37, 300])
def test_bias_through_the_op_matches_golden(model: str, t: int) -> None:
    """With q = k = 0 and V = identity over key positions, out[i, h, j] = softmax_j(bias[h, i, j])."""
    state, _ = golden_state(model)
    rel_bias = state["transformer.layers.0.self_attn.relative_attention_bias.weight"]
    heads = rel_bias.shape[1]
    golden_bias = golden("position_bias.npz")[f"{model}_bias_T{t}"][:, 0]  # [H, T, T]
    np.testing.assert_allclose(rel_bias[_kernels.relative_position_buckets(t, t)].transpose(2, 0, 1), golden_bias,
                               rtol=0, atol=1e-6)
    qkv = np.zeros((1, t, 3 * heads * t), np.float32)
    qkv[0, :, 2 * heads * t:] = np.tile(np.eye(t, dtype=np.float32), (1, heads))
    expected = np.exp(golden_bias.astype(np.float64) - golden_bias.max(-1, keepdims=True))
    expected = (expected / expected.sum(-1, keepdims=True)).transpose(1, 0, 2).reshape(1, t, heads * t)
    feeds = {"qkv": qkv, "rel_bias": rel_bias}
    (native,), (reference,) = run_both(attention_model(heads), feeds)
    np.testing.assert_allclose(native, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(reference, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("t", [37, 300])
def test_reference_function_buckets_are_exact(t: int) -> None:
    """rel_bias[b] = b: log-probabilities of the reference recover every bucket id exactly."""
    rel_bias = np.arange(32, dtype=np.float32)[:, None] * np.float32(0.5)
    qkv = np.zeros((1, t, 3 * t), np.float32)
    qkv[0, :, 2 * t:] = np.eye(t, dtype=np.float32)
    (native,), (reference,) = run_both(attention_model(1), {"qkv": qkv, "rel_bias": rel_bias})
    expected = golden("position_bias.npz")[f"buckets_T{t}"]
    for probs in (native[0], reference[0]):
        logp = np.log(probs.astype(np.float64))
        recovered = np.rint(2 * (logp - logp[:, :1]) + expected[:, :1])
        np.testing.assert_array_equal(recovered, expected)


# ---- golden: one transformer layer's attention block ---------------------------------------------------------------


def numpy_rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 / np.sqrt(np.mean(x64 * x64, -1, keepdims=True) + 1e-6) * w


def numpy_ffn(x: np.ndarray, norm_w: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """GEGLU feed-forward (tests/golden/README.md item 12) in float64, independent of the graph."""
    y = numpy_rms(x, norm_w) @ w1.T.astype(np.float64)
    a, b = np.split(y, 2, axis=-1)
    gelu = 0.5 * b * (1 + np.tanh(np.sqrt(2 / np.pi) * (b + 0.044715 * b**3)))
    return (a * gelu) @ w2.T.astype(np.float64)


def attention_block_model(d: int, heads: int) -> onnx.ModelProto:
    """x -> RMSNorm(norm_1) -> MatMul [Wq;Wk;Wv]^T -> RelativePositionAttention -> MatMul Wo^T (the graph's way)."""
    nodes = [
        helper.make_node("RMSNorm", ["x", "norm_w"], ["normed"], domain=ops.DOMAIN, epsilon=1e-6),
        helper.make_node("MatMul", ["normed", "w_qkv_t"], ["qkv"]),
        helper.make_node(OP, ["qkv", "rel_bias"], ["context"], domain=ops.DOMAIN, num_heads=heads),
        helper.make_node("MatMul", ["context", "w_o_t"], ["attn"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "attention_block",
        [helper.make_tensor_value_info("x", f, ["B", "T", d]), helper.make_tensor_value_info("norm_w", f, [d]),
         helper.make_tensor_value_info("w_qkv_t", f, [d, 3 * d]), helper.make_tensor_value_info("rel_bias", f, [32, heads]),
         helper.make_tensor_value_info("w_o_t", f, [d, d])],
        [helper.make_tensor_value_info("attn", f, ["B", "T", d])],
    )
    model = ops.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("model", ["coarse", "c2f"])
def test_layer_attention_reproduces_upstream_residual_stream(model: str) -> None:
    """Layer l: x_l = x_{l-1} + A(x_{l-1}) + F(x_{l-1} + A(x_{l-1})). A comes from our graph, F from numpy GEGLU;
    the attention change A is not stored upstream, so we compare the implied change x_l - x_{l-1} - F(h) with A
    (equivalently the predicted residual stream x_l) within 1e-5."""
    from vampnet_ort.export.checkpoint import StateReader

    state, kwargs = golden_state(model)
    reader = StateReader(state, f"{model}.pth")
    d, heads = int(kwargs["embedding_dim"]), int(kwargs["n_heads"])
    acts = golden("forward.npz")[f"{model}_activations"]  # [L, B, T, D]
    np.testing.assert_array_equal(golden("forward.npz")[f"{model}_latents"], golden("embedding.npz")[f"{model}_latents"])
    x_in = np.ascontiguousarray(golden("embedding.npz")[f"{model}_embedding"].transpose(0, 2, 1))
    rel_bias = reader.take("transformer.layers.0.self_attn.relative_attention_bias.weight", (32, heads))
    block = attention_block_model(d, heads)
    sessions = {th: vampnet_ort.create_session(block.SerializeToString(), intra_op_threads=th) for th in (1, 2)}
    reference_session = vampnet_ort.create_session(block.SerializeToString(), with_library=False)
    for layer in range(acts.shape[0]):
        p = f"transformer.layers.{layer}"
        w_qkv = np.concatenate([reader.linear(f"{p}.self_attn.w_{n}s", d, d) for n in "qkv"], axis=0)
        feeds = {"x": x_in, "norm_w": reader.take(f"{p}.norm_1.weight", (d,)), "w_qkv_t": np.ascontiguousarray(w_qkv.T),
                 "rel_bias": rel_bias, "w_o_t": np.ascontiguousarray(reader.linear(f"{p}.self_attn.fc", d, d).T)}
        attn = sessions[2].run(None, feeds)[0]
        np.testing.assert_array_equal(attn, sessions[1].run(None, feeds)[0])
        attn_reference = reference_session.run(None, feeds)[0]
        np.testing.assert_allclose(attn_reference, attn, rtol=0, atol=2e-6)
        h = x_in.astype(np.float64) + attn
        ffn = numpy_ffn(h, reader.take(f"{p}.norm_3.weight", (d,)), reader.linear(f"{p}.feed_forward.w_1", 4 * d, d),
                        reader.linear(f"{p}.feed_forward.w_2", d, 2 * d))
        implied_attn = acts[layer].astype(np.float64) - x_in - ffn
        np.testing.assert_allclose(attn, implied_attn, rtol=0, atol=1e-5, err_msg=f"{model} layer {layer}")
        np.testing.assert_allclose(h + ffn, acts[layer], rtol=0, atol=1e-5)
        x_in = acts[layer]


# ---- kernel == reference == numpy ----------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    batch=st.sampled_from([1, 3]),
    t=st.sampled_from([1, 2, 5, 37, 64, 65, 257, 301]),
    heads=st.sampled_from([1, 2, 3]),
    head_dim=st.sampled_from([1, 5, 16, 20, 33, 64, 80]),
    buckets=st.sampled_from([(32, 128), (8, 20), (4, 3), (64, 500)]),
    seed=st.integers(0, 2**31 - 1),
)
# Always covered: T = 1 and 2 with B = 3, H = 1; odd T > 2 * max_distance with a head dim that is not a power of 2.
@example(batch=3, t=1, heads=1, head_dim=5, buckets=(32, 128), seed=0)
@example(batch=3, t=2, heads=1, head_dim=20, buckets=(32, 128), seed=1)
@example(batch=3, t=301, heads=1, head_dim=33, buckets=(32, 128), seed=2)
@example(batch=1, t=257, heads=3, head_dim=80, buckets=(8, 20), seed=3)
def test_kernel_matches_reference_and_numpy(batch: int, t: int, heads: int, head_dim: int,
                                            buckets: tuple[int, int], seed: int) -> None:
    num_buckets, max_distance = buckets
    rng = np.random.default_rng(seed)
    qkv = (rng.standard_normal((batch, t, 3 * heads * head_dim)) * rng.uniform(0.3, 3)).astype(np.float32)
    rel_bias = rng.standard_normal((num_buckets, heads)).astype(np.float32)
    expected = numpy_attention(qkv, rel_bias, heads, num_buckets, max_distance)
    feeds = {"qkv": qkv, "rel_bias": rel_bias}
    (native,), (reference,) = run_both(attention_model(heads, num_buckets, max_distance), feeds)
    assert native.shape == (batch, t, heads * head_dim)
    # float32 scores up to |q.k| ~ 100 with sharp softmaxes: allow float32 rounding of that size.
    np.testing.assert_allclose(native, expected, rtol=2e-4, atol=5e-5)
    np.testing.assert_allclose(reference, expected, rtol=2e-4, atol=5e-5)
    pybind = _kernels.relative_position_attention(qkv, rel_bias, heads, num_buckets, max_distance, threads=3)
    np.testing.assert_array_equal(pybind, native)


def test_defaults_are_32_buckets_and_distance_128() -> None:
    rng = np.random.default_rng(1)
    qkv = rng.standard_normal((1, 300, 6)).astype(np.float32)
    rel_bias = rng.standard_normal((32, 1)).astype(np.float32)
    feeds = {"qkv": qkv, "rel_bias": rel_bias}
    (default_native,), (default_reference,) = run_both(attention_model(1), feeds)
    (explicit_native,), (explicit_reference,) = run_both(attention_model(1, 32, 128), feeds)
    np.testing.assert_array_equal(default_native, explicit_native)
    np.testing.assert_array_equal(default_reference, explicit_reference)


def test_thread_count_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    qkv = rng.standard_normal((2, 333, 3 * 96)).astype(np.float32)
    rel_bias = rng.standard_normal((32, 4)).astype(np.float32)
    feeds = {"qkv": qkv, "rel_bias": rel_bias}
    model = attention_model(4)
    one = run_native(model, feeds, threads=1)[0]
    two = run_native(model, feeds, threads=2)[0]
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(_kernels.relative_position_attention(qkv, rel_bias, 4, threads=1), one)
    np.testing.assert_array_equal(_kernels.relative_position_attention(qkv, rel_bias, 4, threads=5), one)


def test_long_sequence_4096() -> None:
    t, heads, head_dim = 4096, 2, 8
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((1, t, 3 * heads * head_dim)).astype(np.float32)
    rel_bias = rng.standard_normal((32, heads)).astype(np.float32)
    out = _kernels.relative_position_attention(qkv, rel_bias, heads, threads=2)
    rows = np.array([0, 1, 2047, 4000, 4095])
    dim = heads * head_dim
    q = qkv[0, rows, :dim].astype(np.float64).reshape(len(rows), heads, head_dim)
    k = qkv[0, :, dim:2 * dim].astype(np.float64).reshape(t, heads, head_dim)
    v = qkv[0, :, 2 * dim:].astype(np.float64).reshape(t, heads, head_dim)
    bias = rel_bias.astype(np.float64)[numpy_buckets(t)[rows]]  # [rows, T, H]
    scores = np.einsum("rhd,thd->rht", q, k) / np.sqrt(head_dim) + bias.transpose(0, 2, 1)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = np.einsum("rht,thd->rhd", probs, v).reshape(len(rows), dim)
    np.testing.assert_allclose(out[0, rows], expected, rtol=1e-4, atol=1e-5)


# ---- NaN / inf ------------------------------------------------------------------------------------------------------


def test_nan_propagates_and_infinite_bias_masks() -> None:
    rng = np.random.default_rng(3)
    heads, head_dim, t = 2, 8, 150
    dim = heads * head_dim
    qkv = rng.standard_normal((2, t, 3 * dim)).astype(np.float32)
    qkv[0, 5, 3] = np.nan  # query 5, head 0 -> only that output row of head 0
    qkv[1, 70, dim + head_dim + 1] = np.nan  # key 70, head 1 -> every row of head 1 in item 1
    rel_bias = rng.standard_normal((32, heads)).astype(np.float32)
    rel_bias[17:, 0] = -np.inf  # head 0 cannot look at later keys (a causal head)
    feeds = {"qkv": qkv, "rel_bias": rel_bias}
    (native,), (reference,) = run_both(attention_model(heads), feeds)
    expected = numpy_attention(qkv, rel_bias, heads)
    for got in (native, reference):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)  # NaN positions compare equal
    assert np.isnan(native[0, 5, :head_dim]).all() and not np.isnan(native[0, 4]).any()
    assert np.isnan(native[1, :, dim - head_dim:]).all() and not np.isnan(native[1, :, :head_dim]).any()
    # Every bias -inf: softmax over nothing -> NaN (as torch); +inf scores -> NaN; no crash either way.
    for value in (-np.inf, np.inf):
        out = run_native(attention_model(heads), {"qkv": qkv, "rel_bias": np.full((32, heads), value, np.float32)})[0]
        assert np.isnan(out).all()


# ---- errors ---------------------------------------------------------------------------------------------------------


def unshaped_model(attrs: dict[str, int]) -> onnx.ModelProto:
    """One node with inputs of unknown shape, so that wrong ranks reach the kernel (graph checks would refuse)."""
    node = helper.make_node(OP, ["qkv", "rel_bias"], ["out"], domain=ops.DOMAIN, **attrs)
    f = TensorProto.FLOAT
    graph = helper.make_graph([node], "unshaped", [helper.make_tensor_value_info("qkv", f, None),
                                                   helper.make_tensor_value_info("rel_bias", f, None)],
                              [helper.make_tensor_value_info("out", f, None)])
    return ops.make_model(graph)


@pytest.mark.parametrize(
    "qkv_shape, bias_shape, heads, message",
    [
        ((1, 4, 3 * 12), (32, 5), 4, "one bias column per head"),  # bias table with the wrong head count
        ((1, 4, 3 * 12), (16, 4), 4, "dim 0 != num_buckets"),
        ((1, 4, 3 * 12), (32 * 4,), 4, "'rel_bias' must have rank 2"),
        ((4, 3 * 12), (32, 4), 4, "'qkv' must have rank 3"),
        ((1, 4, 37), (32, 4), 4, "last dim must be 3*D"),
        ((1, 4, 3 * 10), (32, 4), 4, "not divisible by num_heads"),
    ],
)
def test_bad_inputs_are_rejected(qkv_shape, bias_shape, heads, message) -> None:
    qkv = np.zeros(qkv_shape, np.float32)
    rel_bias = np.zeros(bias_shape, np.float32)
    text = native_error(unshaped_model({"num_heads": heads}), {"qkv": qkv, "rel_bias": rel_bias})
    assert OP in text and message in text, text
    with pytest.raises(ValueError, match=re.escape(message)):
        _kernels.relative_position_attention(qkv, rel_bias, heads)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({}, "'num_heads' is required"),
        ({"num_heads": 0}, "'num_heads' must be > 0"),
        ({"num_heads": 2, "num_buckets": 31}, "'num_buckets' must be even"),
        ({"num_heads": 2, "num_buckets": 2}, "'num_buckets' must be even and >= 4"),
        ({"num_heads": 2, "max_distance": 8}, "'max_distance' must be > num_buckets/4"),
    ],
)
def test_bad_attributes_are_rejected(attrs, message) -> None:
    model = unshaped_model(attrs)
    with pytest.raises(Exception, match=message):
        vampnet_ort.create_session(model.SerializeToString()).run(
            None, {"qkv": np.zeros((1, 2, 6), np.float32), "rel_bias": np.zeros((32, 2), np.float32)})
    if "num_heads" in attrs:
        with pytest.raises(ValueError, match=message):
            _kernels.relative_position_attention(np.zeros((1, 2, 6), np.float32), np.zeros((32, 2), np.float32),
                                                 attrs["num_heads"], attrs.get("num_buckets", 32),
                                                 attrs.get("max_distance", 128))


# ---- model checks ---------------------------------------------------------------------------------------------------


def test_model_checks_and_shape_inference() -> None:
    model = attention_model(4)
    onnx.checker.check_model(model, full_check=True)
    assert any(f.name == OP and f.domain == ops.DOMAIN for f in model.functions)
    # Shape inference through the reference function: drop the declared output shape and infer it.
    feeds = {"qkv": np.zeros((2, 37, 192), np.float32), "rel_bias": np.zeros((32, 4), np.float32)}
    fixed = op_model(OP, feeds, [("out", TensorProto.FLOAT, OUT_DIMS)], {"num_heads": 4}, symbolic=False)
    fixed.graph.output[0].type.tensor_type.ClearField("shape")
    # The function reshapes with computed shapes, so ONNX infers the rank (3) but not the dims.
    shapes = inferred_output_shapes(fixed)
    assert len(shapes) == 1 and len(shapes[0]) == 3, shapes
