"""Where the op library lives and how to register it with ONNX Runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import onnxruntime as ort

LIBRARY_ENV = "VAMPNET_ORT_LIBRARY"
_LIBRARY_NAME = "libvampnet_ort_ops.so"

ModelSource = Union[str, os.PathLike, bytes]


def get_library_path() -> str:
    """Absolute path of the custom-op shared library (``$VAMPNET_ORT_LIBRARY`` overrides it)."""
    override = os.environ.get(LIBRARY_ENV)
    path = Path(override) if override else Path(__file__).resolve().parent / _LIBRARY_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"vampnet-ort op library not found at {path}; reinstall the package (pip install .) "
            f"or point {LIBRARY_ENV} at a built libvampnet_ort_ops.so"
        )
    return str(path)


def register(session_options: ort.SessionOptions) -> ort.SessionOptions:
    """Register the ``vampnet`` custom-op domain in `session_options` (returns it for chaining)."""
    session_options.register_custom_ops_library(get_library_path())
    return session_options


def session_options(
    *, with_library: bool = True, intra_op_threads: int | None = None, inter_op_threads: int = 1
) -> ort.SessionOptions:
    """SessionOptions with the library registered (unless `with_library` is False) and thread counts set."""
    options = ort.SessionOptions()
    if intra_op_threads is not None:
        options.intra_op_num_threads = int(intra_op_threads)
    options.inter_op_num_threads = int(inter_op_threads)
    if with_library:
        register(options)
    return options


def create_session(
    model: ModelSource,
    *,
    with_library: bool = True,
    intra_op_threads: int | None = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    options: ort.SessionOptions | None = None,
) -> ort.InferenceSession:
    """Open an InferenceSession on `model` (path or serialized bytes) with the vampnet ops registered.

    With ``with_library=False`` the session runs the reference functions the model carries instead of the
    native kernels (what a stock ONNX Runtime does).
    """
    if options is None:
        options = session_options(with_library=with_library, intra_op_threads=intra_op_threads)
    elif with_library:
        register(options)
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, sess_options=options, providers=list(providers))
