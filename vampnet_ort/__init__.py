"""vampnet-ort: VampNet on ONNX Runtime, with native custom ops.

- ``get_library_path()`` / ``register(session_options)``: use the op library in your own sessions.
- ``create_session(model)``: an InferenceSession with the library registered.
"""

from __future__ import annotations

from .library import create_session, decode_session_options, get_library_path, register, session_options
from .version import __version__

__all__ = ["__version__", "create_session", "decode_session_options", "get_library_path", "register", "session_options"]
