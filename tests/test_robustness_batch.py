"""Robustness round 3 (issue 24): `vampnet-ort batch` driven as an attacker (or an unlucky user) would.

Each test names its class (docs/RELIABILITY.md, round 3): data loss (outputs checked against every input and every
existing file the batch did not write, across the whole plan), caps on --workers / --threads, signals that end the
batch (real processes), manifest parsing errors (one line with file and line; a bad row is its own error record),
error records, the options hash of the report. The CLI runs as a user runs it, on stand-in bundles
(bundle_doubles) or, where real work must be interrupted, the demo bundle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bundle_doubles as bd
from cli_testing import cli_command

REPORT = "vampnet-batch.jsonl"
TIMEOUT_S = 300


def run(*args: object, timeout: float = TIMEOUT_S, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, **kwargs)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vampnet-ort"), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def report(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / REPORT).read_text().splitlines()]


def tone(path: Path, seconds: float = 0.5, rate: int = 8000, freq: float = 220.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), rate)
    return path


def audio_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".wav", ".flac", ".ogg")}


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bd.write_bundle(tmp_path_factory.mktemp("batch3") / "bundle")


# ---------------------------------------------------------------------------------------------------- data loss
def test_dataloss_foreign_file_at_a_variation_output_is_refused(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "x.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x_0.wav").write_bytes(b"precious")
    proc = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--variations", "2", "-q")
    one_line_error(proc, "x_0.wav", "not an output of this batch", "x.wav")
    assert (out / "x_0.wav").read_bytes() == b"precious" and not (out / "x_1.wav").exists()


def test_dataloss_foreign_file_at_the_output_is_not_taken_for_a_finished_one(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "x.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.wav").write_bytes(b"precious")
    one_line_error(run("batch", tmp_path / "in", "--out", out, "--models", bundle, "-q"),
                   "x.wav", "not an output of this batch")
    assert (out / "x.wav").read_bytes() == b"precious"


def test_dataloss_own_outputs_are_still_resumed(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "x.wav")
    tone(tmp_path / "in" / "y.wav")
    out = tmp_path / "out"
    assert run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--variations", "2", "-q").returncode == 0
    again = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--variations", "2", "-q")
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in report(out)] == ["ok", "ok", "skipped", "skipped"]


def test_dataloss_a_rows_output_is_another_rows_input(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "a.wav", freq=200)
    b = tone(tmp_path / "b.wav", freq=300)
    before = b.read_bytes()
    (tmp_path / "m.csv").write_text("input,output\na.wav,b.wav\nb.wav,c.wav\n")
    one_line_error(run("batch", tmp_path / "m.csv", "--out", tmp_path, "--models", bundle, "-q"),
                   "m.csv:2", "m.csv:3", "b.wav")
    assert b.read_bytes() == before and not (tmp_path / "c.wav").exists()


def test_dataloss_an_output_is_an_input_given_on_the_command_line(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    inside = tone(out / "sub" / "a.wav", freq=200)  # given as a file: its output is out/a.wav
    before = inside.read_bytes()
    tone(tmp_path / "in" / "sub" / "a.wav", freq=300)  # in a folder: its output is out/sub/a.wav, the first input
    one_line_error(run("batch", inside, tmp_path / "in", "--out", out, "--models", bundle, "-q"),
                   "sub/a.wav", "is the input of")
    assert inside.read_bytes() == before and not (out / REPORT).exists() and not (out / "a.wav").exists()


def test_dataloss_outputs_differing_only_in_case_are_refused(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "one" / "Song.wav")
    tone(tmp_path / "two" / "song.wav")
    out = tmp_path / "out"
    one_line_error(run("batch", tmp_path / "one" / "Song.wav", tmp_path / "two" / "song.wav", "--out", out,
                       "--models", bundle, "-q"), "Song.wav", "song.wav", "only in case")
    assert not out.exists()


def test_dataloss_output_differing_only_in_case_from_an_existing_file_is_refused(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "song.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "SONG.wav").write_bytes(b"precious")
    one_line_error(run("batch", tmp_path / "in", "--out", out, "--models", bundle, "-q"),
                   "SONG.wav", "only in case")
    assert (out / "SONG.wav").read_bytes() == b"precious" and audio_files(out) == {"SONG.wav"}


def test_dataloss_out_equal_to_an_input_folder_is_refused(bundle: Path, tmp_path: Path) -> None:
    col = tmp_path / "col"
    tone(col / "a.wav")
    tone(col / "sub" / "b.wav")
    before = sorted(p.name for p in col.rglob("*"))
    one_line_error(run("batch", col, "--out", col, "--models", bundle, "-q"), "--out", "input folder")
    assert sorted(p.name for p in col.rglob("*")) == before


def test_dataloss_out_inside_an_input_folder_reruns_never_vamp_their_own_outputs(bundle: Path, tmp_path: Path) -> None:
    for n, inner in enumerate(("vamped", "sub/vamped")):
        col = tmp_path / f"col{n}"
        tone(col / "a.wav")
        tone(col / "sub" / "b.wav")
        out = col / inner
        for _ in range(2):
            proc = run("batch", col, "--out", out, "--models", bundle, "--variations", "2", "--format", "flac", "-q")
            assert proc.returncode == 0, proc.stderr
        assert audio_files(out) == {"a_0.flac", "a_1.flac", "sub/b_0.flac", "sub/b_1.flac"}
        assert [r["status"] for r in report(out)] == ["ok", "ok", "skipped", "skipped"]


def test_dataloss_report_symlink_pointing_outside_out_is_refused(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "x.wav")
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("precious\n")
    (out / REPORT).symlink_to(outside)
    one_line_error(run("batch", tmp_path / "in", "--out", out, "--models", bundle, "-q"), REPORT, "symlink")
    assert outside.read_text() == "precious\n" and not audio_files(out)


# ---------------------------------------------------------------------------------------------------- caps
def test_caps_workers_and_threads_are_capped_with_a_note(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "a.wav")
    tone(tmp_path / "in" / "b.wav")
    out = tmp_path / "out"
    started = time.monotonic()
    proc = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--workers", "1000", "--threads", "1000")
    assert proc.returncode == 0, proc.stderr
    assert "--workers 1000 capped at" in proc.stderr and "--threads 1000 capped at" in proc.stderr
    assert time.monotonic() - started < 200 and [r["status"] for r in report(out)] == ["ok", "ok"]


# ---------------------------------------------------------------------------------------------------- signals
@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vampnet_ort.demo import build_demo_bundle

    return build_demo_bundle(tmp_path_factory.mktemp("demo3") / "bundle")


def _clips(root: Path, count: int, seconds: float = 3.0) -> Path:
    for i in range(count):
        tone(root / f"clip{i}.wav", seconds, 22050, 110 * (i + 2))
    return root


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _start_batch(clips: Path, out: Path, bundle: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*cli_command(), "batch", str(clips), "--out", str(out), "--models", str(bundle),
                             "--steps", "12", "--workers", "2", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / REPORT).is_file() and (out / REPORT).read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be stopped"
    return proc


def _workers(pid: int) -> list[int]:
    return [c for c in _children(pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]


def _wait_gone(pids: list[int], seconds: float = 60.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_to_batch_ends_its_workers_and_records_finished_files(demo_bundle: Path, tmp_path: Path,
                                                                     signum: int) -> None:
    clips = _clips(tmp_path / "clips", 8)
    out = tmp_path / "out"
    proc = _start_batch(clips, out, demo_bundle)
    workers = _workers(proc.pid)
    assert workers
    proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        for pid in _wait_gone(workers, 5):
            os.kill(pid, signal.SIGKILL)  # never leave them behind, even when the test fails
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and signal.Signals(signum).name in stderr
    assert _wait_gone(workers) == []
    assert not partials(out)
    records = report(out)
    done = {Path(r["output"]).relative_to(out).as_posix() for r in records if r["status"] == "ok"}
    assert 1 <= len(done) < 8 and audio_files(out) == done  # every file written has its record, and vice versa


@pytest.mark.slow
def test_workers_do_not_outlive_a_killed_batch(demo_bundle: Path, tmp_path: Path) -> None:
    clips = _clips(tmp_path / "clips", 8)
    out = tmp_path / "out"
    proc = _start_batch(clips, out, demo_bundle)
    workers = _workers(proc.pid)
    assert workers
    proc.kill()
    try:
        proc.communicate(timeout=60)  # orphaned workers would hold its pipes open: this times out
        left = _wait_gone(workers)
    finally:
        for pid in _wait_gone(workers, 5):
            os.kill(pid, signal.SIGKILL)  # never leave them behind, even when the test fails
    assert left == [], "workers outlived the killed batch"
    assert not partials(out)


# ---------------------------------------------------------------------------------------------- manifest parsing
def test_manifest_duplicate_csv_columns_are_refused(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "x.wav")
    (tmp_path / "m.csv").write_text("input,seed,seed\nx.wav,1,2\n")
    one_line_error(run("batch", tmp_path / "m.csv", "--out", tmp_path / "o", "--models", bundle, "-q"),
                   "m.csv:1", "duplicate column 'seed'")
    assert not (tmp_path / "o").exists()


def _bad_rows(tmp_path: Path) -> dict:
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    return {
        "deep JSON": ('{"input": "x.wav", "seed": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        "5000-digit number": ('{"input": "x.wav", "seed": 1' + "0" * 5000 + "}", "digits"),
        "NUL byte": (json.dumps({"input": "x\u0000.wav"}), "NUL"),
        "over-long name": (json.dumps({"input": "n" * 300 + ".wav"}), "is too long"),
        "symlink loop": (json.dumps({"input": "loop.wav"}), "symlink loop"),
        "not an object": ('["x.wav"]', "JSON object"),
        "bad JSON": ('{"input": "x.wav", "seed": ', "not valid JSON"),
        "bad value": (json.dumps({"input": "x.wav", "seed": 1.5}), "integer"),
    }


@pytest.mark.parametrize("case", ["deep JSON", "5000-digit number", "NUL byte", "over-long name", "symlink loop",
                                  "not an object", "bad JSON", "bad value"])
def test_manifest_bad_row_is_its_own_error_record_with_file_and_line(bundle: Path, tmp_path: Path, case: str) -> None:
    tone(tmp_path / "x.wav")
    tone(tmp_path / "y.wav", freq=330)
    line, fragment = _bad_rows(tmp_path)[case]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"input": "y.wav"}) + "\n" + line + "\n")
    out = tmp_path / "o"
    proc = run("batch", manifest, "--out", out, "--models", bundle, "-q")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    records = report(out)
    assert sorted(r["status"] for r in records) == ["error", "ok"], records
    bad = next(r for r in records if r["status"] == "error")
    assert bad["input"] == f"{manifest}:2" and bad["outputs"] == [], bad  # the record names the file and line
    assert fragment in bad["error"] and str(manifest) not in bad["error"], bad["error"]
    assert len(bad["error"]) < 1000 and "\n" not in bad["error"]
    assert audio_files(out) == {"y.wav"}


def test_manifest_csv_5000_digit_value_is_its_own_error_record(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "x.wav")
    tone(tmp_path / "y.wav", freq=330)
    (tmp_path / "m.csv").write_text("input,seed\ny.wav,3\nx.wav,1" + "0" * 5000 + "\n")
    proc = run("batch", tmp_path / "m.csv", "--out", tmp_path / "o", "--models", bundle, "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    records = report(tmp_path / "o")
    assert sorted(r["status"] for r in records) == ["error", "ok"]
    bad = next(r for r in records if r["status"] == "error")
    assert bad["input"].endswith("m.csv:3") and "seed" in bad["error"] and len(bad["error"]) < 1000, bad


def _without_dac_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that even
    root obeys file permissions (prctl PR_CAPBSET_DROP; Linux)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_sub_folder_is_an_error_naming_it(bundle: Path, tmp_path: Path) -> None:
    col = tmp_path / "col"
    tone(col / "a.wav")
    tone(col / "locked" / "b.wav")
    out = tmp_path / "out"
    os.chmod(col / "locked", 0o000)
    try:
        proc = run("batch", col, "--out", out, "--models", bundle, "-q",
                   preexec_fn=_without_dac_override if os.geteuid() == 0 else None)
    finally:
        os.chmod(col / "locked", 0o755)
    one_line_error(proc, "locked", "cannot read")
    assert not out.exists() or not audio_files(out)


# ---------------------------------------------------------------------------------------------- error records
def test_error_record_names_no_missing_output_and_each_path_once(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "good.wav")
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF this is not audio" * 40)
    out = tmp_path / "out"
    proc = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--variations", "2", "-q")
    assert proc.returncode == 1
    bad = next(r for r in report(out) if r["status"] == "error")
    assert bad["outputs"] == [] and not any(Path(p).exists() for p in bad["outputs"])
    assert bad["error"].count("bad.wav") <= 1, bad["error"]
    assert proc.stderr.count("bad.wav") <= 2, proc.stderr  # the summary line names the input, then the reason


# ---------------------------------------------------------------------------------------------- options hash
def test_rerun_with_other_options_is_said_and_recorded(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "in" / "a.wav")
    tone(tmp_path / "in" / "b.wav")
    out = tmp_path / "out"
    assert run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--seed", "1", "-q").returncode == 0
    first = report(out)
    assert all(len(r["options_sha256"]) == 64 for r in first)
    same = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--seed", "1")
    assert same.returncode == 0 and "other options" not in same.stderr
    changed = run("batch", tmp_path / "in", "--out", out, "--models", bundle, "--seed", "2")
    assert changed.returncode == 0, changed.stderr
    assert "2 finished files were vamped with other options" in changed.stderr
    later = report(out)[4:]
    assert [r["status"] for r in later] == ["skipped", "skipped"]
    assert all(r["options_changed"] is True and r["options_sha256"] != first[0]["options_sha256"] for r in later)
