"""vampnet_ort.decode_steps: a decode run as windows of steps (the browser's per-step progress) gives the one-run
result token for token, on the demo bundle's coarse and c2f graphs, with and without the native library."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

import vampnet_ort
from vampnet_ort.decode_steps import NEXT_OUTPUT, StepWindowError, step_window_model
from vampnet_ort.demo import demo_bundle_path

MASK = 1024


@pytest.fixture(scope="module")
def bundle() -> Path:
    return demo_bundle_path()


def _feeds(c: int, cond: int, seed: int, steps: int, **over) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1024, (2, c, 30)).astype(np.int64)
    mask = (rng.random((2, c, 30)) < 0.6).astype(np.int64)
    mask[:, :cond] = 0
    f32 = np.float32
    feeds = {"codes": codes, "mask": mask, "seed": np.array(seed, np.int64), "num_steps": np.array(steps, np.int64),
             "temperature": np.array(1.0, f32), "mask_temperature": np.array(10.5, f32), "top_p": np.array(0.0, f32),
             "typical_mass": np.array(0.0, f32), "typical_min_tokens": np.array(1, np.int64),
             "sample_cutoff": np.array(1.0, f32)}  # fmt: skip
    feeds.update(over)
    return feeds


@pytest.mark.parametrize("with_library", [True, False])
@pytest.mark.parametrize(("stage", "c", "cond", "steps", "window"), [
    ("coarse", 4, 0, 6, 1), ("coarse", 4, 0, 7, 3), ("c2f", 14, 4, 3, 1), ("c2f", 14, 4, 2, 2),
])  # fmt: skip
def test_windows_equal_one_run(bundle: Path, tmp_path: Path, stage: str, c: int, cond: int, steps: int,
                               window: int, with_library: bool) -> None:
    path = bundle / f"{stage}.onnx"
    whole = vampnet_ort.create_session(str(path), with_library=with_library)
    model = onnx.load(str(path), load_external_data=False)
    # the derived graph refers to the same external data file, found beside it
    derived = tmp_path / f"{stage}.steps.onnx"
    derived.write_bytes(step_window_model(model).SerializeToString())
    shutil.copyfile(bundle / f"{stage}.onnx.data", tmp_path / f"{stage}.onnx.data")  # ORT refuses symlinks out
    windowed = vampnet_ort.create_session(str(derived), with_library=with_library)
    for over in ({}, {"top_p": np.array(0.9, np.float32)}):
        feeds = _feeds(c, cond, 5, steps, **over)
        expected = whole.run(["codes_out"], feeds)[0]
        z = np.where(feeds["mask"] != 0, MASK, feeds["codes"])
        n0 = (z == MASK).sum(axis=(1, 2)).astype(np.int64)
        codes, mask = feeds["codes"], feeds["mask"]
        for first in range(0, steps, window):
            count = min(window, steps - first)
            step_feeds = dict(feeds, codes=codes, mask=mask, n0=n0, first_step=np.array(first, np.int64),
                              step_count=np.array(count, np.int64))  # fmt: skip
            out, next_codes = windowed.run(["codes_out", NEXT_OUTPUT], step_feeds)
            codes, mask = next_codes, np.zeros_like(mask)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(next_codes, expected)  # the last step re-masks nothing


def test_refuses_a_graph_that_is_not_a_decode_graph(bundle: Path) -> None:
    model = onnx.load(str(bundle / "codec_decoder.onnx"), load_external_data=False)
    with pytest.raises(StepWindowError, match="not a decode graph"):
        step_window_model(model)
    coarse = onnx.load(str(bundle / "coarse.onnx"), load_external_data=False)
    with pytest.raises(StepWindowError, match="already has step-window inputs"):
        step_window_model(step_window_model(coarse))
