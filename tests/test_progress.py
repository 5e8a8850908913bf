"""Pipeline progress callbacks (``on_progress(stage, done, total)``) on a stand-in bundle (tests/bundle_doubles.py):
the sequence expected here is counted from the chunk sizes of the double, independently of the pipeline code."""

from __future__ import annotations

import numpy as np
import pytest

import bundle_doubles as bd
from vampnet_ort import audio, masks
from vampnet_ort.pipeline import Pipeline, VampOptions

COARSE_CHUNK, C2F_CHUNK = 20, 7


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory):
    return bd.write_bundle(tmp_path_factory.mktemp("bundle"), coarse_chunk=COARSE_CHUNK, c2f_chunk=C2F_CHUNK)


def _clip() -> np.ndarray:
    t = np.arange(11025) / 11025
    return (0.2 * np.sin(2 * np.pi * 3 * t))[None, :].astype(np.float32)


def _expected(frames: int, passes: int, variations: int, use_c2f: bool = True) -> list:
    coarse = -(-frames // COARSE_CHUNK) * passes
    c2f = -(-frames // C2F_CHUNK) * passes
    events = [("encode", 0, 1), ("encode", 1, 1)]
    per_pass_coarse, per_pass_c2f = coarse // passes, c2f // passes
    for p in range(passes):
        events += [("coarse", p * per_pass_coarse + k, coarse) for k in range(per_pass_coarse + 1)]
        if use_c2f:
            events += [("c2f", p * per_pass_c2f + k, c2f) for k in range(per_pass_c2f + 1)]
    events += [("decode", i, variations) for i in range(variations + 1)]
    return events


@pytest.mark.parametrize("passes, variations, use_c2f", [(1, 1, True), (3, 2, True), (2, 1, False)])
def test_progress_events(bundle_dir, passes: int, variations: int, use_c2f: bool) -> None:
    events: list = []
    pipe = Pipeline(bundle_dir)
    opts = VampOptions(mask=masks.MaskOptions(periodic_period=4), seed=3, feedback_steps=passes,
                       variations=variations, use_c2f=use_c2f)
    result = pipe.vamp_samples(_clip(), 11025, opts, on_progress=lambda *e: events.append(e))
    frames = -(-audio.prepare(_clip(), 11025, bd.SAMPLE_RATE, bd.HOP).length // bd.HOP)
    assert result.codes_out.shape[-1] == frames
    assert events == _expected(frames, passes, variations, use_c2f)


def test_pipeline_callback_and_per_call_override(bundle_dir) -> None:
    default: list = []
    own: list = []
    pipe = Pipeline(bundle_dir, on_progress=lambda *e: default.append(e))
    plain = Pipeline(bundle_dir).vamp_samples(_clip(), 11025, VampOptions(seed=5))
    reported = pipe.vamp_samples(_clip(), 11025, VampOptions(seed=5))
    assert default and default[-1] == ("decode", 1, 1)
    np.testing.assert_array_equal(plain.audio, reported.audio)  # reporting changes nothing
    pipe.vamp_samples(_clip(), 11025, VampOptions(seed=5), on_progress=lambda *e: own.append(e))
    assert own == default and len(default) == len(own)  # the run's own callback replaced the pipeline's
