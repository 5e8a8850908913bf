"""Reference function of ``vampnet.DynamicQuantizeIm2Col``: DynamicQuantizeLinear fused with a 1-D conv's im2col.

Channels-last X [B, L, C] float -> Y [B, L_out, kernel_size * C] uint8, Y_scale [] float, Y_zero_point [] uint8,
with ``Y[b, t, j*C + c] = DynamicQuantizeLinear(X)[b, t + j*dilation - padding, c]`` (the zero point where that
index falls outside [0, L)) and ``L_out = L + 2*padding - dilation*(kernel_size - 1)``. ``MatMulInteger(Y,
W_q [k*C, C'], Y_zero_point)`` is then the conv's int8 GEMM, channels-last out (export/codec.py,
docs/QUANTIZATION.md "Codec").

Standard ops only: ``DynamicQuantizeLinear`` -> ``Pad`` the time axis with the zero point -> one ``Gather`` of the
taps (index t + j*dilation into the padded time axis) -> ``Reshape``. The kernel quantizes exactly as ONNX
Runtime's ``DynamicQuantizeLinear`` does, so the two agree bit for bit on finite inputs.
"""

from __future__ import annotations

from onnxscript import FLOAT, UINT8, script

from ._opset import op, vampnet
from .contract import DYNAMIC_QUANTIZE_IM2COL

# Attribute defaults (onnxscript reads them from these module globals).
_KERNEL_SIZE = DYNAMIC_QUANTIZE_IM2COL.default("kernel_size")
_DILATION = DYNAMIC_QUANTIZE_IM2COL.default("dilation")
_PADDING = DYNAMIC_QUANTIZE_IM2COL.default("padding")


@script(vampnet, default_opset=op)
def DynamicQuantizeIm2Col(
    X: FLOAT, kernel_size: int = _KERNEL_SIZE, dilation: int = _DILATION, padding: int = _PADDING
) -> tuple[UINT8, FLOAT, UINT8]:
    """X [B, L, C] -> (Y [B, L_out, kernel_size * C], Y_scale, Y_zero_point)."""
    q, Y_scale, Y_zero_point = op.DynamicQuantizeLinear(X)
    zero = op.Constant(value_ints=[0])
    pad = op.Unsqueeze(op.Constant(value_int=padding), zero)  # [1]
    padded = op.Pad(q, op.Concat(zero, pad, zero, zero, pad, zero, axis=0), Y_zero_point)  # [B, L + 2p, C]
    k = op.Constant(value_int=kernel_size)
    d = op.Constant(value_int=dilation)
    length = op.Gather(op.Shape(X), op.Constant(value_int=1))  # L (scalar)
    one = op.Constant(value_int=1)
    out_length = length + op.Constant(value_int=padding) * op.Constant(value_int=2) - d * (k - one)
    starts = op.Range(op.Constant(value_int=0), out_length, one)  # [L_out]
    taps = op.Range(op.Constant(value_int=0), k, one) * d  # [k]
    index = op.Unsqueeze(starts, op.Constant(value_ints=[1])) + op.Unsqueeze(taps, zero)  # [L_out, k]
    gathered = op.Gather(padded, index, axis=1)  # [B, L_out, k, C]
    Y = op.Reshape(gathered, op.Constant(value_ints=[0, 0, -1]))
    return Y, Y_scale, Y_zero_point
