"""Small helpers the app's Gradio endpoints share (imported only where Gradio is)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from .frontend import describe_error

_NO_DEFAULT = inspect.Parameter.empty


def with_parameter_names(fn: Callable, names: Sequence[str], progress: Any = _NO_DEFAULT) -> Callable:
    """`fn(*args)` under the signature (names..., [progress=progress]): Gradio names an endpoint's parameters after
    its function's signature (what ``gradio_client`` shows and accepts as keywords) and fills in a parameter whose
    default is a ``gr.Progress``."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(name, kind) for name in names]
    if progress is not _NO_DEFAULT:
        params.append(inspect.Parameter("progress", kind, default=progress))

    if inspect.iscoroutinefunction(fn):
        async def named(*args: Any):  # type: ignore[misc]  (Gradio awaits a coroutine function in its loop)
            return await fn(*args)
    else:
        def named(*args: Any):
            return fn(*args)

    named.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    named.__name__ = getattr(fn, "__name__", "endpoint")
    return named


def user_error(exc: BaseException):
    """The ``gr.Error`` an exception is shown as (``frontend.describe_error``'s line): a user error (every error
    class of the package derives from ValueError; OSError for files) without a traceback on the server console;
    anything else as an internal error, with its traceback."""
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(describe_error(exc), print_exception=not isinstance(exc, (ValueError, OSError, MemoryError)))
