"""The vampnet-ort command line through a subprocess, on a stand-in bundle (tests/bundle_doubles.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bundle_doubles as bd
from cli_testing import cli_command  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: left out of the inner loop (-m "not slow")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vampnet-ort"), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_help_lists_options_with_defaults() -> None:
    top = run("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("export", "vamp", "info", "demo"))
    vamp = run("vamp", "--help")
    assert vamp.returncode == 0
    for text in ("--steps", "default 36", "--mask-temperature", "default 10.5", "--period", "default 7",
                 "--upper-codebook-mask", "default 3", "--typical-mass", "--variations", "--time-stretch",
                 "--feedback-steps", "--onset-width", "--beat-width", "--plot", "--models"):
        assert text in vamp.stdout, text


def test_info(bundle: Path, tmp_path: Path) -> None:
    ok = run("info", bundle)
    assert ok.returncode == 0 and "coarse.onnx" in ok.stdout and "chunks of 20 frames" in ok.stdout
    assert_one_line_error(run("info", tmp_path / "nope"), "no such bundle directory")
    assert_one_line_error(run("info", tmp_path), "not a model bundle")


def test_vamp_writes_output(bundle: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.flac"
    proc = run("vamp", clip, out, "--models", bundle, "--seed", "4", "--quiet", "--plot", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out), str(tmp_path / "p.png")]
    info = sf.info(str(out))
    assert info.samplerate == bd.SAMPLE_RATE and info.frames == bd.SAMPLE_RATE
    again = tmp_path / "again.flac"
    assert run("vamp", clip, again, "--models", bundle, "--seed", "4", "-q").returncode == 0
    assert np.array_equal(sf.read(str(out))[0], sf.read(str(again))[0])


def test_vamp_variations(bundle: Path, clip: Path, tmp_path: Path) -> None:
    proc = run("vamp", clip, tmp_path / "v.wav", "--models", bundle, "--variations", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "v_0.wav", "v_1.wav"]


def test_variation_b_equals_run_with_seed_plus_b(bundle: Path, clip: Path, tmp_path: Path) -> None:
    """Issue 13 #14: `--seed 3 --variations 2` output _1 equals `--seed 4` (the random mask roll included)."""
    assert run("vamp", clip, tmp_path / "v.wav", "--models", bundle, "--seed", "3", "--variations", "2",
               "-q").returncode == 0
    assert run("vamp", clip, tmp_path / "s4.wav", "--models", bundle, "--seed", "4", "-q").returncode == 0
    assert run("vamp", clip, tmp_path / "s3.wav", "--models", bundle, "--seed", "3", "-q").returncode == 0
    v1, s4 = sf.read(str(tmp_path / "v_1.wav"))[0], sf.read(str(tmp_path / "s4.wav"))[0]
    assert np.array_equal(v1, s4)
    assert np.array_equal(sf.read(str(tmp_path / "v_0.wav"))[0], sf.read(str(tmp_path / "s3.wav"))[0])
    assert not np.array_equal(v1, sf.read(str(tmp_path / "v_0.wav"))[0])


@pytest.mark.parametrize(
    "extra,fragments",
    [
        (["--steps", "0"], ["steps"]),
        (["--temperature", "-1"], ["temperature"]),
        (["--dropout", "1.5"], ["dropout"]),
        (["--period", "-2"], ["period"]),
        (["--upper-codebook-mask", "20"], ["upper codebook mask"]),
        (["--variations", "0"], ["variations"]),
        (["--time-stretch", "0"], ["time stretch"]),
        (["--top-p", "nan"], ["finite"]),
        (["--threads", "0"], ["threads"]),
        (["--steps", "many"], ["invalid int value"]),
        (["--no-such-flag"], ["unrecognized arguments"]),
    ],
)
def test_vamp_impossible_options(bundle: Path, clip: Path, tmp_path: Path, extra: list, fragments: list) -> None:
    out = tmp_path / "out.wav"
    assert_one_line_error(run("vamp", clip, out, "--models", bundle, "-q", *extra), *fragments)
    assert not out.exists()


def test_vamp_bad_files(bundle: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    assert_one_line_error(run("vamp", tmp_path / "missing.wav", out, "--models", bundle), "no such file")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wav file" * 20)
    assert_one_line_error(run("vamp", junk, out, "--models", bundle, "-q"), "unsupported or unrecognised")
    assert_one_line_error(run("vamp", clip, tmp_path / "out.mp4", "--models", bundle), "extension")
    assert_one_line_error(run("vamp", clip, tmp_path / "nodir" / "o.wav", "--models", bundle, "-q"), "does not exist")
    assert_one_line_error(run("vamp", clip, out, "--models", tmp_path / "nobundle"), "no such bundle directory")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "junk.wav"]


def test_vamp_incomplete_or_tampered_bundle(clip: Path, tmp_path: Path) -> None:
    b = bd.write_bundle(tmp_path / "b")
    (b / "c2f.onnx").unlink()
    out = tmp_path / "out.wav"
    assert_one_line_error(run("vamp", clip, out, "--models", b, "-q"), "incomplete bundle", "c2f.onnx is missing")
    b2 = bd.write_bundle(tmp_path / "b2")
    data = bytearray((b2 / "coarse.onnx").read_bytes())
    data[-5] ^= 1
    (b2 / "coarse.onnx").write_bytes(bytes(data))
    assert_one_line_error(run("vamp", clip, out, "--models", b2, "-q"), "sha256")
    assert_one_line_error(run("info", b2), "sha256")
    assert not out.exists()


def test_export_errors(tmp_path: Path) -> None:
    proc = run("export", "--codec", tmp_path / "codec.pth", "--coarse", tmp_path / "coarse.pth", "--out", tmp_path / "b")
    assert_one_line_error(proc, "no such file")
    assert_one_line_error(run("export", "--codec", "x.pth"), "required")
    assert not (tmp_path / "b").exists()


def test_demo_command_with_models(bundle: Path, tmp_path: Path) -> None:
    proc = run("demo", tmp_path / "d", "--models", bundle, "--seconds", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == ["codes.png", "input.wav", "output.wav"]
    assert sf.info(str(tmp_path / "d" / "input.wav")).channels == 2
