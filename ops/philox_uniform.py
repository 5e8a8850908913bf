"""Reference function of ``vampnet.PhiloxUniform``: Philox4x32-10 uniforms for one decode step, bit-exact.

seed int64 [] or [B], step int64 [], shape int64 [3] = (B, P, T) -> uniforms float [2, B, P, T].
Item b is keyed by s_b = seed[b] (seed of shape [B]) or seed + b (scalar seed); key = (low 32 bits of s_b,
high 32 bits of s_b); counter = (t, p, step, purpose), purpose 0 = sampling draw, 1 = re-mask Gumbel noise;
u = ((word0 >> 9) + 0.5) * 2^-23 (exact in float32, strictly inside (0, 1)).

The 32-bit Philox arithmetic runs in uint64 tensors: a 32x32-bit product fits in 64 bits, so Mul + BitShift +
BitwiseAnd give the high and low halves exactly, and the result equals the native kernel bit for bit.
"""

from __future__ import annotations

from onnxscript import FLOAT, INT64, script
from onnxscript.onnx_types import UINT64

from ._opset import op, vampnet

_UINT64 = 13  # TensorProto.UINT64
_FLOAT = 1  # TensorProto.FLOAT


@script(vampnet, default_opset=op)
def PhiloxRound(c0: UINT64, c1: UINT64, c2: UINT64, c3: UINT64, k0: UINT64, k1: UINT64):
    """One Philox4x32 round on 32-bit words held in uint64 tensors, then the key bump (the last bump is unused)."""
    low32 = op.Cast(op.Constant(value_int=4294967295), to=_UINT64)
    shift32 = op.Cast(op.Constant(value_int=32), to=_UINT64)
    p0 = op.Cast(op.Constant(value_int=3528531795), to=_UINT64) * c0  # M0 = 0xD2511F53
    p1 = op.Cast(op.Constant(value_int=3449720151), to=_UINT64) * c2  # M1 = 0xCD9E8D57
    n0 = op.BitwiseXor(op.BitwiseXor(op.BitShift(p1, shift32, direction="RIGHT"), c1), k0)
    n1 = op.BitwiseAnd(p1, low32)
    n2 = op.BitwiseXor(op.BitwiseXor(op.BitShift(p0, shift32, direction="RIGHT"), c3), k1)
    n3 = op.BitwiseAnd(p0, low32)
    nk0 = op.BitwiseAnd(k0 + op.Cast(op.Constant(value_int=2654435769), to=_UINT64), low32)  # W0 = 0x9E3779B9
    nk1 = op.BitwiseAnd(k1 + op.Cast(op.Constant(value_int=3144134277), to=_UINT64), low32)  # W1 = 0xBB67AE85
    return n0, n1, n2, n3, nk0, nk1


@script(vampnet, default_opset=op)
def PhiloxUniform(seed: INT64, step: INT64, shape: INT64) -> FLOAT:
    """Uniforms [2, B, P, T] (index 0: sampling draw, index 1: Gumbel noise of the re-mask)."""
    zero = op.Constant(value_ints=[0])
    one = op.Constant(value_ints=[1])
    batch = op.Slice(shape, zero, one)
    predicted = op.Slice(shape, one, op.Constant(value_ints=[2]))
    time = op.Slice(shape, op.Constant(value_ints=[2]), op.Constant(value_ints=[3]))
    zero_s = op.Constant(value_int=0)
    one_s = op.Constant(value_int=1)
    item = op.Range(zero_s, op.Squeeze(batch, zero), one_s)
    scalar_seed = op.Equal(op.Size(op.Shape(seed)), zero_s)
    offset = op.Where(scalar_seed, item, item * zero_s)
    item_seed = op.Expand(op.Reshape(seed, op.Constant(value_ints=[-1])), batch) + offset
    seed_bits = op.Cast(item_seed, to=_UINT64)
    low32 = op.Cast(op.Constant(value_int=4294967295), to=_UINT64)
    shift32 = op.Cast(op.Constant(value_int=32), to=_UINT64)
    key_shape = op.Constant(value_ints=[1, -1, 1, 1])
    k0 = op.Reshape(op.BitwiseAnd(seed_bits, low32), key_shape)
    k1 = op.Reshape(op.BitShift(seed_bits, shift32, direction="RIGHT"), key_shape)
    out_shape = op.Concat(op.Constant(value_ints=[2]), batch, predicted, time, axis=0)
    t_idx = op.Range(zero_s, op.Squeeze(time, zero), one_s)
    p_idx = op.Range(zero_s, op.Squeeze(predicted, zero), one_s)
    c0 = op.Expand(op.Cast(op.Reshape(t_idx, op.Constant(value_ints=[1, 1, 1, -1])), to=_UINT64), out_shape)
    c1 = op.Expand(op.Cast(op.Reshape(p_idx, op.Constant(value_ints=[1, 1, -1, 1])), to=_UINT64), out_shape)
    c2 = op.Expand(op.Cast(step, to=_UINT64), out_shape)
    purpose = op.Cast(op.Constant(value_ints=[0, 1]), to=_UINT64)
    c3 = op.Expand(op.Reshape(purpose, op.Constant(value_ints=[2, 1, 1, 1])), out_shape)
    # Ten rounds (a Python loop does not compile to unrolled ONNX here: onnxscript would emit a Loop).
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    c0, c1, c2, c3, k0, k1 = PhiloxRound(c0, c1, c2, c3, k0, k1)
    mantissa = op.Cast(op.BitShift(c0, op.Cast(op.Constant(value_int=9), to=_UINT64), direction="RIGHT"), to=_FLOAT)
    uniforms = (mantissa + op.Constant(value_float=0.5)) * op.Constant(value_float=1.1920928955078125e-07)
    return uniforms


__all__ = ["PhiloxRound", "PhiloxUniform", "UINT64"]
