"""export_bundle: files, vampnet.json, atomic writes, argument errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vampnet_ort.export import CheckpointError, load_checkpoint, save_lora_file
from vampnet_ort.export.bundle import ExportError, export_bundle
from vampnet_ort.export.random_checkpoint import random_lora_state, random_vampnet_checkpoint, vampnet_kwargs

from op_testing import GOLDEN

TINY_COARSE = vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16)
TINY_C2F = vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=16)


@pytest.fixture(scope="module")
def golden_codec():
    return load_checkpoint(GOLDEN / "codec.pth")


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_golden_bundle(tmp_path: Path, golden_codec):
    lora = tmp_path / "coarse_lora.pth"
    save_lora_file(lora, random_lora_state(load_checkpoint(GOLDEN / "coarse.pth").kwargs, seed=3))
    out = export_bundle(tmp_path / "models", codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth",
                        c2f=GOLDEN / "c2f.pth", logits=True, lora_coarse=lora, demo=True)
    assert out == (tmp_path / "models").resolve()
    names = {p.name for p in out.iterdir()}
    expected = {"vampnet.json", "coarse.onnx", "coarse_logits.onnx", "coarse.onnx.data", "c2f.onnx",
                "c2f_logits.onnx", "c2f.onnx.data", "codec_encoder.onnx", "codec_decoder.onnx"}
    assert names == expected
    manifest = json.loads((out / "vampnet.json").read_text())
    assert manifest["format"] == "vampnet-ort-bundle" and manifest["format_version"] == 1
    assert manifest["demo"] is True
    assert (manifest["sample_rate"], manifest["hop_length"], manifest["n_codebooks"]) == (44100, 768, 14)
    assert manifest["vocab_size"] == 1024 and manifest["mask_token"] == 1024
    coarse, c2f = manifest["coarse"], manifest["c2f"]
    assert (coarse["n_codebooks"], coarse["n_conditioning_codebooks"], coarse["n_predict_codebooks"]) == (4, 0, 4)
    assert (c2f["n_codebooks"], c2f["n_conditioning_codebooks"], c2f["n_predict_codebooks"]) == (14, 4, 10)
    assert (coarse["chunk_frames"], c2f["chunk_frames"]) == (575, 173)
    assert coarse["source_sha256"] == hashlib.sha256((GOLDEN / "coarse.pth").read_bytes()).hexdigest()
    assert coarse["lora_sha256"] == hashlib.sha256(lora.read_bytes()).hexdigest() and c2f["lora_sha256"] is None
    assert coarse["config"]["n_layers"] == 3 and c2f["config"]["n_layers"] == 2
    assert manifest["codec"]["source_sha256"] == golden_codec.sha256
    assert manifest["codec"]["config"] == golden_codec.kwargs
    # the chunk/seam numbers other implementations (the web app) chunk the codec with
    from vampnet_ort import codec as codec_chunking
    from vampnet_ort.codec_geometry import CodecConfig
    assert manifest["codec"]["geometry"] == codec_chunking.geometry(CodecConfig.from_kwargs(golden_codec.kwargs))
    assert set(manifest["files"]) == names - {"vampnet.json"}
    for name, entry in manifest["files"].items():
        data = (out / name).read_bytes()
        precision = {} if name.endswith(".data") else {"precision": "float32"}
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **precision}
    assert not _leftovers(tmp_path)


def test_logits_graphs_only_on_request(tmp_path: Path, golden_codec):
    out = export_bundle(tmp_path / "m", codec=golden_codec, coarse=random_vampnet_checkpoint(TINY_COARSE))
    names = {p.name for p in out.iterdir()}
    assert {"coarse.onnx", "coarse.onnx.data", "vampnet.json"} <= names
    assert not any("logits" in n or n.startswith("c2f") for n in names)
    assert json.loads((out / "vampnet.json").read_text())["c2f"] is None


def test_failed_export_leaves_nothing(tmp_path: Path, golden_codec):
    bad = random_vampnet_checkpoint(TINY_C2F)
    bad.state["transformer.layers.0.norm_1.weight"] = np.ones(15, np.float32)
    with pytest.raises(CheckpointError, match="norm_1.weight' has shape"):
        export_bundle(tmp_path / "models", codec=golden_codec, coarse=random_vampnet_checkpoint(TINY_COARSE),
                      c2f=bad, logits=True)
    assert not (tmp_path / "models").exists()
    assert not _leftovers(tmp_path)


def test_stages_must_fit_together(tmp_path: Path, golden_codec):
    c2f = random_vampnet_checkpoint({**TINY_C2F, "n_conditioning_codebooks": 3})
    with pytest.raises(ExportError, match="c2f conditions on 3 codebooks but the coarse model has 4"):
        export_bundle(tmp_path / "models", codec=golden_codec, coarse=random_vampnet_checkpoint(TINY_COARSE), c2f=c2f)
    assert not (tmp_path / "models").exists() and not _leftovers(tmp_path)


def test_existing_directory(tmp_path: Path, golden_codec):
    out = tmp_path / "models"
    out.mkdir()
    (out / "old.txt").write_text("x")
    coarse = random_vampnet_checkpoint(TINY_COARSE)
    with pytest.raises(ExportError, match="not empty"):
        export_bundle(out, codec=golden_codec, coarse=coarse)
    assert (out / "old.txt").exists()
    with pytest.raises(ExportError, match="not a vampnet bundle"):  # --overwrite replaces only a bundle
        export_bundle(out, codec=golden_codec, coarse=coarse, overwrite=True)
    (out / "vampnet.json").write_text("{}")
    export_bundle(out, codec=golden_codec, coarse=coarse, overwrite=True)
    assert not (out / "old.txt").exists() and (out / "vampnet.json").exists()
    assert not _leftovers(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        export_bundle(tmp_path / "file", codec=golden_codec, coarse=coarse)


def test_lora_without_stage(tmp_path: Path, golden_codec):
    with pytest.raises(ExportError, match="LoRA for 'c2f' was given without a c2f checkpoint"):
        export_bundle(tmp_path / "m", codec=golden_codec, coarse=random_vampnet_checkpoint(TINY_COARSE),
                      lora_c2f={"x.lora_A": np.zeros((1, 1), np.float32)})
    assert not _leftovers(tmp_path)
