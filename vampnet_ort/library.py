"""Where the op library lives and how to register it with ONNX Runtime."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Sequence, Union

import onnxruntime as ort

LIBRARY_ENV = "VAMPNET_ORT_LIBRARY"

ModelSource = Union[str, os.PathLike, bytes]


def library_file_name(platform: str = sys.platform) -> str:
    """File name CMake gives the op library on `platform` (a ``sys.platform`` value)."""
    if platform == "darwin":
        return "libvampnet_ort_ops.dylib"
    if platform in ("win32", "cygwin"):
        return "vampnet_ort_ops.dll"
    return "libvampnet_ort_ops.so"


def _bundled_library() -> Path:
    return Path(__file__).resolve().parent / library_file_name()


def get_library_path() -> str:
    """Absolute path of the custom-op shared library (``$VAMPNET_ORT_LIBRARY`` overrides it)."""
    override = os.environ.get(LIBRARY_ENV)
    path = Path(override) if override else _bundled_library()
    if not path.is_file():
        raise FileNotFoundError(
            f"vampnet-ort op library not found at {path}; reinstall the package (pip install .; a failed native "
            f"build leaves a pure-Python install) or point {LIBRARY_ENV} at a built {library_file_name()}"
        )
    return str(path)


def native_available() -> bool:
    """True when the op library can be registered (False for a pure-Python install whose native build failed)."""
    return bool(os.environ.get(LIBRARY_ENV)) or _bundled_library().is_file()


_warned_pure_python = False


def _warn_pure_python() -> None:
    global _warned_pure_python
    if not _warned_pure_python:
        _warned_pure_python = True
        warnings.warn(
            f"vampnet-ort has no native op library ({_bundled_library()} is missing: its native build failed at "
            "install time); models run their reference functions instead (correct, but much slower). Reinstall "
            "with a working C++17 compiler and CMake to get the native kernels.",
            RuntimeWarning,
            stacklevel=3,
        )


def register(session_options: ort.SessionOptions) -> ort.SessionOptions:
    """Register the ``vampnet`` custom-op domain in `session_options` (returns it for chaining).

    Registering twice in the same options is a no-op (ORT itself would fail with "Domain already set").
    In a pure-Python install (the native build failed, see :func:`native_available`) this warns once and
    registers nothing, so sessions run the reference functions every exported model carries."""
    if _is_registered(session_options):
        return session_options
    if not native_available():
        _warn_pure_python()
        return session_options
    session_options.register_custom_ops_library(get_library_path())
    session_options.add_session_config_entry(_REGISTERED_KEY, "1")
    return session_options


_REGISTERED_KEY = "vampnet_ort.library_registered"


def _is_registered(session_options: ort.SessionOptions) -> bool:
    try:
        return session_options.get_session_config_entry(_REGISTERED_KEY) == "1"
    except Exception:  # ORT raises when the key was never set
        return False


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def capped_threads(requested: int | None) -> int | None:
    """`requested` intra-op threads, at most ``available_cpus()``: more threads than CPUs only adds contention
    (ORT's workers spin; 1000 threads on 2 CPUs ran 60x slower), never speed."""
    if requested is None:
        return None
    return max(1, min(int(requested), available_cpus()))


def session_options(
    *,
    with_library: bool = True,
    intra_op_threads: int | None = None,
    inter_op_threads: int = 1,
    disable_prepacking: bool = False,
) -> ort.SessionOptions:
    """SessionOptions with the library registered (unless `with_library` is False) and thread counts set.

    ``disable_prepacking=True`` sets ``session.disable_prepacking = 1``: ORT then keeps no repacked copy of the
    MatMul weights next to the (memory-mapped) originals, which roughly halves a decode graph's peak RSS
    (release coarse: 2.09x -> 1.17x the weights' size) at about the same forward speed (docs/RELIABILITY.md,
    benchmarks/bench_prepacking.py). See :func:`decode_session_options`. `intra_op_threads` is capped at the
    CPUs available (``capped_threads``).
    """
    options = ort.SessionOptions()
    if disable_prepacking:
        options.add_session_config_entry("session.disable_prepacking", "1")
    if intra_op_threads is not None:
        options.intra_op_num_threads = capped_threads(intra_op_threads)
    options.inter_op_num_threads = int(inter_op_threads)
    if with_library:
        register(options)
    return options


def decode_session_options(
    *, with_library: bool = True, intra_op_threads: int | None = None, inter_op_threads: int = 1
) -> ort.SessionOptions:
    """The SessionOptions recommended for the large transformer graphs (decode and logits graphs): the library
    registered and MatMul weight prepacking off (peak RSS about 1.2x instead of 2.1x the weights' size)."""
    return session_options(with_library=with_library, intra_op_threads=intra_op_threads,
                           inter_op_threads=inter_op_threads, disable_prepacking=True)


def create_session(
    model: ModelSource,
    *,
    with_library: bool = True,
    intra_op_threads: int | None = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    options: ort.SessionOptions | None = None,
    disable_prepacking: bool = False,
) -> ort.InferenceSession:
    """Open an InferenceSession on `model` (path or serialized bytes) with the vampnet ops registered.

    With ``with_library=False`` the session runs the reference functions the model carries instead of the
    native kernels (what a stock ONNX Runtime does). ``disable_prepacking=True``: see :func:`session_options`
    (recommended for decode and logits graphs). `intra_op_threads` and `disable_prepacking` apply only when
    `options` is not given.
    """
    if options is None:
        options = session_options(with_library=with_library, intra_op_threads=intra_op_threads,
                                  disable_prepacking=disable_prepacking)
    elif with_library:
        register(options)
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, sess_options=options, providers=list(providers))
