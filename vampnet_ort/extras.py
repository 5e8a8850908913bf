"""Optional dependencies, imported on first use with an error naming the extra to install."""

from __future__ import annotations

from typing import Any

from .errors import MaskError


def require_librosa() -> Any:
    """The librosa module (onset and beat masks, the app's pitch shift), or a MaskError naming the extra."""
    try:
        import librosa
    except ImportError:
        raise MaskError("onset and beat masks need librosa: pip install 'vampnet-ort[analysis]'") from None
    return librosa


__all__ = ["require_librosa"]
