"""Bundle loading and verification."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bundle_doubles
from vampnet_ort.bundle import BundleError, load_bundle


@pytest.fixture()
def bundle_dir(tmp_path: Path) -> Path:
    return bundle_doubles.write_bundle(tmp_path / "b")


def test_load_and_describe(bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    assert (b.sample_rate, b.hop_length, b.n_codebooks, b.mask_token) == (8000, 64, 14, 1024)
    assert b.coarse.chunk_frames == 20 and b.c2f is not None and b.c2f.n_conditioning_codebooks == 4
    text = b.describe()
    assert "coarse.onnx" in text and "c2f" in text and "demo" not in text
    out = b.session("codec_encoder").run(None, {"audio": np.zeros((1, 1, 128), np.float32)})[0]
    assert out.shape == (1, 14, 2)
    assert b.session("codec_encoder") is b.session("codec_encoder")  # opened once


def _manifest(d: Path) -> dict:
    return json.loads((d / "vampnet.json").read_text())


def _write_manifest(d: Path, m: dict) -> None:
    (d / "vampnet.json").write_text(json.dumps(m))


def test_missing_directory_and_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle directory"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="no vampnet.json"):
        load_bundle(tmp_path)
    (tmp_path / "vampnet.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)


def test_newer_format_version(bundle_dir: Path) -> None:
    m = _manifest(bundle_dir)
    m["format_version"] = 2
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="version 2 is newer than this vampnet-ort supports"):
        load_bundle(bundle_dir)


def test_wrong_format(bundle_dir: Path) -> None:
    m = _manifest(bundle_dir)
    m["format"] = "something-else"
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="not a vampnet-ort bundle"):
        load_bundle(bundle_dir)


def test_missing_truncated_tampered_files(bundle_dir: Path) -> None:
    target = bundle_dir / "coarse.onnx"
    data = target.read_bytes()
    target.unlink()
    with pytest.raises(BundleError, match="coarse.onnx is missing"):
        load_bundle(bundle_dir)
    target.write_bytes(data[:-10])
    with pytest.raises(BundleError, match="coarse.onnx is truncated"):
        load_bundle(bundle_dir)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    target.write_bytes(bytes(tampered))
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(bundle_dir)
    target.write_bytes(data)
    load_bundle(bundle_dir)


def test_incomplete_manifest(bundle_dir: Path) -> None:
    m = _manifest(bundle_dir)
    del m["files"]["codec_decoder.onnx"]
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="lists no codec_decoder.onnx"):
        load_bundle(bundle_dir)
    m = _manifest(bundle_dir)
    m["files"]["codec_decoder.onnx"] = {"sha256": "0", "bytes": 1}
    del m["sample_rate"]
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="missing field 'sample_rate'"):
        load_bundle(bundle_dir, verify=False)
    m["sample_rate"] = 8000
    m["files"]["../evil.onnx"] = {"sha256": "0", "bytes": 1}
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="plain names"):
        load_bundle(bundle_dir)


def test_unloadable_model_is_a_clear_error(bundle_dir: Path) -> None:
    (bundle_dir / "coarse.onnx").write_bytes(b"garbage")
    m = _manifest(bundle_dir)
    import hashlib

    m["files"]["coarse.onnx"] = {"sha256": hashlib.sha256(b"garbage").hexdigest(), "bytes": 7}
    _write_manifest(bundle_dir, m)
    with pytest.raises(BundleError, match="coarse.onnx: not a valid ONNX model"):
        load_bundle(bundle_dir)  # the graphs are parsed (without weights) and cross-checked at load
    b = load_bundle(bundle_dir, verify=False)
    with pytest.raises(BundleError, match="ONNX Runtime cannot load it"):
        b.session("coarse")
