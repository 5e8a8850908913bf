"""Robustness round 3 (issue 24): unbounded resources at the decode boundary, and bundle fields trusted without the
graphs. Real files on disk, the CLI as a user runs it (tests/cli_testing.py), stand-in bundles (bundle_doubles).

- input limits (`audio.InputLimits`): sample rate, channels, duration and decoded samples are checked from the
  file's header before any sample is decoded, so a 1 kB WAV at 1 Hz or a sparse file declaring hours is refused
  at once, in little memory; arrays given to the API are checked before resampling; one run's outputs together
  are bounded (`audio.MAX_OUTPUT_SECONDS`);
- the manifest's `precision` of each graph is checked against the graph's nodes and metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper

import bundle_doubles as bd
from cli_testing import cli_command

from vampnet_ort import audio
from vampnet_ort.bundle import BundleError, load_bundle
from vampnet_ort.pipeline import Pipeline, VampOptions


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def wav_header(path: Path, *, rate: int, channels: int, frames: int, sparse: bool = False) -> Path:
    """A 16-bit PCM WAV declaring `frames` frames; the data is written (zeros) or left as a sparse hole."""
    data_bytes = frames * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with path.open("wb") as fh:
        fh.write(header)
        if sparse:
            fh.truncate(len(header) + data_bytes)
        else:
            fh.write(bytes(data_bytes))
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bd.write_bundle(tmp_path_factory.mktemp("limits") / "bundle")


# ---- input limits: checked from the header, before decoding -----------------------------------------------------
def test_limits_1hz_wav_is_refused_by_the_cli_before_any_work(bundle: Path, tmp_path: Path) -> None:
    src = wav_header(tmp_path / "tiny.wav", rate=1, channels=1, frames=500)  # 1 kB: 8 minutes at 1 Hz
    assert src.stat().st_size < 1100
    started = time.monotonic()
    proc = run("vamp", src, tmp_path / "out.wav", "--models", bundle, "-q")
    one_line_error(proc, "tiny.wav", "sample rate 1 Hz", "4000..768000")
    assert not (tmp_path / "out.wav").exists() and time.monotonic() - started < 120


def test_limits_1hz_samples_are_refused_by_the_api_before_resampling(bundle: Path) -> None:
    pipe = Pipeline(bundle)
    with pytest.raises(audio.AudioError, match="sample rate 1 Hz"):
        pipe.vamp_samples(np.zeros((1, 500), np.float32), 1)
    with pytest.raises(audio.AudioError, match="sample rate 1 Hz"):
        audio.prepare(np.zeros((1, 500), np.float32), 1, 8000, 64)


def test_limits_sparse_file_declaring_hours_is_refused_at_once_in_little_memory(tmp_path: Path) -> None:
    # 2 GiB of (sparse, unwritten) samples declared: 6.8 hours of 44.1 kHz mono; decoding it needs 4 GiB of float32
    src = wav_header(tmp_path / "huge.wav", rate=44100, channels=1, frames=(1 << 30) - 64, sparse=True)
    code = ("import resource, sys, time\n"
            "from vampnet_ort import audio\n"
            "t = time.monotonic()\n"
            "try:\n"
            f"    audio.read_audio({str(src)!r})\n"
            "    print('READ')\n"
            "except audio.AudioError as e:\n"
            "    print('ERR', e)\n"
            # VmHWM: this process image's peak RSS (ru_maxrss would carry pytest's own peak across fork + exec)
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print('RSS', hwm, 'S', time.monotonic() - t)\n")
    # an address-space cap: a reader that decodes the whole file dies here instead of filling the machine's memory
    proc = subprocess.run([sys.executable, "-c", "import resource; resource.setrlimit(resource.RLIMIT_AS, "
                           "(3 << 30, 3 << 30)); exec(open(0).read())"], input=code, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    assert "longer than the limit of 600 s" in lines["ERR"] and "huge.wav" in lines["ERR"]
    rss_kib, seconds = lines["RSS"].split(" S ")
    assert int(rss_kib) < 400 * 1024 and float(seconds) < 30


@pytest.mark.parametrize("rate, channels, frames, message", [
    (8000, 65, 100, "65 channels; at most 64"),
    (1_000_000, 1, 100, "sample rate 1000000 Hz"),
    (8000, 1, 8000 * 601, "601.0 s of audio is longer than the limit of 600 s"),
    (48000, 64, 2_100_000, "exceed the limit of 134217728 decoded samples"),
])
def test_limits_header_checks(tmp_path: Path, rate: int, channels: int, frames: int, message: str) -> None:
    src = wav_header(tmp_path / "x.wav", rate=rate, channels=channels, frames=frames, sparse=True)
    with pytest.raises(audio.AudioError, match=message):
        audio.read_audio(src)
    if frames * channels <= 1 << 24:  # the same file is read with the limits lifted
        samples, sr = audio.read_audio(src, limits=None)
        assert samples.shape == (channels, frames) and sr == rate


def test_limits_block_reader_equals_libsndfile_whole_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = 3 * audio.READ_BLOCK_FRAMES + 1234
    x = rng.uniform(-1, 1, (frames, 3)).astype(np.float32)
    for subtype in ("PCM_16", "PCM_24", "FLOAT"):
        path = tmp_path / f"x_{subtype}.wav"
        sf.write(str(path), x, 22050, subtype=subtype)
        expected, _ = sf.read(str(path), dtype="float32", always_2d=True)
        got, rate = audio.read_audio(path)
        assert rate == 22050 and got.flags.c_contiguous and np.array_equal(got, expected.T)


def test_limits_truncated_file_keeps_what_is_there(tmp_path: Path) -> None:
    src = tmp_path / "t.wav"
    sf.write(str(src), np.full(10000, 0.5, np.float32), 8000, subtype="PCM_16")
    with src.open("r+b") as fh:
        fh.truncate(44 + 2 * 4000)  # the header still says 10000 frames
    samples, _ = audio.read_audio(src)
    assert 0 < samples.shape[1] <= 10000 and np.allclose(samples, 0.5, atol=1e-4)


def test_limits_outputs_of_one_run_are_bounded(bundle: Path) -> None:
    pipe = Pipeline(bundle)
    x = np.zeros((1, 8000 * 120), np.float32)  # 2 minutes x 64 variations x stretch 1 = 7680 s of output
    with pytest.raises(audio.AudioError, match="of output in one run; the limit is 3600 s"):
        pipe.vamp_samples(x, 8000, VampOptions(variations=64))


# ---- the manifest's precision is checked against the graphs ------------------------------------------------------
def _quantized_node(kind: str) -> onnx.NodeProto:
    if kind == "int8":
        return helper.make_node("DynamicQuantizeMatMul", ["qx", "qw", "qs"], ["qy"], domain="com.microsoft")
    if kind == "matmulinteger":  # the int8 codec decoder's convs
        return helper.make_node("MatMulInteger", ["qx", "qw"], ["qy"])
    bits = 8 if kind == "nbits8" else 4
    return helper.make_node("MatMulNBits", ["qx", "qw", "qs"], ["qy"], domain="com.microsoft", K=16, N=16,
                            bits=bits, block_size=16)


def _with_quantized_node(path: Path, kind: str, *, in_function: bool = False) -> None:
    """Add a (never run) quantized MatMul node to the graph at `path`: in the main graph, or in a model-local
    function the main graph calls."""
    model = onnx.load(str(path))
    node = _quantized_node(kind)
    if in_function:
        function = helper.make_function("test.domain", "QLinear", ["qx", "qw", "qs"], ["qy"], [node],
                                        [helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)])
        model.functions.append(function)
        model.opset_import.append(helper.make_opsetid("test.domain", 1))
        node = helper.make_node("QLinear", ["qx", "qw", "qs"], ["qy"], domain="test.domain")
    model.graph.node.append(node)
    onnx.save(model, str(path))


def _set_precision(bundle_dir: Path, name: str, precision: object, *, metadata: str | None = None) -> None:
    if metadata is not None:
        model = onnx.load(str(bundle_dir / name))
        entry = model.metadata_props.add()
        entry.key, entry.value = "vampnet_ort.precision", metadata
        onnx.save(model, str(bundle_dir / name))
    manifest = json.loads((bundle_dir / "vampnet.json").read_text())
    data = (bundle_dir / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if precision is not None:
        manifest["files"][name]["precision"] = precision
    (bundle_dir / "vampnet.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("graph_kind, declared, metadata, message", [
    (None, "int8", None, "says precision int8 but the graph's linears are float32 (no quantized nodes)"),
    (None, "int4", None, "says precision int4 but the graph's linears are float32"),
    ("int8", None, None, "says precision float32 but the graph's linears are int8 (DynamicQuantizeMatMul nodes)"),
    ("int8", "float32", None, "says precision float32 but the graph's linears are int8"),
    ("int8", "int4", None, "says precision int4 but the graph's linears are int8 (DynamicQuantizeMatMul nodes)"),
    ("int8-function", "float32", None, "says precision float32 but the graph's linears are int8"),
    ("nbits8", "int4", None, "says precision int4 but the graph's linears are w8 (MatMulNBits nodes)"),
    ("int4", "w8", None, "says precision w8 but the graph's linears are int4 (MatMulNBits nodes)"),
    ("matmulinteger", "float32", None, "says precision float32 but the graph's linears are int8 (MatMulInteger nodes)"),
    (None, "float16", None, "gives precision 'float16' (known: float32, int8, int4, w8)"),
    (None, 8, None, "gives precision '8'"),
    (None, "float32", "int8", "says precision float32 but the graph was exported as int8"),
])
def test_precision_field_is_checked_against_the_graph(tmp_path: Path, graph_kind, declared, metadata,
                                                      message: str) -> None:
    bundle_dir = bd.write_bundle(tmp_path / "b")
    if graph_kind is not None:
        _with_quantized_node(bundle_dir / "coarse.onnx", graph_kind.split("-")[0],
                             in_function=graph_kind.endswith("function"))
    _set_precision(bundle_dir, "coarse.onnx", declared, metadata=metadata)
    with pytest.raises(BundleError) as raised:
        load_bundle(bundle_dir)
    assert f"coarse.onnx: vampnet.json {message}" in str(raised.value)


@pytest.mark.parametrize("graph_kind, declared", [("int8", "int8"), ("int4", "int4"), ("nbits8", "w8"),
                                                  ("matmulinteger", "int8"),
                                                  ("int8-function", "int8"), (None, "float32"), (None, None)])
def test_precision_field_matching_the_graph_loads(tmp_path: Path, graph_kind, declared) -> None:
    bundle_dir = bd.write_bundle(tmp_path / "b")
    if graph_kind is not None:
        _with_quantized_node(bundle_dir / "coarse.onnx", graph_kind.split("-")[0],
                             in_function=graph_kind.endswith("function"))
    _set_precision(bundle_dir, "coarse.onnx", declared, metadata=declared)
    assert load_bundle(bundle_dir).precision("coarse") == (declared or "float32")


def test_precision_mismatch_through_the_cli_is_one_line(tmp_path: Path) -> None:
    bundle_dir = bd.write_bundle(tmp_path / "b")
    _set_precision(bundle_dir, "codec_decoder.onnx", "int4")
    one_line_error(run("info", bundle_dir), "codec_decoder.onnx", "precision int4", "float32")
