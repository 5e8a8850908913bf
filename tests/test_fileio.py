"""Atomically published files get the mode a plain open() would give them (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from vampnet_ort.audio import write_audio
from vampnet_ort.fileio import default_file_mode, publish


def test_published_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert default_file_mode() == 0o644
        out = write_audio(tmp_path / "x.wav", np.zeros(441, np.float32), 44100)
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        tmp = tmp_path / ".y.part"
        tmp.write_bytes(b"data")
        os.chmod(tmp, 0o600)
        assert stat.S_IMODE(publish(tmp, tmp_path / "y").stat().st_mode) == 0o644
        assert not tmp.exists()
    finally:
        os.umask(old)
