"""Reference function of ``vampnet.RelativePositionAttention`` (multi-head self-attention, T5 relative bias).

qkv [B, T, 3D] (last axis [Q | K | V]), rel_bias [num_buckets, H] -> out [B, T, D]:
``out[b, i, head h] = sum_j softmax_j(q_i . k_j / sqrt(dh) + rel_bias[bucket(j - i), h]) v_j``.

The buckets follow tests/golden/README.md item 10 with the same float32 arithmetic as upstream
(``log(n.float() / exact) / math.log(max_distance / exact) * (half - exact)``, truncated); the bias is gathered
into [H, T, T] and the attention is plain MatMul / Softmax. This is the slow, obviously-correct path a stock
ONNX Runtime inlines when the native kernel is not registered.
"""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet
from .contract import RELATIVE_POSITION_ATTENTION

# Attribute defaults (onnxscript reads them from these module globals).
_NUM_BUCKETS = RELATIVE_POSITION_ATTENTION.default("num_buckets")
_MAX_DISTANCE = RELATIVE_POSITION_ATTENTION.default("max_distance")


@script(vampnet, default_opset=op)
def RelativePositionBias(qkv: FLOAT, rel_bias: FLOAT, num_buckets: int, max_distance: int) -> FLOAT:
    """The T5 bias [H, T, T] of both attention reference functions: rel_bias [num_buckets, H] gathered by the bucket
    of key - query, T = qkv's dim 1."""
    # buckets [T, T] of rel = key - query (int64 arithmetic, float32 log)
    zero = op.Constant(value_int=0)
    one = op.Constant(value_int=1)
    two = op.Constant(value_int=2)
    qkv_shape = op.Shape(qkv)
    seq = op.Gather(qkv_shape, one)  # T (scalar)
    positions = op.Range(zero, seq, one)
    rel = op.Unsqueeze(positions, zero) - op.Unsqueeze(positions, one)  # [i, j] = j - i
    buckets_total = op.Constant(value_int=num_buckets)
    half = op.Div(buckets_total, two)  # buckets per direction
    exact = op.Div(half, two)  # distances below this get their own bucket
    direction = op.Cast(op.Greater(rel, zero), to=7) * half
    distance = op.Abs(rel)
    exact_f = op.Cast(exact, to=1)
    # math.log(max_distance / exact): upstream (and the kernel) take it in double and round to float32. Here it is
    # float32 Log of the float32 quotient (no float64: onnxruntime-web's WebGPU build cannot load it). That float
    # can be one ulp off; the bucket table changes for 67 of the 26,119 pairs (even num_buckets <= 256,
    # max_distance <= 2048) where the two floats differ, e.g. (32, 18); never for VampNet's (32, 128) (docs/ATTENTION.md).
    log_span = op.Log(op.Div(op.Cast(op.Constant(value_int=max_distance), to=1), exact_f))
    # Distances below `exact` take the exact branch; clamp them to `exact` first so Log never sees 0.
    distance_f = op.Max(op.Cast(distance, to=1), exact_f)
    scaled = op.Log(distance_f / exact_f) / log_span * op.Cast(half - exact, to=1)
    log_bucket = op.Min(exact + op.Cast(scaled, to=7), half - one)
    buckets = direction + op.Where(op.Less(distance, exact), distance, log_bucket)
    bias = op.Transpose(op.Gather(rel_bias, buckets, axis=0), perm=[2, 0, 1])
    return bias


@script(vampnet, default_opset=op)
def RelativePositionAttention(
    qkv: FLOAT, rel_bias: FLOAT, num_heads: int, num_buckets: int = _NUM_BUCKETS, max_distance: int = _MAX_DISTANCE
) -> FLOAT:
    """qkv [B, T, 3D], rel_bias [num_buckets, H] -> [B, T, D]."""
    bias = RelativePositionBias(qkv, rel_bias, num_buckets=num_buckets, max_distance=max_distance)  # [H, T, T]
    qkv_shape = op.Shape(qkv)

    # ---- attention ----
    three = op.Constant(value_int=3)
    width = op.Div(op.Gather(qkv_shape, op.Constant(value_int=2)), three)  # D
    heads = op.Constant(value_int=num_heads)
    head_dim = op.Div(width, heads)
    head_shape = op.Concat(
        op.Constant(value_ints=[0, 0]), op.Reshape(heads, op.Constant(value_ints=[1])),
        op.Reshape(head_dim, op.Constant(value_ints=[1])), axis=0,
    )  # [B, T, H, dh]
    q, k, v = op.Split(qkv, axis=2, num_outputs=3)
    q_heads = op.Transpose(op.Reshape(q, head_shape), perm=[0, 2, 1, 3])  # [B, H, T, dh]
    k_heads = op.Transpose(op.Reshape(k, head_shape), perm=[0, 2, 3, 1])  # [B, H, dh, T]
    v_heads = op.Transpose(op.Reshape(v, head_shape), perm=[0, 2, 1, 3])  # [B, H, T, dh]
    scale = op.Reciprocal(op.Sqrt(op.Cast(head_dim, to=1)))
    scores = op.MatMul(q_heads, k_heads) * scale + bias
    probs = op.Softmax(scores, axis=-1)
    context = op.Transpose(op.MatMul(probs, v_heads), perm=[0, 2, 1, 3])  # [B, T, H, dh]
    out_shape = op.Concat(op.Constant(value_ints=[0, 0]), op.Reshape(width, op.Constant(value_ints=[1])), axis=0)
    out = op.Reshape(context, out_shape)
    return out
