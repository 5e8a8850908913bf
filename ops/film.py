"""Reference function of ``vampnet.FiLM``: Y = X * (1 + gamma) + beta, gamma/beta [B or 1, D] over time."""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet


@script(vampnet, default_opset=op)
def FiLM(X: FLOAT, gamma: FLOAT, beta: FLOAT) -> FLOAT:
    """X [B, T, D], gamma [B|1, D], beta [B|1, D] -> Y [B, T, D]."""
    axis = op.Constant(value_ints=[1])
    one = op.CastLike(op.Constant(value_float=1.0), X)
    Y = X * (one + op.Unsqueeze(gamma, axis)) + op.Unsqueeze(beta, axis)
    return Y
