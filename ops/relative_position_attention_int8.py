"""Reference function of ``vampnet.RelativePositionAttentionInt8``: RelativePositionAttention with int8 QKᵀ and PV.

Same inputs, outputs, attributes and buckets as ``RelativePositionAttention``; the products are quantized as the
kernel quantizes them (ops/cpp/relative_position_attention_int8.h):

- q, k: symmetric int8 per row and head (``scale = max|row| / 127``, 1 for an all-zero row; ``q8 = Round(x * (1 /
  scale))``, half to even);
  v: symmetric int8 per column and head, over all keys;
- scores ``(q8 . k8) * ((sq / sqrt(dh)) * sk) + bias``, float32 softmax numerator ``exp(s - max)`` quantized to
  ``p8 = floor(255 p + 0.5)``; ``out = (p8 . v8) * (sv * (1 / sum(p8)))``.

The integer products run as float32 MatMuls of integer-valued tensors: exact while every partial sum stays below
2^24 (q8 . k8: 127^2 * dh, exact for dh <= 1040; p8 . v8: 255 * 127 * T, exact for T <= 518 and within a float32
rounding beyond). Float32 only (no float64: WebGPU builds of onnxruntime-web reject it) and positive axes.
"""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet
from .contract import RELATIVE_POSITION_ATTENTION_INT8
from .relative_position_attention import RelativePositionBias

_NUM_BUCKETS = RELATIVE_POSITION_ATTENTION_INT8.default("num_buckets")
_MAX_DISTANCE = RELATIVE_POSITION_ATTENTION_INT8.default("max_distance")


@script(vampnet, default_opset=op)
def RelativePositionAttentionInt8(
    qkv: FLOAT, rel_bias: FLOAT, num_heads: int, num_buckets: int = _NUM_BUCKETS, max_distance: int = _MAX_DISTANCE
) -> FLOAT:
    """qkv [B, T, 3D], rel_bias [num_buckets, H] -> [B, T, D]."""
    bias = RelativePositionBias(qkv, rel_bias, num_buckets=num_buckets, max_distance=max_distance)  # [H, T, T]
    qkv_shape = op.Shape(qkv)

    # ---- heads ----
    three = op.Constant(value_int=3)
    width = op.Div(op.Gather(qkv_shape, op.Constant(value_int=2)), three)
    heads = op.Constant(value_int=num_heads)
    head_dim = op.Div(width, heads)
    head_shape = op.Concat(
        op.Constant(value_ints=[0, 0]), op.Reshape(heads, op.Constant(value_ints=[1])),
        op.Reshape(head_dim, op.Constant(value_ints=[1])), axis=0,
    )
    q, k, v = op.Split(qkv, axis=2, num_outputs=3)
    q_heads = op.Transpose(op.Reshape(q, head_shape), perm=[0, 2, 1, 3])  # [B, H, T, dh]
    k_heads = op.Transpose(op.Reshape(k, head_shape), perm=[0, 2, 1, 3])
    v_heads = op.Transpose(op.Reshape(v, head_shape), perm=[0, 2, 1, 3])

    # ---- symmetric int8 (as integer-valued float32) ----
    zero_f = op.Constant(value_float=0.0)
    one_f = op.Constant(value_float=1.0)
    c127 = op.Constant(value_float=127.0)
    last = op.Constant(value_ints=[3])
    keys_axis = op.Constant(value_ints=[2])
    q_max = op.ReduceMax(op.Abs(q_heads), last, keepdims=1)  # [B, H, T, 1]
    q_scale = op.Where(op.Greater(q_max, zero_f), q_max / c127, one_f)
    q8 = op.Clip(op.Round(q_heads * op.Reciprocal(q_scale)), -c127, c127)
    k_max = op.ReduceMax(op.Abs(k_heads), last, keepdims=1)
    k_scale = op.Where(op.Greater(k_max, zero_f), k_max / c127, one_f)
    k8 = op.Clip(op.Round(k_heads * op.Reciprocal(k_scale)), -c127, c127)
    v_max = op.ReduceMax(op.Abs(v_heads), keys_axis, keepdims=1)  # [B, H, 1, dh]
    v_scale = op.Where(op.Greater(v_max, zero_f), v_max / c127, one_f)
    v8 = op.Clip(op.Round(v_heads * op.Reciprocal(v_scale)), -c127, c127)

    # ---- scores, float32 softmax numerator in uint8 steps, P.V ----
    inv_sqrt = op.Reciprocal(op.Sqrt(op.Cast(head_dim, to=1)))
    row_c = q_scale * inv_sqrt  # [B, H, T, 1]
    acc = op.MatMul(q8, op.Transpose(k8, perm=[0, 1, 3, 2]))  # [B, H, T, T], exact integers
    scores = acc * (row_c * op.Transpose(k_scale, perm=[0, 1, 3, 2])) + bias
    row_max = op.ReduceMax(scores, last, keepdims=1)
    p8 = op.Floor(op.Exp(scores - row_max) * op.Constant(value_float=255.0) + op.Constant(value_float=0.5))
    total = op.ReduceSum(p8, last, keepdims=1)
    context = op.MatMul(p8, v8) * (v_scale * op.Reciprocal(total))  # [B, H, T, dh]
    out_shape = op.Concat(op.Constant(value_ints=[0, 0]), op.Reshape(width, op.Constant(value_ints=[1])), axis=0)
    return op.Reshape(op.Transpose(context, perm=[0, 2, 1, 3]), out_shape)
