"""Quantized bundles end to end: export_bundle / `vampnet-ort export --quantize`, vampnet.json precision,
`vampnet-ort info`, and the pipeline running an int8 bundle with no new options."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from vampnet_ort import Pipeline, SamplingOptions, VampOptions
from vampnet_ort.bundle import load_bundle
from vampnet_ort.export.bundle import ExportError, export_bundle

from cli_testing import cli_command
from op_testing import GOLDEN


def run(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory) -> Path:
    return export_bundle(tmp_path_factory.mktemp("q") / "int8", codec=GOLDEN / "codec.pth",
                         coarse=GOLDEN / "coarse.pth", c2f=GOLDEN / "c2f.pth", logits=True, quantize="int8")


def test_manifest_records_each_graph_precision(int8_bundle: Path):
    files = json.loads((int8_bundle / "vampnet.json").read_text())["files"]
    precision = {name: entry.get("precision") for name, entry in files.items()}
    assert precision == {
        "codec_encoder.onnx": "float32", "codec_decoder.onnx": "float32", "coarse.onnx": "int8",
        "coarse_logits.onnx": "int8", "c2f.onnx": "int8", "c2f_logits.onnx": "int8",
        "coarse.onnx.data": None, "c2f.onnx.data": None,
    }
    bundle = load_bundle(int8_bundle)  # sha256 and sizes still verified
    assert bundle.precision("coarse") == "int8" and bundle.precision("codec_decoder") == "float32"


def _linear_bytes(model_path: Path) -> int:
    """Bytes of the linears' weights (+ scales) stored for a graph (external or inline)."""
    model = onnx.load(str(model_path), load_external_data=False)
    total = 0
    for t in model.graph.initializer:
        if ".w_" in t.name or t.name.startswith("classifier.weight"):
            ext = {e.key: e.value for e in t.external_data}
            total += int(ext["length"]) if "length" in ext else len(t.raw_data)
    return total


def test_int8_weights_are_a_quarter(int8_bundle: Path, tmp_path: Path):
    fp32 = export_bundle(tmp_path / "fp32", codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth",
                         c2f=GOLDEN / "c2f.pth")
    for stage in ("coarse", "c2f"):
        ratio = _linear_bytes(int8_bundle / f"{stage}.onnx") / _linear_bytes(fp32 / f"{stage}.onnx")
        assert 0.25 < ratio < 0.27, (stage, ratio)  # int8 weights + one float scale per column


def test_pipeline_runs_int8_bundle(int8_bundle: Path):
    pipe = Pipeline(int8_bundle, intra_op_threads=2)
    t = np.arange(44100) / 44100
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    opts = VampOptions(seed=1, coarse=SamplingOptions(steps=4))
    first = pipe.vamp_samples(audio, 44100, opts)
    second = Pipeline(int8_bundle, intra_op_threads=1).vamp_samples(audio, 44100, opts)
    assert first.audio.shape == second.audio.shape and np.isfinite(first.audio).all()
    np.testing.assert_array_equal(first.codes_out, second.codes_out)  # same seed, other session and threads


def test_export_bundle_rejects_unknown_quantization(tmp_path: Path):
    with pytest.raises(ExportError, match="unknown quantization 'int2'"):
        export_bundle(tmp_path / "b", codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth", quantize="int2")
    assert not (tmp_path / "b").exists()


def test_cli_quantize_option(tmp_path: Path):
    bad = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--out", tmp_path / "x",
              "--quantize", "bogus")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "--quantize" in bad.stderr and "bogus" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()
    ok = run("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--out", tmp_path / "b",
             "--quantize", "int4")
    assert ok.returncode == 0, ok.stderr
    info = run("info", tmp_path / "b")
    assert info.returncode == 0, info.stderr
    assert "precision:     float32, int4" in info.stdout
    line = next(ln for ln in info.stdout.splitlines() if ln.strip().startswith("coarse.onnx "))
    assert "int4" in line and "MB" in line
