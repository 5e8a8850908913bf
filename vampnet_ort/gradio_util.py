"""Small helpers the app's Gradio endpoints share (imported only where Gradio is)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

_NO_DEFAULT = inspect.Parameter.empty


def with_parameter_names(fn: Callable, names: Sequence[str], progress: Any = _NO_DEFAULT) -> Callable:
    """`fn(*args)` under the signature (names..., [progress=progress]): Gradio names an endpoint's parameters after
    its function's signature (what ``gradio_client`` shows and accepts as keywords) and fills in a parameter whose
    default is a ``gr.Progress``."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(name, kind) for name in names]
    if progress is not _NO_DEFAULT:
        params.append(inspect.Parameter("progress", kind, default=progress))

    def named(*args: Any):
        return fn(*args)

    named.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    named.__name__ = getattr(fn, "__name__", "endpoint")
    return named


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__


def user_error(exc: BaseException):
    """The ``gr.Error`` an exception is shown as: a user error (every error class of the package derives from
    ValueError; OSError for files) in one line and without a traceback on the server console; anything else as an
    internal error, with its traceback."""
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, (ValueError, OSError)):
        return gr.Error(one_line(exc), print_exception=False)
    return gr.Error(f"internal error: {type(exc).__name__}: {one_line(exc)}")
