"""`vampnet-ort batch --engine ray`: Ray Data on a local Ray instance (2 actors x 1 thread: num_cpus=2) writes the
same files as the local engine, and its report has the same records. Needs the `ray` extra (in the test extras)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray  # noqa: F401  (the test extras install Ray: a missing Ray is a failure, not a skip)
from test_batch import REPORT, _demo_clips, audio_files, partials, run, tone

pytestmark = pytest.mark.slow  # subprocess-heavy: left out of the inner loop (-m "not slow")


def _records(out: Path) -> dict:
    return {Path(r["output"]).relative_to(out).as_posix(): r
            for r in map(json.loads, (out / REPORT).read_text().splitlines())}


def test_ray_engine_writes_the_local_engines_files(demo_bundle: Path, tmp_path: Path) -> None:
    clips = _demo_clips(tmp_path / "clips", 4)
    (clips / "g0" / "broken.wav").write_bytes(b"RIFF junk" * 50)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"input,output,seed,period\n{clips / 'g1' / 'clip1.wav'},manifest/one.flac,3,5\n")
    common = ["--models", demo_bundle, "--workers", "2", "--threads", "1", "--steps", "6", "--seed", "1", "-q"]
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    first = run("batch", clips, manifest, "--out", local, *common)
    assert first.returncode == 1, first.stderr
    second = run("batch", clips, manifest, "--out", on_ray, "--engine", "ray", *common, timeout=600)
    assert second.returncode == 1, second.stderr
    assert "Traceback" not in second.stderr
    files = audio_files(local)
    assert files == audio_files(on_ray) and len(files) == 5 and "manifest/one.flac" in files
    for rel in files:
        assert (local / rel).read_bytes() == (on_ray / rel).read_bytes(), rel
    assert not partials(on_ray)
    a, b = _records(local), _records(on_ray)
    assert a.keys() == b.keys()
    for rel in a:
        for field in ("status", "error", "seed", "duration"):
            assert a[rel][field] == b[rel][field], (rel, field)
    assert b["g0/broken.wav"]["status"] == "error" and "unsupported or unrecognised" in b["g0/broken.wav"]["error"]

    # resume on Ray: nothing left to do but the broken file
    tone(clips / "g1" / "new.wav", 1.0, 22050, 500)
    third = run("batch", clips, manifest, "--out", on_ray, "--engine", "ray", *common, timeout=600)
    assert third.returncode == 1, third.stderr
    later = list(map(json.loads, (on_ray / REPORT).read_text().splitlines()))[6:]
    assert sorted(r["status"] for r in later) == ["error", "ok"] + ["skipped"] * 5
