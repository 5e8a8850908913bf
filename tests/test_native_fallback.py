"""The native build failure policy (docs/DEVELOPING.md): without VAMPNET_REQUIRE_NATIVE a failed native build
still installs a pure-Python package that runs the reference functions and warns; with it the install fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

import vampnet_ort
from op_testing import op_model
from vampnet_ort import library

ROOT = Path(__file__).resolve().parents[1]
MISSING_COMPILER = "/nonexistent/vampnet-missing-c++"


def test_pure_python_install_runs_reference_functions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(library.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(library, "_bundled_library", lambda: tmp_path / library.library_file_name())
    monkeypatch.setattr(library, "_warned_pure_python", False)
    assert not library.native_available()
    with pytest.raises(FileNotFoundError, match="pure-Python install"):
        vampnet_ort.get_library_path()
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    scale = np.ones(16, np.float32)
    model = op_model("RMSNorm", {"X": x, "scale": scale}, [("Y", TensorProto.FLOAT, ["a", "b"])])
    with pytest.warns(RuntimeWarning, match="no native op library"):
        session = vampnet_ort.create_session(model.SerializeToString())
    y = session.run(None, {"X": x, "scale": scale})[0]
    np.testing.assert_allclose(y, x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6), rtol=1e-5, atol=1e-6)


def test_library_file_name_per_platform() -> None:
    assert library.library_file_name("linux") == "libvampnet_ort_ops.so"
    assert library.library_file_name("darwin") == "libvampnet_ort_ops.dylib"
    assert library.library_file_name("win32") == "vampnet_ort_ops.dll"


def _build_wheel(tmp_path: Path, require_native: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "CXX": MISSING_COMPILER, "VAMPNET_REQUIRE_NATIVE": "1" if require_native else "0"}
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "setup.py").is_file(), reason="needs the source checkout")
def test_failed_native_build_policy(tmp_path: Path) -> None:
    try:
        fallback = _build_wheel(tmp_path / "fallback", require_native=False)
        assert fallback.returncode == 0, fallback.stderr[-2000:]
        (wheel,) = (tmp_path / "fallback").glob("vampnet_ort-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        assert "vampnet_ort/library.py" in names and "vampnet_ort/ops/contract.py" in names
        assert not [n for n in names if n.endswith((".so", ".dylib", ".dll"))], names
        strict = _build_wheel(tmp_path / "strict", require_native=True)
        assert strict.returncode != 0
        assert not list((tmp_path / "strict").glob("*.whl"))
    finally:
        for tree in (ROOT / "build").glob("cmake-*vampnet-missing-c*"):
            shutil.rmtree(tree, ignore_errors=True)
