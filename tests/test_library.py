"""The op library: location, registration into user SessionOptions, and fallback without it."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

import vampnet_ort
from op_testing import op_model


def test_library_path_exists_and_exports_only_the_entry_point() -> None:
    path = Path(vampnet_ort.get_library_path())
    assert path.is_file()
    lib = ctypes.CDLL(str(path))
    assert hasattr(lib, "RegisterCustomOps")


def test_register_in_user_session_options() -> None:
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    scale = np.ones(16, np.float32)
    model = op_model("RMSNorm", {"X": x, "scale": scale}, [("Y", TensorProto.FLOAT, ["X_d0", "X_d1"])])
    options = ort.SessionOptions()
    assert vampnet_ort.register(options) is options
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    y = session.run(None, {"X": x, "scale": scale})[0]
    np.testing.assert_allclose(y, x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6), rtol=1e-5, atol=1e-6)


def test_model_without_function_needs_the_library() -> None:
    """A vampnet node whose model lacks the reference function fails cleanly on stock ORT."""
    x = np.zeros((2, 16), np.float32)
    model = op_model("RMSNorm", {"X": x, "scale": np.ones(16, np.float32)}, [("Y", TensorProto.FLOAT, ["a", "b"])])
    del model.functions[:]
    with pytest.raises(Exception):
        vampnet_ort.create_session(model.SerializeToString(), with_library=False)
    # ...and runs with the library registered.
    vampnet_ort.create_session(model.SerializeToString()).run(None, {"X": x, "scale": np.ones(16, np.float32)})


def test_library_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAMPNET_ORT_LIBRARY", str(tmp_path / "missing.so"))
    with pytest.raises(FileNotFoundError, match="VAMPNET_ORT_LIBRARY"):
        vampnet_ort.get_library_path()
    monkeypatch.delenv("VAMPNET_ORT_LIBRARY")
    assert os.path.isfile(vampnet_ort.get_library_path())
