"""Robustness round 3 (issue 24): `vampnet-ort app` as a long-running server (real processes, real sockets on
127.0.0.1, gradio_client as an API user speaks): seeds above 2^53 exact, temporary files deleted, a preview
concurrency limit, cancel stops the work (the CPU goes idle), SIGTERM leaves no work folder, input limits.

One app process serves the module's tests that need no special start; the signal and file-lifetime tests start
their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import pytest
import soundfile as sf

gradio_client = pytest.importorskip("gradio_client", reason="the app tests need the test extra (gradio_client)")

import app_testing  # noqa: E402
from cli_testing import cli_command  # noqa: E402

RATE = 22050
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _clip(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2, RATE)
    return path


def _start(cache: Path, log_path: Path, *args: str, env: Optional[dict] = None) -> Tuple[subprocess.Popen, str]:
    port = app_testing.free_port()
    environment = app_testing.app_env(cache)
    environment.update(env or {})
    log = open(log_path, "w")
    proc = subprocess.Popen([*cli_command(), "app", "--port", str(port), *args], env=environment, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + app_testing.START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the app did not start:\n{log_path.read_text()}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # shared with the other app tests: one demo bundle build
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="module")
def server(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[subprocess.Popen, str]]:
    proc, url = _start(cache, tmp_path_factory.mktemp("app3-log") / "server.log")
    yield proc, url
    _stop(proc)


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server[1], verbose=False, download_files=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clip(tmp_path_factory.mktemp("app3-clip") / "clip.wav", 1.5)


def _vamp(client, clip: Path, **controls) -> List[np.ndarray]:
    result = client.predict(gradio_client.handle_file(str(clip)), api_name="/vamp", **controls)
    return [sf.read(path, dtype="int16")[0] for path in result]


# ------------------------------------------------------------------------------------------------ seeds > 2^53
@pytest.mark.parametrize("seed", [2**53 + 1, 2**63 - 1])
def test_seed_above_2_53_is_exact_and_reproduces_with_vamp(client, clip: Path, tmp_path: Path, seed: int) -> None:
    app_out = _vamp(client, clip, seed=seed, sampling_steps=3, periodic_prompt=5, compression_prompt=3)
    single = tmp_path / "single.wav"
    proc = subprocess.run([*cli_command(), "vamp", str(clip), str(single), "--seed", str(seed), "--steps", "3",
                           "--period", "5", "--upper-codebook-mask", "3", "-q"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(app_out[0], sf.read(str(single), dtype="int16")[0])


def test_seeds_one_apart_above_2_53_differ(client, clip: Path) -> None:
    a = _vamp(client, clip, seed=2**53, sampling_steps=3)
    b = _vamp(client, clip, seed=2**53 + 1, sampling_steps=3)
    np.testing.assert_array_equal(a[1], b[0])  # variation 1 of seed s is variation 0 of seed s + 1
    assert not np.array_equal(a[0], b[0])


def test_seed_out_of_range_names_the_number_given(client, clip: Path) -> None:
    with pytest.raises(Exception) as info:
        _vamp(client, clip, seed=2**63)
    assert "9223372036854775808" in str(info.value) and "64-bit" in str(info.value)


# ------------------------------------------------------------------------------------------------ limits
def test_input_longer_than_the_app_limit_is_refused(client, tmp_path: Path) -> None:
    long_clip = tmp_path / "long.wav"
    sf.write(str(long_clip), np.zeros(int(101 * 8000), np.float32), 8000)
    with pytest.raises(Exception) as info:
        _vamp(client, long_clip)
    assert "long.wav" in str(info.value) and "limit of 100 s" in str(info.value), str(info.value)


def test_1hz_wav_through_the_api_is_refused(client, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.wav"
    sf.write(str(tiny), np.zeros(500, np.float32), 1, subtype="PCM_16")
    with pytest.raises(Exception) as info:
        _vamp(client, tiny)
    assert "sample rate 1 Hz" in str(info.value)


def test_preview_and_every_event_have_a_concurrency_limit(tmp_path: Path) -> None:
    """Gradio's /config does not carry concurrency: the app's Blocks are built here, on a stand-in bundle."""
    import bundle_doubles as bd
    from vampnet_ort.app import PREVIEW_CONCURRENCY, VampApp, build_ui
    from vampnet_ort.pipeline import Pipeline

    app = VampApp(Pipeline(bd.write_bundle(tmp_path / "bundle")), work_dir=tmp_path / "work")
    blocks = build_ui(app)
    blocks.queue(default_concurrency_limit=1)
    functions = list(blocks.fns.values() if isinstance(blocks.fns, dict) else blocks.fns)
    for fn in functions:
        if fn.name in ("controls", "cancel"):  # HARP's: instant, and must never wait behind a job
            continue
        assert fn.concurrency_limit == "default" or isinstance(fn.concurrency_limit, int) and \
            1 <= fn.concurrency_limit <= 4, (fn.name, fn.concurrency_limit)  # None would be unlimited
    previews = [fn for fn in functions if fn.name in ("on_preview", "on_input", "ui_check")]
    assert previews and all(fn.concurrency_id == "preview" and fn.concurrency_limit == PREVIEW_CONCURRENCY
                            for fn in previews)
    assert {fn.concurrency_limit for fn in functions if fn.name in ("ui_vamp", "api_vamp", "process")} == {1}
    app.files.close()


# ------------------------------------------------------------------------------------------------ cancel
def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime of every thread


@pytest.mark.slow
def test_cancel_stops_the_work_and_frees_the_cpu(server, client, tmp_path: Path) -> None:
    from gradio_client.utils import Status

    proc, _ = server
    long_clip = _clip(tmp_path / "long.wav", 90.0)
    job = client.submit(gradio_client.handle_file(str(long_clip)), seed=5, sampling_steps=128, feedback_steps=8,
                        time_stretch=4, api_name="/vamp")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = job.status()
        if status.code in (Status.PROCESSING, Status.PROGRESS):
            break
        assert not job.done(), "the job finished before it could be cancelled"
        time.sleep(0.05)
    time.sleep(3.0)  # well inside the work
    job.cancel()
    time.sleep(3.0)  # the cancel reaches the worker thread
    before = _cpu_seconds(proc.pid)
    time.sleep(4.0)
    used = _cpu_seconds(proc.pid) - before
    assert used < 1.0, f"the app used {used:.1f} s of CPU in 4 s after the cancel: the job is still running"
    # the slot is free and the app still works
    assert len(_vamp(client, _clip(tmp_path / "short.wav", 0.5), sampling_steps=2)) == 2


# ------------------------------------------------------------------------------------------------ files
def _files(root: Path) -> List[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.slow
def test_uploads_and_outputs_are_deleted_after_their_lifetime(cache: Path, tmp_path: Path) -> None:
    gradio_tmp = tmp_path / "gradio-tmp"
    work_tmp = tmp_path / "tmp"
    work_tmp.mkdir()
    proc, url = _start(cache, tmp_path / "server.log", "--file-lifetime", "3",
                       env={"GRADIO_TEMP_DIR": str(gradio_tmp), "TMPDIR": str(work_tmp)})
    try:
        client = gradio_client.Client(url, verbose=False, download_files=False)
        result = client.predict(gradio_client.handle_file(str(_clip(tmp_path / "c.wav", 0.5))), sampling_steps=2,
                                api_name="/vamp")
        assert len(result) == 2
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = [p for p in _files(gradio_tmp) + _files(work_tmp) if p.suffix in (".wav", ".png")]
            if not left:
                break
            time.sleep(0.5)
        assert not left, f"still there after 60 s with a 3 s lifetime: {left}"
    finally:
        _stop(proc)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_to_the_app_leaves_no_work_folder(cache: Path, tmp_path: Path, signum: int) -> None:
    work_tmp = tmp_path / "tmp"
    work_tmp.mkdir()
    gradio_tmp = tmp_path / "gradio-tmp"
    proc, url = _start(cache, tmp_path / "server.log", env={"TMPDIR": str(work_tmp), "GRADIO_TEMP_DIR": str(gradio_tmp)})
    try:
        client = gradio_client.Client(url, verbose=False, download_files=False)
        assert len(client.predict(gradio_client.handle_file(str(_clip(tmp_path / "c.wav", 0.5))), sampling_steps=2,
                                  api_name="/vamp")) == 2
        assert any(p.name.startswith("vampnet-ort-app-") for p in work_tmp.iterdir())
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    assert not [p for p in work_tmp.iterdir() if p.name.startswith("vampnet-ort-app-")]
    assert not [p for p in _files(gradio_tmp) if p.suffix in (".wav", ".png")]
