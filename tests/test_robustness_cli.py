"""Robustness round 2 (issue 13): the CLI, the audio writer, bundles and the exporter driven as an attacker would.

Each test names its finding (#1 ... #15 of the issue); docs/RELIABILITY.md tabulates them. The CLI runs as a user
runs it (the installed script, tests/cli_testing.py) on stand-in bundles (tests/bundle_doubles.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

import bundle_doubles as bd
from cli_testing import cli_command
from op_testing import GOLDEN

from vampnet_ort import audio
from vampnet_ort.bundle import BundleError, load_bundle

pytestmark = pytest.mark.slow  # subprocess-heavy: left out of the inner loop (-m "not slow")


def run(*args: object, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=environment,
                          timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode not in (0, -11, 139), (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vampnet-ort") and "Traceback" not in proc.stderr and "internal error" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    t = np.arange(8000) / 8000
    path = tmp_path / "in.wav"
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), 8000)
    return path


def _manifest(d: Path) -> dict:
    return json.loads((d / "vampnet.json").read_text())


def _write_manifest(d: Path, m: dict) -> None:
    (d / "vampnet.json").write_text(json.dumps(m))


def _rehash(d: Path, name: str) -> None:
    m = _manifest(d)
    data = (d / name).read_bytes()
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    _write_manifest(d, m)


# ---- #1 .ogg output -------------------------------------------------------------------------------------------------

def test_1_long_ogg_is_written_in_blocks_without_crashing(tmp_path: Path) -> None:
    """sf.write of 70 s of vorbis in one call segfaulted (rc 139) in libvorbis; the writer runs in a child process
    so that a crash fails this test instead of killing pytest."""
    code = (
        "import sys, numpy as np\n"
        "from vampnet_ort import audio\n"
        "x = (0.3 * np.sin(np.arange(70 * 44100) * 0.05)).astype(np.float32)\n"
        "audio.write_audio(sys.argv[1], x, 44100)\n"
    )
    out = tmp_path / "long.ogg"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)  # not the checkout: its source tree would shadow the installed package
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    info = sf.info(str(out))
    assert info.samplerate == 44100 and info.frames == 70 * 44100
    assert [p.name for p in tmp_path.iterdir()] == ["long.ogg"]


@pytest.mark.parametrize("rate", [192_001, 384_000])
def test_1_ogg_above_192khz_is_refused_before_writing(tmp_path: Path, rate: int) -> None:
    with pytest.raises(audio.AudioError, match="ogg output supports sample rates from 1 to 192000 Hz"):
        audio.write_audio(tmp_path / "o.ogg", np.zeros(1000, np.float32), rate)
    assert list(tmp_path.iterdir()) == []


def test_1_cli_refuses_a_high_ogg_rate_before_any_work(bundle: Path, clip: Path, tmp_path: Path) -> None:
    one_line_error(run("vamp", clip, tmp_path / "o.ogg", "--models", bundle, "-q", "--output-sample-rate", "384000"),
                   "192000 Hz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


# ---- #12 output formats and writability -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["o.raw", "o.sd2", "o.aiff", "o.mp3", "noext"])
def test_12_only_the_listed_formats_are_accepted_up_front(bundle: Path, clip: Path, tmp_path: Path, name: str) -> None:
    line = one_line_error(run("vamp", clip, tmp_path / name, "--models", bundle, "-q"), "(supported: .wav, .flac, .ogg)")
    assert "extension" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]  # no ._...part file


def test_12_the_supported_list_is_exactly_what_is_written(tmp_path: Path) -> None:
    for ext, fmt in audio.OUTPUT_FORMATS.items():
        path = audio.write_audio(tmp_path / f"o{ext}", np.zeros(100, np.float32), 8000)
        info = sf.info(str(path))
        assert (info.format, info.subtype) == (fmt.format, fmt.subtype)


def test_12_unwritable_destination_is_found_before_any_work(bundle: Path, clip: Path, tmp_path: Path) -> None:
    one_line_error(run("vamp", clip, "/proc/a.wav", "--models", bundle, "-q"), "cannot write the output in /proc")
    (tmp_path / "d.wav").mkdir()
    one_line_error(run("vamp", clip, tmp_path / "d.wav", "--models", bundle, "-q"), "is a directory")
    one_line_error(run("vamp", clip, tmp_path / "o.wav", "--models", bundle, "-q", "--plot", "/proc/p.png"),
                   "cannot write the plot")


# ---- #7 non-regular inputs ----------------------------------------------------------------------------------------

def test_7_fifo_input_is_refused_without_hanging(bundle: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    one_line_error(run("vamp", fifo, tmp_path / "o.wav", "--models", bundle, "-q", timeout=60), "FIFO",
                   "regular file")
    with pytest.raises(audio.AudioError, match="FIFO"):
        audio.read_audio(fifo)
    with pytest.raises(audio.AudioError, match="a device"):
        audio.read_audio("/dev/null")
    one_line_error(run("vamp", "/dev/zero", tmp_path / "o.wav", "--models", bundle, "-q", timeout=60), "a device")


def test_7_fifo_checkpoint_and_bundle_files_are_refused(bundle: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "codec.pth"
    os.mkfifo(fifo)
    one_line_error(run("export", "--codec", fifo, "--coarse", GOLDEN / "coarse.pth", "--out", tmp_path / "b",
                       timeout=60), "--codec", "FIFO")
    b = tmp_path / "fifo-bundle"
    shutil.copytree(bundle, b)
    (b / "coarse.onnx").unlink()
    os.mkfifo(b / "coarse.onnx")
    with pytest.raises(BundleError, match="coarse.onnx is not a regular file"):
        load_bundle(b)
    (b / "vampnet.json").unlink()
    os.mkfifo(b / "vampnet.json")
    one_line_error(run("info", b, timeout=60), "vampnet.json is not a regular file")


# ---- #8 input == output -------------------------------------------------------------------------------------------

def test_8_the_input_is_never_the_output(bundle: Path, clip: Path, tmp_path: Path) -> None:
    original = clip.read_bytes()
    one_line_error(run("vamp", clip, clip, "--models", bundle, "-q"), "the output is the input file")
    link = tmp_path / "link.wav"
    link.symlink_to(clip)
    one_line_error(run("vamp", clip, link, "--models", bundle, "-q"), "the output is the input file")
    one_line_error(run("vamp", link, clip, "--models", bundle, "-q"), "the output is the input file")
    hard = tmp_path / "hard.wav"
    os.link(clip, hard)
    one_line_error(run("vamp", clip, hard, "--models", bundle, "-q"), "the output is the input file")
    one_line_error(run("vamp", clip, tmp_path / "." / "in.wav", "--models", bundle, "-q"), "the output is the input")
    variation = tmp_path / "v_1.wav"
    shutil.copy(clip, variation)
    one_line_error(run("vamp", variation, tmp_path / "v.wav", "--models", bundle, "-q", "--variations", "2"),
                   "the output is the input file")
    assert clip.read_bytes() == original and variation.read_bytes() == original


# ---- #9 samples near FLT_MAX --------------------------------------------------------------------------------------

def test_9_float_samples_near_flt_max_give_finite_output(tmp_path: Path) -> None:
    """With the real (golden) codec graphs the decoded audio's loudness differs from the input's, so restoring an
    input loudness of ~767 LUFS overflowed float32: NaN samples, written as garbage with rc 0."""
    from vampnet_ort import Pipeline, VampOptions

    b = bd.write_bundle(tmp_path / "b", codec_checkpoint=GOLDEN / "codec.pth")
    t = np.arange(44100) / 44100
    x = (np.sin(2 * np.pi * 220 * t) * np.finfo(np.float32).max * 0.999).astype(np.float32)
    src = tmp_path / "huge.wav"
    sf.write(str(src), x, 44100, subtype="FLOAT")
    written, result = Pipeline(b).vamp_file(src, tmp_path / "o.wav", VampOptions(seed=1))
    assert np.isfinite(result.audio).all() and 0.5 < np.max(np.abs(result.audio)) <= 1.0
    y, _ = sf.read(str(written[0]), dtype="float32")
    np.testing.assert_allclose(y, result.audio[0], atol=1.0 / 32767)


def test_9_finish_restores_a_huge_loudness_without_overflow() -> None:
    decoded = (0.1 * np.sin(np.arange(8000) * 0.1)).astype(np.float32)
    out = audio.finish(decoded, 8000, 8000, 700.0)  # the loudness of a clip near FLT_MAX
    assert np.isfinite(out).all() and np.max(np.abs(out)) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(audio.AudioError, match="out of range"):
        audio.finish(decoded, 8000, 8000, 1e300)


# ---- #10 clean option errors and malformed vampnet.json ---------------------------------------------------------

@pytest.mark.parametrize("extra,fragment", [
    (["--prefix", "1e308"], "prefix (seconds) must be between 0 and 86400"),
    (["--suffix", "1e308"], "suffix (seconds) must be between 0 and 86400"),
    (["--beat-width", "1e308"], "beat width (ms) must be between 0 and"),
    (["--typical-min-tokens", "99999999999999999999"], "typical min tokens must be between 1 and"),
    (["--period", "1234567890123456789012"], "periodic period must be between 0 and 2147483647"),
    (["--width", "1234567890123456789012"], "periodic width must be between 0 and"),
    (["--onset-width", "99999999999999999999"], "onset width must be between 0 and"),
    (["--temperature", "1e308"], "coarse temperature must be at most"),
    (["--c2f-mask-temperature", "1e39"], "c2f mask temperature must be at most"),
    (["--seed", "99999999999999999999"], "seed must fit in a signed 64-bit integer"),
    (["--variations", "99999999999999999999"], "variations must be between 1 and 64"),
    (["--output-sample-rate", "99999999999999999999"], "output sample rate must be between 1 and 768000"),
])
def test_10_huge_option_values_are_one_line_option_errors(bundle: Path, clip: Path, tmp_path: Path, extra: list,
                                                          fragment: str) -> None:
    one_line_error(run("vamp", clip, tmp_path / "o.wav", "--models", bundle, "-q", *extra), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.parametrize("mutate,fragment", [
    (lambda m: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    (lambda m: {**m, "coarse": {**m["coarse"], "config": "abc"}}, "field 'config' must be an object"),
    (lambda m: {**m, "coarse": {**m["coarse"], "config": [1, 2]}}, "field 'config' must be an object"),
    (lambda m: {**m, "codec": []}, "field 'codec' must be an object"),
    (lambda m: {**m, "codec": {"config": 7}}, "field 'config' must be an object"),
    (lambda m: {**m, "demo": "no"}, "field 'demo' must be true or false"),
    (lambda m: {**m, "files": {**m["files"], "coarse.onnx": {**m["files"]["coarse.onnx"], "bytes": -1}}},
     "field 'bytes' must be >= 0"),
    (lambda m: {**m, "files": []}, "field 'files' has the wrong type"),
    (lambda m: '{"format": "vampnet-ort-bundle", "format_version": ' + "1" * 5000 + "}", "not valid JSON"),
])
def test_10_malformed_manifest_is_a_one_line_error(bundle: Path, tmp_path: Path, mutate, fragment: str) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    changed = mutate(_manifest(b))
    (b / "vampnet.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    one_line_error(run("info", b), fragment)
    with pytest.raises(BundleError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_bundle(b)


# ---- #5 numbers of vampnet.json cross-checked ---------------------------------------------------------------------

@pytest.mark.parametrize("field,value,fragment", [
    ("sample_rate", 44100, "declares sample_rate 8000 but vampnet.json says sample_rate 44100"),
    ("sample_rate", -8000, "field 'sample_rate' must be between 1 and"),
    ("hop_length", 1, "field 'hop_length' must be between 2 and"),
    ("hop_length", 128, "declares hop_length 64 but vampnet.json says hop_length 128"),
    ("vocab_size", 0, "field 'vocab_size' must be between 2 and"),
    ("vocab_size", -5, "field 'vocab_size' must be between 2 and"),
    ("vocab_size", 512, "mask_token must equal vocab_size"),
    ("n_codebooks", 100, "codec_encoder.onnx: declares n_codebooks 14 but vampnet.json says n_codebooks 100"),
    ("n_codebooks", 10, "a model uses more codebooks than the codec has"),
    ("n_codebooks", -3, "field 'n_codebooks' must be between 1 and"),
])
def test_5_manifest_numbers_are_checked(bundle: Path, tmp_path: Path, field: str, value: int, fragment: str) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    m = _manifest(b)
    m[field] = value
    _write_manifest(b, m)
    with pytest.raises(BundleError, match=fragment):
        load_bundle(b)


def test_5_codebook_counts_must_fit_graphs_and_each_other(bundle: Path, tmp_path: Path) -> None:
    cases = [
        ({"n_codebooks": 5, "n_conditioning_codebooks": 0, "n_predict_codebooks": 5}, "coarse.onnx: takes 4 codebooks"),
        ({"n_codebooks": 4, "n_conditioning_codebooks": -1, "n_predict_codebooks": 5}, "n_conditioning_codebooks"),
        ({"n_codebooks": 4, "n_conditioning_codebooks": 5, "n_predict_codebooks": -1}, "n_conditioning_codebooks"),
        ({"n_codebooks": -4, "n_conditioning_codebooks": 0, "n_predict_codebooks": -4}, "n_codebooks"),
        ({"n_codebooks": 3, "n_conditioning_codebooks": 0, "n_predict_codebooks": 3}, "c2f conditions on 4"),
    ]
    for change, fragment in cases:
        b = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(bundle, b)
        m = _manifest(b)
        m["coarse"].update(change)
        if change["n_codebooks"] == 5:  # keep c2f consistent with it: only the coarse graph disagrees
            m["c2f"].update(n_conditioning_codebooks=5, n_predict_codebooks=9)
        _write_manifest(b, m)
        with pytest.raises(BundleError, match=fragment):
            load_bundle(b)


def test_5_codec_graph_without_its_metadata_is_refused(tmp_path: Path) -> None:
    b = bd.write_bundle(tmp_path / "b")
    model = bd.encoder_model()  # no sample_rate / hop_length / ... metadata
    bd._save(model, b / "codec_encoder.onnx")
    _rehash(b, "codec_encoder.onnx")
    with pytest.raises(BundleError, match="codec_encoder.onnx: declares no 'sample_rate' in its metadata"):
        load_bundle(b)


# ---- #4 external data -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vampnet_ort.export.bundle import export_bundle
    from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs

    coarse = random_vampnet_checkpoint(vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16))
    return export_bundle(tmp_path_factory.mktemp("exp") / "b", codec=GOLDEN / "codec.pth", coarse=coarse)


def test_4_unlisted_external_data_is_refused(exported: Path, tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(exported, b)
    load_bundle(b)
    m = _manifest(b)
    del m["files"]["coarse.onnx.data"]
    _write_manifest(b, m)
    with pytest.raises(BundleError, match="references coarse.onnx.data, which vampnet.json does not list"):
        load_bundle(b)
    data = bytearray((b / "coarse.onnx.data").read_bytes())
    data[len(data) // 2] ^= 0x40  # the altered weights that used to vamp with rc 0
    (b / "coarse.onnx.data").write_bytes(bytes(data))
    one_line_error(run("info", b), "coarse.onnx.data, which vampnet.json does not list")


def test_4_external_data_outside_the_bundle_is_refused(exported: Path, tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(exported, b)
    model = onnx.load(str(b / "coarse.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../elsewhere.data"
    onnx.save(model, str(b / "coarse.onnx"))
    _rehash(b, "coarse.onnx")
    with pytest.raises(BundleError, match="references external data '../elsewhere.data' outside the bundle"):
        load_bundle(b)


def test_4_external_files_sees_subgraphs_and_functions() -> None:
    from vampnet_ort.graph_check import external_files
    from vampnet_ort.onnx_wire import read_model

    def ext_tensor(name: str, location: str) -> TensorProto:
        t = numpy_helper.from_array(np.zeros(2, np.float32), name)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            e = t.external_data.add()
            e.key, e.value = key, value
        return t

    body = helper.make_graph([helper.make_node("Constant", [], ["c"], value=ext_tensor("c", "in_loop.bin"))],
                             "body", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=body)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [ext_tensor("w", "main.bin")])
    fn = helper.make_function("local", "F", [], ["z"], [helper.make_node("Constant", [], ["z"],
                                                                            value=ext_tensor("z", "fn.bin"))],
                              [helper.make_opsetid("", 20)])
    model = helper.make_model(graph, functions=[fn])
    assert external_files(read_model(model.SerializeToString())) == {"main.bin", "in_loop.bin", "fn.bin"}


# ---- #15 symlinks out of the bundle ---------------------------------------------------------------------------------

def test_15_symlink_out_of_the_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    outside = tmp_path / "outside.onnx"
    shutil.move(b / "coarse.onnx", outside)
    (b / "coarse.onnx").symlink_to(outside)  # same bytes, so the recorded sha256 still matches
    with pytest.raises(BundleError, match="coarse.onnx is a symlink to .*outside.onnx, outside the bundle"):
        load_bundle(b)
    one_line_error(run("info", b), "outside the bundle")
    from vampnet_ort import Pipeline

    with pytest.raises(BundleError, match="outside the bundle"):
        Pipeline(b)
    (b / "coarse.onnx").unlink()
    shutil.copy(outside, b / "real.onnx")
    (b / "coarse.onnx").symlink_to("real.onnx")  # a link inside the bundle is fine
    load_bundle(b)


def test_15_manifest_symlinked_out_is_refused(bundle: Path, tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    shutil.move(b / "vampnet.json", tmp_path / "m.json")
    (b / "vampnet.json").symlink_to(tmp_path / "m.json")
    with pytest.raises(BundleError, match="vampnet.json is a symlink .* outside the bundle"):
        load_bundle(b)


# ---- #6 --threads ---------------------------------------------------------------------------------------------------

def test_6_threads_are_capped_at_the_available_cpus(bundle: Path, clip: Path, tmp_path: Path) -> None:
    from vampnet_ort.library import available_cpus, session_options

    assert session_options(intra_op_threads=1000).intra_op_num_threads == available_cpus()
    assert session_options(intra_op_threads=1).intra_op_num_threads == 1
    proc = run("vamp", clip, tmp_path / "o.wav", "--models", bundle, "--threads", "1000")
    assert proc.returncode == 0, proc.stderr
    assert f"--threads 1000 capped at {available_cpus()}" in proc.stderr


# ---- #11 ORT's own log lines ------------------------------------------------------------------------------------

def _failing_decode_model(n_codebooks: int) -> onnx.ModelProto:
    """The decode interface, but Gather reads frame T of T frames: ORT fails at run time (and logs it)."""
    model = bd.decode_model(n_codebooks, 0)
    graph = model.graph
    out = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out:
                node.output[i] = "before"
    graph.node.extend([
        helper.make_node("Shape", ["codes"], ["shape_all"]),
        helper.make_node("Slice", ["shape_all", "two", "three"], ["frames"]),
        helper.make_node("Gather", ["before", "frames"], ["picked"], axis=2),
        helper.make_node("Expand", ["picked", "shape_all"], [out]),
    ])
    graph.initializer.extend([numpy_helper.from_array(np.array([2], np.int64), "two"),
                              numpy_helper.from_array(np.array([3], np.int64), "three")])
    return model


def test_11_a_failing_graph_gives_one_line_unless_verbose(clip: Path, tmp_path: Path) -> None:
    b = bd.write_bundle(tmp_path / "b")
    bd._save(_failing_decode_model(4), b / "coarse.onnx")
    _rehash(b, "coarse.onnx")
    quiet = run("vamp", clip, tmp_path / "o.wav", "--models", b, "-q")
    one_line_error(quiet, "coarse: ONNX Runtime failed")
    verbose = run("vamp", clip, tmp_path / "o.wav", "--models", b, "-q", "--verbose")
    assert verbose.returncode != 0 and "[E:onnxruntime" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith("vampnet-ort: error: coarse: ONNX Runtime failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "in.wav"]
