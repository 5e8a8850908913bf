"""Reference function of ``vampnet.Snake``: Y = X + sin^2(alpha X) / (alpha + 1e-9), alpha per channel."""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet


@script(vampnet, default_opset=op)
def Snake(X: FLOAT, alpha: FLOAT) -> FLOAT:
    """X [B, C, L], alpha [1, C, 1] or [C] -> Y [B, C, L]."""
    a = op.Reshape(alpha, op.Constant(value_ints=[1, -1, 1]))
    eps = op.CastLike(op.Constant(value_float=1e-9), X)
    s = op.Sin(a * X)
    Y = X + s * s * op.Reciprocal(a + eps)
    return Y
