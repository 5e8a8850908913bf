"""vampnet-ort: VampNet on ONNX Runtime, with native custom ops.

- ``get_library_path()`` / ``register(session_options)``: use the op library in your own sessions
  (``native_available()``: False for a pure-Python install whose native build failed).
- ``create_session(model)``: an InferenceSession with the library registered.
- ``Pipeline`` (from ``vampnet_ort.pipeline``, imported on first use): audio -> vamp -> audio.
- ``VampOptions`` / ``SamplingOptions`` / ``MaskOptions`` (from ``vampnet_ort.options``): what a vamp can be told.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

# Every name is imported on first use, so `import vampnet_ort` (and `vampnet-ort --help`) loads neither ONNX Runtime
# nor numpy; a command pays only for what it runs.
_LIBRARY_NAMES = ("create_session", "decode_session_options", "get_library_path", "native_available", "register",
                  "session_options")
_PIPELINE_NAMES = ("Pipeline", "VampResult")
_OPTION_NAMES = ("VampOptions", "SamplingOptions", "MaskOptions")

__all__ = ["__version__", *_LIBRARY_NAMES, *_PIPELINE_NAMES, *_OPTION_NAMES]


def __getattr__(name: str) -> Any:
    if name in _LIBRARY_NAMES:
        from . import library

        return getattr(library, name)
    if name in _PIPELINE_NAMES:
        from . import pipeline

        return getattr(pipeline, name)
    if name in _OPTION_NAMES:
        from . import options

        return getattr(options, name)
    raise AttributeError(f"module 'vampnet_ort' has no attribute {name!r}")
