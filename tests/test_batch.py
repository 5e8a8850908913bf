"""`vampnet-ort batch` / `vampnet_ort.batch.vamp_many`: inputs, manifests, report, resume, errors, Ctrl-C.

Orchestration runs on the stand-in bundle (tests/bundle_doubles.py: exact and fast; its decode output depends on
the seed and the mask, so seeds and mask overrides show in the files); equality with `vampnet-ort vamp`, the
interrupted run and the Ray engine (tests/test_batch_ray.py) use the demo bundle's real models.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import bundle_doubles as bd
import numpy as np
import pytest
import soundfile as sf
from cli_testing import cli_command

REPORT = "vampnet-batch.jsonl"


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode not in (0, None), proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vampnet-ort"), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def report(out: Path) -> list[dict]:
    lines = (out / REPORT).read_text().splitlines()
    return [json.loads(line) for line in lines]  # every line must be a whole JSON object


def tone(path: Path, seconds: float, rate: int, freq: float, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)], axis=1)
    sf.write(str(path), x, rate)
    return path


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def audio_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".wav", ".flac", ".ogg")}


@pytest.fixture()
def collection(tmp_path: Path) -> Path:
    col = tmp_path / "col"
    tone(col / "a.wav", 1.0, 8000, 220)
    tone(col / "sub" / "b.flac", 0.7, 11025, 330, channels=2)
    tone(col / "sub" / "deeper" / "c.wav", 1.3, 8000, 440)
    (col / "sub" / "bad.wav").write_bytes(b"RIFF this is not audio" * 40)
    tone(col / ".hidden.wav", 0.5, 8000, 100)  # hidden: not an input
    (col / "notes.txt").write_text("not audio")  # not an audio extension: not an input
    return col


@pytest.mark.slow
def test_folder_and_manifest_mirror_outputs_record_errors_and_exit_1(bundle: Path, collection: Path,
                                                                      tmp_path: Path) -> None:
    manifest = tmp_path / "list.csv"
    manifest.write_text("input,output,seed,period,no_random_roll\n"
                        "col/a.wav,overrides/a5.wav,5,3,true\n"
                        "col/missing.wav,,,,\n")
    out = tmp_path / "out"
    proc = run("batch", collection, manifest, "--out", out, "--models", bundle, "--workers", "2", "-q")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip() == str(out / REPORT)
    assert audio_files(out) == {"a.wav", "sub/b.flac", "sub/deeper/c.wav", "overrides/a5.wav"}
    assert not partials(out)
    records = report(out)
    by_input = {Path(r["input"]).name: r for r in records}
    assert len(records) == 6 and set(by_input) == {"a.wav", "b.flac", "c.wav", "bad.wav", "missing.wav"}
    assert sorted(r["status"] for r in records) == ["error", "error", "ok", "ok", "ok", "ok"]
    assert "unsupported or unrecognised" in by_input["bad.wav"]["error"]
    assert "no such file" in by_input["missing.wav"]["error"]
    overridden = [r for r in records if r["output"].endswith("a5.wav")][0]
    assert overridden["seed"] == 5 and overridden["status"] == "ok" and overridden["error"] is None
    assert by_input["c.wav"]["seed"] == 0 and abs(by_input["c.wav"]["duration"] - 1.3) < 1e-3
    assert sf.info(str(out / "sub" / "b.flac")).format == "FLAC"
    # each output is what `vampnet-ort vamp` writes for that file with the same seed and options
    for source, output, extra in (("sub/deeper/c.wav", "sub/deeper/c.wav", []),
                                  ("a.wav", "overrides/a5.wav", ["--seed", "5", "--period", "3", "--no-random-roll"])):
        single = tmp_path / f"single-{Path(output).name}"
        assert run("vamp", collection / source, single, "--models", bundle, "-q", *extra).returncode == 0
        assert single.read_bytes() == (out / output).read_bytes(), output
    plain = tmp_path / "plain.wav"
    assert run("vamp", collection / "a.wav", plain, "--models", bundle, "-q").returncode == 0
    assert plain.read_bytes() != (out / "overrides" / "a5.wav").read_bytes()  # the overrides took effect

    # resume: finished files are skipped untouched, failed ones are tried again
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.*") if p.name != REPORT}
    time.sleep(0.05)
    again = run("batch", collection, manifest, "--out", out, "--models", bundle, "-q")
    assert again.returncode == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.*") if p.name != REPORT} == mtimes
    second = report(out)[6:]
    assert sorted(r["status"] for r in second) == ["error", "error", "skipped", "skipped", "skipped", "skipped"]


@pytest.mark.slow
def test_all_ok_exits_0_format_and_per_file_seed(bundle: Path, collection: Path, tmp_path: Path) -> None:
    (collection / "sub" / "bad.wav").unlink()
    out = tmp_path / "out"
    proc = run("batch", collection, "--out", out, "--models", bundle, "--format", "ogg", "--per-file-seed",
               "--seed", "9", "-q")
    assert proc.returncode == 0, proc.stderr
    assert audio_files(out) == {"a.ogg", "sub/b.ogg", "sub/deeper/c.ogg"}
    from vampnet_ort.batch import file_seed

    records = report(out)
    seeds = {Path(r["output"]).relative_to(out).as_posix(): r["seed"] for r in records}
    assert seeds == {rel: file_seed(9, rel) for rel in seeds} and len(set(seeds.values())) == 3
    single = tmp_path / "c.ogg"
    assert run("vamp", collection / "sub" / "deeper" / "c.wav", single, "--models", bundle, "-q",
               "--seed", seeds["sub/deeper/c.ogg"]).returncode == 0
    np.testing.assert_array_equal(sf.read(str(single))[0], sf.read(str(out / "sub" / "deeper" / "c.ogg"))[0])


@pytest.mark.slow
def test_jsonl_manifest_variations_and_typed_values(bundle: Path, tmp_path: Path) -> None:
    clip = tone(tmp_path / "in" / "x.wav", 1.0, 8000, 300)
    manifest = tmp_path / "in" / "m.jsonl"
    manifest.write_text(json.dumps({"input": "x.wav", "seed": 3, "variations": 2, "no-random-roll": True}) + "\n\n"
                        + json.dumps({"input": str(clip), "output": "y.flac", "intensity": 0.5}) + "\n")
    out = tmp_path / "out"
    proc = run("batch", manifest, "--out", out, "--models", bundle, "-q")
    assert proc.returncode == 0, proc.stderr
    assert audio_files(out) == {"x_0.wav", "x_1.wav", "y.flac"}
    first = report(out)[0] if report(out)[0]["output"].endswith("x.wav") else report(out)[1]
    assert first["outputs"] == [str(out / "x_0.wav"), str(out / "x_1.wav")] and first["seed"] == 3
    assert run("batch", manifest, "--out", out, "--models", bundle, "-q").returncode == 0
    assert [r["status"] for r in report(out)[2:]] == ["skipped", "skipped"]
    (out / "x_1.wav").unlink()  # one variation missing: the file is done again
    assert run("batch", manifest, "--out", out, "--models", bundle, "-q").returncode == 0
    assert sorted(r["status"] for r in report(out)[4:]) == ["ok", "skipped"]


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("content,where,fragments", [
    ("input,perod\nx.wav,3\n", 2, ["unknown option 'perod'", "period"]),
    ("input,period\nx.wav,3\ny.wav,three\n", 3, ["period", "invalid int value"]),
    ("input,dropout\nx.wav,1.5\n", 2, ["dropout"]),
    ("input,threads\nx.wav,2\n", 2, ["run-level option"]),
    ("input,no_c2f\nx.wav,maybe\n", 2, ["true or false"]),
    ("input,output\nx.wav,../escape.wav\n", 2, ["relative path inside --out"]),
    ("input,output\nx.wav,y.mp4\n", 2, ["extension"]),
])
def test_manifest_bad_row_is_an_error_record_naming_the_row(bundle: Path, tmp_path: Path, content: str, where: int,
                                                            fragments: list) -> None:
    tone(tmp_path / "x.wav", 0.5, 8000, 200)
    tone(tmp_path / "y.wav", 0.5, 8000, 300)
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    out = tmp_path / "out"
    proc = run("batch", manifest, "--out", out, "--models", bundle)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"failed: {manifest}:{where}: " in proc.stderr
    bad = [r for r in report(out) if r["status"] == "error"]
    assert len(bad) == 1 and bad[0]["input"] == f"{manifest}:{where}" and bad[0]["outputs"] == [], bad
    for fragment in fragments:
        assert fragment in bad[0]["error"], (fragment, bad[0]["error"])
    good = {Path(r["output"]).name for r in report(out) if r["status"] == "ok"}
    assert audio_files(out) == good  # the other rows were vamped, the bad one wrote nothing


@pytest.mark.parametrize("content,fragments", [
    ("path,seed\nx.wav,1\n", ["header row with an 'input' column"]),
    ("input,seed,seed\nx.wav,1,2\n", ["m.csv:1", "duplicate column 'seed'"]),
    ("input\n", ["lists no inputs"]),
])
def test_manifest_file_errors_stop_the_batch_and_write_nothing(bundle: Path, tmp_path: Path, content: str,
                                                               fragments: list) -> None:
    tone(tmp_path / "x.wav", 0.5, 8000, 200)
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    out = tmp_path / "out"
    one_line_error(run("batch", manifest, "--out", out, "--models", bundle, "-q"), *fragments)
    assert not out.exists()


def test_jsonl_errors(bundle: Path, tmp_path: Path) -> None:
    tone(tmp_path / "x.wav", 0.5, 8000, 200)
    manifest = tmp_path / "m.jsonl"
    for content, where, fragment in (('{"input": "x.wav"}\n{"input": "x.wav", "seed": \n', 2, "not valid JSON"),
                                     ('["x.wav"]\n', 1, "JSON object"),
                                     ('{"input": "x.wav", "seed": 1.5}\n', 1, "integer")):
        manifest.write_text(content)
        out = tmp_path / f"o{where}{fragment[:3]}"
        proc = run("batch", manifest, "--out", out, "--models", bundle, "-q")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        bad = [r for r in report(out) if r["status"] == "error"]
        assert len(bad) == 1 and bad[0]["input"] == f"{manifest}:{where}" and fragment in bad[0]["error"], bad


def test_command_errors(bundle: Path, collection: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    one_line_error(run("batch", tmp_path / "nope", "--out", out, "--models", bundle), "no such file or folder")
    one_line_error(run("batch", collection / "a.wav", "--out", collection, "--models", bundle, "-q"),
                   "would replace its input")
    tone(tmp_path / "other" / "a.wav", 0.5, 8000, 200)
    one_line_error(run("batch", collection / "a.wav", tmp_path / "other" / "a.wav", "--out", out,
                       "--models", bundle, "-q"), "would both write")
    (tmp_path / "empty").mkdir()
    one_line_error(run("batch", tmp_path / "empty", "--out", out, "--models", bundle, "-q"), "no audio files")
    one_line_error(run("batch", collection, "--out", out, "--models", bundle, "--workers", "0"), "workers")
    one_line_error(run("batch", collection, "--out", out, "--models", bundle, "--steps", "0"), "steps")
    one_line_error(run("batch", collection, "--out", out, "--models", bundle, "--ray-address", "auto"),
                   "needs --engine ray")
    one_line_error(run("batch", collection, "--out", out, "--models", tmp_path / "nob"), "no such bundle directory")
    one_line_error(run("batch", collection, "--out", out, "--plot", "x.png"), "unrecognized arguments")
    tampered = bd.write_bundle(tmp_path / "tampered")
    data = bytearray((tampered / "coarse.onnx").read_bytes())
    data[-5] ^= 1
    (tampered / "coarse.onnx").write_bytes(bytes(data))  # found by the workers, which verify the bundle
    one_line_error(run("batch", collection, "--out", tmp_path / "o2", "--models", tampered, "-q"), "sha256")
    assert not audio_files(tmp_path / "o2")
    (tmp_path / "file").write_text("x")
    one_line_error(run("batch", collection, "--out", tmp_path / "file", "--models", bundle), "not a directory")
    assert not out.exists()


@pytest.mark.slow
def test_output_folder_inside_the_input_folder_is_not_read_back(bundle: Path, collection: Path) -> None:
    (collection / "sub" / "bad.wav").unlink()
    out = collection / "vamped"
    for _ in range(2):
        proc = run("batch", collection, "--out", out, "--models", bundle, "-q")
        assert proc.returncode == 0, proc.stderr
    assert audio_files(out) == {"a.wav", "sub/b.flac", "sub/deeper/c.wav"}
    assert [r["status"] for r in report(out)] == ["ok"] * 3 + ["skipped"] * 3


@pytest.mark.slow
def test_python_api(bundle: Path, collection: Path, tmp_path: Path) -> None:
    from vampnet_ort import VampOptions
    from vampnet_ort.batch import read_report, vamp_many

    records = vamp_many([collection / "a.wav", collection / "sub"], tmp_path / "out", VampOptions(seed=4),
                        models=bundle, workers=1, output_format="flac")
    assert sorted(Path(r["output"]).name for r in records) == ["a.flac", "b.flac", "bad.flac", "c.flac"]
    assert {r["status"] for r in records} == {"ok", "error"} and all(r["seed"] == 4 for r in records)
    assert read_report(tmp_path / "out" / REPORT) == records


def test_option_round_trip_through_the_overrides() -> None:
    from vampnet_ort.options import VampOptions, apply_overrides, options_from_json, options_to_json

    options = apply_overrides(VampOptions(), {
        "seed": "11", "steps": 5, "temperature": 0.5, "mask_temperature": 3, "top_p": 0.9, "typical_mass": 0.2,
        "typical_min_tokens": 8, "sample_cutoff": 0.5, "variations": 2, "feedback_steps": 2, "time_stretch": 2,
        "c2f_steps": 3, "c2f_temperature": 0.7, "c2f_mask_temperature": 2, "c2f_sample_cutoff": 0.3,
        "no_c2f": "yes", "intensity": 0.8, "prefix": 0.1, "suffix": 0.2, "period": 5, "width": 2,
        "no_random_roll": True, "onset_width": 1, "beat_width": 20, "downbeats_only": 1, "dropout": 0.1,
        "conditioning_codebooks": 1, "upper_codebook_mask": 4})
    assert options_from_json(json.loads(json.dumps(options_to_json(options)))) == options
    assert options.seed == 11 and options.mask.periodic_random_roll is False and options.use_c2f is False
    assert options.c2f.top_p == options.coarse.top_p == 0.9  # a flag name sets both stages, as on the CLI
    by_path = apply_overrides(VampOptions(), {"mask.periodic_period": 5, "coarse.top_p": 0.5, "use_c2f": "false"})
    assert (by_path.mask.periodic_period, by_path.coarse.top_p, by_path.c2f.top_p, by_path.use_c2f) == (5, 0.5, 0.0, False)


def _demo_clips(root: Path, count: int, seconds: float = 1.5) -> Path:
    for i in range(count):
        tone(root / f"g{i % 2}" / f"clip{i}.wav", seconds, 22050, 110 * (i + 2), channels=1 + i % 2)
    return root


@pytest.mark.slow
def test_demo_bundle_batch_equals_vamp_for_the_same_seed(demo_bundle: Path, tmp_path: Path) -> None:
    clips = _demo_clips(tmp_path / "clips", 3)
    out = tmp_path / "out"
    proc = run("batch", clips, "--out", out, "--models", demo_bundle, "--workers", "2", "--seed", "7",
               "--steps", "6", "-q")
    assert proc.returncode == 0, proc.stderr
    for rel in ("g0/clip0.wav", "g1/clip1.wav"):
        # 2 workers on 2 cores run 1 intra-op thread each: with the same thread count the bytes are the same
        single = tmp_path / "single.wav"
        assert run("vamp", clips / rel, single, "--models", demo_bundle, "--seed", "7", "--steps", "6",
                   "--threads", "1", "-q").returncode == 0
        assert single.read_bytes() == (out / rel).read_bytes(), rel
        # at another thread count the tokens are the same, but ORT's Conv in the codec decoder sums in a
        # thread-dependent order (~1e-6): a 16-bit sample may differ by one step
        other = tmp_path / "other.wav"
        assert run("vamp", clips / rel, other, "--models", demo_bundle, "--seed", "7", "--steps", "6",
                   "--threads", "2", "-q").returncode == 0
        a, b = (sf.read(str(p), dtype="int16")[0].astype(np.int32) for p in (other, out / rel))
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, rel


def _default_sigint() -> None:
    """A child of a shell's background job inherits SIGINT ignored (and Python then installs no handler): start
    the batch as a terminal would, with SIGINT at its default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_interrupted_run_leaves_no_partial_file_and_a_true_report(demo_bundle: Path, tmp_path: Path) -> None:
    clips = _demo_clips(tmp_path / "clips", 8, seconds=3.0)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([*cli_command(), "batch", str(clips), "--out", str(out), "--models", str(demo_bundle),
                             "--steps", "12", "--workers", "2", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / REPORT).is_file() and (out / REPORT).read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not partials(out)
    records = report(out)
    done = {Path(r["output"]).relative_to(out).as_posix() for r in records if r["status"] == "ok"}
    assert 1 <= len(done) < 8 and audio_files(out) == done  # every output file has its record, and vice versa
    for rel in done:
        assert sf.info(str(out / rel)).frames > 0
    resumed = run("batch", clips, "--out", out, "--models", demo_bundle, "--steps", "12", "--workers", "2", "-q")
    assert resumed.returncode == 0, resumed.stderr
    later = report(out)[len(records):]
    assert sum(r["status"] == "skipped" for r in later) == len(done) and len(later) == 8
    assert len(audio_files(out)) == 8


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_file_becomes_an_error_record_and_is_replaced(demo_bundle: Path, tmp_path: Path) -> None:
    clips = _demo_clips(tmp_path / "clips", 6, seconds=3.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([*cli_command(), "batch", str(clips), "--out", str(out), "--models", str(demo_bundle),
                             "--steps", "12", "--workers", "2", "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / REPORT).is_file() and (out / REPORT).read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    workers = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers and proc.poll() is None
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=240)
    records = report(out)
    assert len(records) == 6 and "Traceback" not in stderr  # every file accounted for: the pool went on
    died = [r for r in records if r["status"] == "error"]
    assert all("worker process died (signal 9)" in r["error"] for r in died)
    assert proc.returncode == (1 if died else 0)
    assert not partials(out) and audio_files(out) == {Path(r["output"]).relative_to(out).as_posix()
                                                      for r in records if r["status"] == "ok"}


def test_report_survives_a_torn_last_line(tmp_path: Path) -> None:
    from vampnet_ort.batch.report import ReportWriter, make_record, read_report

    path = tmp_path / REPORT
    whole = make_record(input="a", output="b", outputs=["b"], status="ok", seed=1, seconds=1.0, duration=2.0)
    path.write_text(json.dumps(whole.to_json()) + "\n" + '{"input": "killed mid-wr')
    with ReportWriter(path) as writer:
        writer.write(make_record(input="c", output="d", outputs=["d"], status="error", seed=2, error="x"))
    records = read_report(path)
    assert [r["input"] for r in records] == ["a", "c"] and records[1]["error"] == "x"
    assert path.read_text().splitlines()[2].startswith('{"input": "c"')


def test_jobs_and_records_are_typed_and_cross_processes_as_json(tmp_path: Path) -> None:
    from vampnet_ort.batch import Job, Record
    from vampnet_ort.batch.core import plan_jobs
    from vampnet_ort.batch.inputs import collect_inputs
    from vampnet_ort.options import VampOptions, with_values

    manifest = tmp_path / "m.csv"
    tone(tmp_path / "a.wav", 0.2, 8000, 200)
    manifest.write_text("input,output,period,output_sample_rate\na.wav,x/a.flac,5,22050\n")
    (job,) = plan_jobs(collect_inputs([manifest]), tmp_path / "out", VampOptions(seed=3), n_codebooks=14)
    assert isinstance(job, Job) and job.options == with_values(VampOptions(seed=3), {"mask.periodic_period": 5})
    assert job.outputs == (str(tmp_path / "out" / "x" / "a.flac"),) and job.output_sample_rate == 22050
    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job
    record = job.record("error", error="x", seconds=1.23456789, duration=0.2)
    assert isinstance(record, Record) and record.seed == 3 and record.seconds == 1.2346
    assert Record.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert list(record.to_json()) == ["input", "output", "outputs", "status", "error", "seconds", "seed", "duration",
                                      "finished", "options_sha256"]
    assert len(record.options_sha256) == 64 and record.options_sha256 == job.options_sha256
    with pytest.raises(ValueError, match="status"):
        job.record("maybe")
