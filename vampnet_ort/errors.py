"""The package's error classes that more than one module raises (stdlib only: the CLI imports them before numpy).

Every error class of the package derives from ValueError, so front ends catch ``ValueError`` to report a user
error in one line (``vampnet_ort.frontend.one_line``)."""

from __future__ import annotations


class PipelineError(ValueError):
    """An impossible option value or an input the pipeline cannot process."""


class MaskError(ValueError):
    """An impossible mask option (negative width, probability outside [0, 1], ...)."""


__all__ = ["PipelineError", "MaskError"]
