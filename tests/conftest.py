"""Fixtures shared by the test files: the stand-in bundle and the demo bundle (built once per session: treat them
as read-only; a test that damages a bundle writes its own), the short test clip and the web server's stand-in app
directory.

Markers: ``slow`` marks subprocess-heavy tests (a CLI, worker processes, a server, a browser); the inner loop is
``pytest -m "not slow"`` (docs/DEVELOPING.md).
"""

from __future__ import annotations

from pathlib import Path

import bundle_doubles as bd
import numpy as np
import pytest


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default stand-in bundle (``bundle_doubles.write_bundle``): tiny random graphs, hash-verified."""
    return bd.write_bundle(tmp_path_factory.mktemp("stand-in") / "bundle")


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in demo bundle, built once into the session's temporary folder (not the user's cache)."""
    from vampnet_ort.demo import build_demo_bundle

    return build_demo_bundle(tmp_path_factory.mktemp("demo") / "bundle")


def stereo_tone(seconds: float = 1.0, rate: int = 11025) -> np.ndarray:
    """Two sines (220 Hz and 330 Hz), float64 [frames, 2]."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)]).T


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """A 1 s stereo clip at 11025 Hz, ``tmp_path / "in.wav"``."""
    import soundfile as sf  # here, not at the top: the op tests run where soundfile is absent (aarch64 under qemu)

    path = tmp_path / "in.wav"
    sf.write(str(path), stereo_tone(), 11025)
    return path


@pytest.fixture()
def app_root(tmp_path: Path) -> Path:
    """A stand-in web app directory for the web server's tests: index.html, app.js, a dot-file that must never be
    served, every vendor file (fake bytes) and, next to the app, outside.txt (path traversal must not reach it)."""
    from vampnet_ort import web_server

    root = tmp_path / "app"
    (root / "vendor").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("export const x = 1;")
    (root / ".secret").write_text("SECRET-HIDDEN-CONTENT")
    for name in web_server.VENDOR_FILES:
        (root / "vendor" / name).write_bytes(b"\0asm" if name.endswith(".wasm") else b"export {};")
    (tmp_path / "outside.txt").write_text("SECRET-OUTSIDE-CONTENT")
    return root
