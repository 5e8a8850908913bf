"""Reference function of ``vampnet.Snake``: Y = X + sin^2(alpha X) / (alpha + 1e-9), alpha per channel.

X [B, C, L] with alpha [1, C, 1] or [C]; with ``channels_last=1``, X [B, L, C] with alpha [1, 1, C] or [C].
"""

from __future__ import annotations

from onnxscript import FLOAT, script

from ._opset import op, vampnet
from .contract import SNAKE

# Attribute default (onnxscript reads it from this module global).
_CHANNELS_LAST = SNAKE.default("channels_last")


@script(vampnet, default_opset=op)
def Snake(X: FLOAT, alpha: FLOAT, channels_last: int = _CHANNELS_LAST) -> FLOAT:
    """X [B, C, L] (channels_last=0) or [B, L, C] (channels_last=1), alpha per channel -> Y of X's shape."""
    # alpha's broadcast shape: [1, -1, 1] channels-first, [1, 1, -1] channels-last (2s - 1 and 1 - 2s for s = 0/1).
    last = op.Unsqueeze(op.Constant(value_int=channels_last), op.Constant(value_ints=[0]))
    one = op.Constant(value_ints=[1])
    two = op.Constant(value_ints=[2])
    shape = op.Concat(one, two * last - one, one - two * last, axis=0)
    a = op.Reshape(alpha, shape)
    eps = op.CastLike(op.Constant(value_float=1e-9), X)
    s = op.Sin(a * X)
    Y = X + s * s * op.Reciprocal(a + eps)
    return Y
