"""Reference function of ``vampnet.RMSNorm``: Y = X * rsqrt(mean(X^2, last axis) + epsilon) * scale."""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet
from .contract import RMS_NORM

_EPSILON = RMS_NORM.default("epsilon")  # onnxscript reads the default from this module global


@script(vampnet, default_opset=op)
def RMSNorm(X: FLOAT, scale: FLOAT, epsilon: float = _EPSILON) -> FLOAT:
    """X [..., D], scale [D] -> Y [..., D]."""
    mean_square = op.ReduceMean(X * X, op.Constant(value_ints=[-1]), keepdims=1)
    eps = op.CastLike(op.Constant(value_float=epsilon), X)
    Y = X * op.Reciprocal(op.Sqrt(mean_square + eps)) * scale
    return Y
