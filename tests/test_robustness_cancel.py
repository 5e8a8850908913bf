"""Robustness round 3 (issue 24): a cancelled run really stops (`Pipeline.cancellable` / `CancelToken`).

The app's cancel button and API cancel use this (tests/test_robustness_app.py); here the pipeline alone, on the demo
bundle's real decode graphs (a `Loop` of transformer steps), in a thread as the app runs it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vampnet_ort.pipeline import Cancelled, CancelToken, Pipeline, SamplingOptions, VampOptions


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
            with pipe.cancellable(token):
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
        with pipe.cancellable(token):
            pipe.vamp_samples(_clip(1.0), 44100, VampOptions(seed=1, coarse=SamplingOptions(steps=4)))
    assert time.monotonic() - started < 30
