"""Robustness round 3 (issue 24): a cancelled run really stops (`pipeline.cancellable` / `CancelToken`).

The app's cancel button and API cancel use this (tests/test_robustness_app.py); here the pipeline alone, on the demo
bundle's real decode graphs (a `Loop` of transformer steps), in a thread as the app runs it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vampnet_ort.pipeline import Cancelled, CancelToken, Pipeline, SamplingOptions, VampOptions, cancellable


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    from vampnet_ort.demo import build_demo_bundle

    return Pipeline(build_demo_bundle(tmp_path_factory.mktemp("demo-cancel") / "bundle"), intra_op_threads=1)


def _clip(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 44100)) / 44100
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None, :]


def test_cancel_stops_a_long_run_within_moments(pipe: Pipeline) -> None:
    options = VampOptions(seed=1, coarse=SamplingOptions(steps=2000), feedback_steps=4)
    token = CancelToken()
    started = threading.Event()
    outcome: dict = {}

    def work() -> None:
        try:
            with cancellable(token):
                pipe.vamp_samples(_clip(12.0), 44100, options,
                                  on_progress=lambda stage, done, total: started.set() if stage == "coarse" else None)
            outcome["result"] = "finished"
        except Cancelled as exc:
            outcome["result"] = exc
            outcome["at"] = time.monotonic()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert started.wait(300), "the run never reached the coarse stage"
    time.sleep(0.5)  # inside a coarse decode Loop of 2000 steps (minutes)
    cancelled_at = time.monotonic()
    token.cancel()
    thread.join(60)
    assert not thread.is_alive(), "the run went on after cancel()"
    assert isinstance(outcome.get("result"), Cancelled), outcome
    assert outcome["at"] - cancelled_at < 30
    # the pipeline is usable again: a new run (no token) completes
    short = pipe.vamp_samples(_clip(0.5), 44100, VampOptions(seed=1, coarse=SamplingOptions(steps=2)))
    assert np.isfinite(short.audio).all()


def test_a_cancelled_token_stops_the_next_run_at_once(pipe: Pipeline) -> None:
    token = CancelToken()
    token.cancel()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        with cancellable(token):
            pipe.vamp_samples(_clip(1.0), 44100, VampOptions(seed=1, coarse=SamplingOptions(steps=4)))
    assert time.monotonic() - started < 30


def test_call_cancellable_stops_the_worker_when_its_task_is_cancelled(pipe: Pipeline) -> None:
    """What the app does for every vamp: a cancelled asyncio task (Gradio's cancel) cancels the pipeline run, and
    the task ends only once the worker thread has stopped."""
    import asyncio

    from vampnet_ort.app_runtime import call_cancellable

    started = threading.Event()
    options = VampOptions(seed=2, coarse=SamplingOptions(steps=2000), feedback_steps=4)

    def work() -> str:
        pipe.vamp_samples(_clip(12.0), 44100, options,
                          on_progress=lambda stage, done, total: started.set() if stage == "coarse" else None)
        return "finished"

    async def scenario() -> float:
        task = asyncio.ensure_future(call_cancellable(work))
        while not started.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - cancelled_at

    started_at = time.monotonic()
    waited = asyncio.run(asyncio.wait_for(scenario(), 600))
    # the task ends only after its worker thread returned, and asyncio.run joins the executor's threads: a run
    # that went on (2000 steps x 4 passes: many minutes) would show in both times
    assert waited < 30 and time.monotonic() - started_at < 300


def test_exact_integer_keeps_every_digit() -> None:
    from vampnet_ort.app_runtime import exact_integer

    assert exact_integer(2**63 - 1, "seed") == 2**63 - 1
    assert exact_integer(str(2**63 - 1), "seed") == 2**63 - 1
    assert exact_integer(" 9007199254740993 ", "seed") == 2**53 + 1
    assert exact_integer(12.0, "seed") == 12 and exact_integer("1e3", "seed") == 1000
    assert exact_integer("-5", "seed") == -5
    for bad, fragment in ((1.5, "whole number"), ("abc", "whole number"), (True, "whole number"),
                          (float(2**60), "too large to be exact"), ("9" * 41, "at most 40 digits"),
                          (float("nan"), "whole number"), (None, "whole number")):
        with pytest.raises(ValueError, match=fragment):
            exact_integer(bad, "seed")


def test_job_files_are_deleted_after_their_lifetime_and_at_close(tmp_path: Path) -> None:
    from vampnet_ort.app_runtime import JobFiles

    files = JobFiles(lifetime=1.0, root=tmp_path / "work")
    job = files.new()
    (job / "output_0.wav").write_bytes(b"x")
    files.start_sweeping()
    deadline = time.monotonic() + 30
    while job.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job.exists()
    files.new()
    files.close()
    assert not (tmp_path / "work").exists()
