"""Robustness of the exported models (decode, logits and codec graphs of a golden-size bundle): bad inputs end in
a clear error or a documented result, a whole decode is thread-safe and deterministic under concurrency, repeated
decodes keep RSS flat, and tampered external-data locations are refused. Behaviour is documented in
docs/RELIABILITY.md ("Exported models")."""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import vampnet_ort
from vampnet_ort.codec import CodecInputError, decode as codec_decode, encode as codec_encode
from vampnet_ort.export.bundle import export_bundle

from op_testing import GOLDEN, UNDER_SANITIZER, rss_bytes

MASK = 1024
F32 = np.float32


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return export_bundle(tmp_path_factory.mktemp("robust") / "models", codec=GOLDEN / "codec.pth",
                         coarse=GOLDEN / "coarse.pth", c2f=GOLDEN / "c2f.pth", logits=True)


_SESSIONS: dict[str, ort.InferenceSession] = {}


def session(bundle: Path, name: str) -> ort.InferenceSession:
    key = str(bundle / name)
    if key not in _SESSIONS:
        _SESSIONS[key] = vampnet_ort.create_session(key, intra_op_threads=1)
    return _SESSIONS[key]


def decode_feeds(b: int = 1, c: int = 4, t: int = 8, **overrides: np.ndarray) -> dict[str, np.ndarray]:
    feeds = {
        "codes": np.random.default_rng(0).integers(0, MASK, (b, c, t)).astype(np.int64),
        "mask": np.ones((b, c, t), np.int64),
        "seed": np.array(0, np.int64), "num_steps": np.array(3, np.int64), "temperature": np.array(1.0, F32),
        "mask_temperature": np.array(10.5, F32), "top_p": np.array(0.9, F32), "typical_mass": np.array(0.0, F32),
        "typical_min_tokens": np.array(64, np.int64), "sample_cutoff": np.array(1.0, F32),
    }
    feeds.update(overrides)
    return feeds


def zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.int64)


# (case, feed overrides, text the error must contain)
DECODE_ERRORS = [
    ("token id > MASK", dict(codes=np.full((1, 4, 8), 2000, np.int64), mask=zeros(1, 4, 8)), "token id 2000"),
    ("negative token id", dict(codes=np.full((1, 4, 8), -5, np.int64), mask=zeros(1, 4, 8)), "token id -5"),
    ("negative token id under the mask", dict(codes=np.full((1, 4, 8), -5, np.int64)), "start_codes"),
    ("codes rank 2", dict(codes=zeros(4, 8)), "Invalid rank for input: codes"),
    ("codes int32", dict(codes=np.zeros((1, 4, 8), np.int32)), "expected: (tensor(int64))"),
    ("wrong codebook count", dict(codes=zeros(1, 3, 8), mask=zeros(1, 3, 8)), "invalid dimensions for input"),
    ("mask rank 2", dict(mask=zeros(4, 8)), "Invalid rank for input: mask"),
    ("mask float", dict(mask=np.ones((1, 4, 8), F32)), "expected: (tensor(int64))"),
    ("mask longer than codes", dict(mask=np.ones((1, 4, 9), np.int64)), "check_mask_shape_equals_codes_shape"),
    ("mask broadcast over batch", dict(codes=zeros(2, 4, 8), mask=np.ones((1, 4, 8), np.int64)),
     "check_mask_shape_equals_codes_shape"),
    ("mask broadcast over time", dict(mask=np.ones((1, 4, 1), np.int64)), "check_mask_shape_equals_codes_shape"),
    ("temperature NaN", dict(temperature=np.array(np.nan, F32)), "'temperature' must be finite"),
    ("temperature +inf", dict(temperature=np.array(np.inf, F32)), "'temperature' must be finite"),
    ("temperature -inf", dict(temperature=np.array(-np.inf, F32)), "'temperature' must be finite"),
    ("mask_temperature NaN", dict(mask_temperature=np.array(np.nan, F32)), "'mask_temperature' must be finite"),
    ("mask_temperature inf", dict(mask_temperature=np.array(np.inf, F32)), "'mask_temperature' must be finite"),
    ("top_p NaN", dict(top_p=np.array(np.nan, F32)), "'top_p' must be in [0, 1]"),
    ("top_p > 1", dict(top_p=np.array(1.5, F32)), "'top_p' must be in [0, 1]"),
    ("top_p < 0", dict(top_p=np.array(-3.0, F32)), "'top_p' must be in [0, 1]"),
    ("typical_mass NaN", dict(typical_mass=np.array(np.nan, F32)), "'typical_mass' is NaN"),
    ("sample_cutoff NaN", dict(sample_cutoff=np.array(np.nan, F32)), "'sample_cutoff' is NaN"),
    ("num_steps >= 2^24", dict(num_steps=np.array(2**24, np.int64)), "'num_steps' must be < 2^24"),
    ("T = 0", dict(codes=zeros(1, 4, 0), mask=zeros(1, 4, 0)), "input 'codes' is empty"),
    ("B = 0", dict(codes=zeros(0, 4, 8), mask=zeros(0, 4, 8)), "input 'codes' is empty"),
]


@pytest.mark.parametrize("case,overrides,message", DECODE_ERRORS, ids=[c[0] for c in DECODE_ERRORS])
def test_decode_graph_refuses_bad_input(bundle: Path, case: str, overrides: dict, message: str) -> None:
    c = overrides["codes"].shape[1] if "codes" in overrides and overrides["codes"].ndim == 3 else 4
    with pytest.raises(Exception, match=None) as info:
        session(bundle, "coarse.onnx").run(None, decode_feeds(c=c, **overrides))
    assert message in str(info.value), f"{case}: {info.value}"


def test_c2f_decode_graph_refuses_out_of_range_conditioning_tokens(bundle: Path) -> None:
    codes = np.random.default_rng(1).integers(0, MASK, (1, 14, 8)).astype(np.int64)
    codes[0, 2, 3] = MASK + 1
    mask = zeros(1, 14, 8)
    mask[:, 4:] = 1
    with pytest.raises(Exception) as info:
        session(bundle, "c2f.onnx").run(None, decode_feeds(c=14, codes=codes, mask=mask))
    assert "token id 1025" in str(info.value)


def run_decode(bundle: Path, **overrides: np.ndarray) -> np.ndarray:
    return session(bundle, "coarse.onnx").run(None, decode_feeds(**overrides))[0]


def test_any_nonzero_mask_value_means_regenerate(bundle: Path) -> None:
    ones = run_decode(bundle)
    for value in (2, -1, 7):
        np.testing.assert_array_equal(run_decode(bundle, mask=np.full((1, 4, 8), value, np.int64)), ones)


def test_non_positive_num_steps_returns_the_input_codes(bundle: Path) -> None:
    feeds = decode_feeds()
    for steps in (0, -1, -(2**40)):
        np.testing.assert_array_equal(run_decode(bundle, num_steps=np.array(steps, np.int64)), feeds["codes"])


def test_mask_token_in_an_unmasked_position_is_regenerated(bundle: Path) -> None:
    codes = np.random.default_rng(0).integers(0, MASK, (1, 4, 8)).astype(np.int64)
    mask = zeros(1, 4, 8)
    codes[0, 1, 2] = MASK
    out = run_decode(bundle, codes=codes, mask=mask)
    assert 0 <= out[0, 1, 2] < MASK
    keep = np.ones_like(codes, bool)
    keep[0, 1, 2] = False
    np.testing.assert_array_equal(out[keep], codes[keep])


def test_out_of_range_sampling_settings_have_documented_meanings(bundle: Path) -> None:
    # top_p 0 or 1: off (outside [0, 1]: an error, above); typical_mass <= 0: off; temperature <= 0: argmax;
    # negative seeds are valid seeds.
    base = run_decode(bundle, top_p=np.array(0.0, F32))
    np.testing.assert_array_equal(run_decode(bundle, top_p=np.array(1.0, F32)), base)
    np.testing.assert_array_equal(run_decode(bundle, temperature=np.array(-1.0, F32)),
                                  run_decode(bundle, temperature=np.array(0.0, F32)))
    out = run_decode(bundle, seed=np.array(-(2**62), np.int64), typical_mass=np.array(-1.0, F32),
                     typical_min_tokens=np.array(-5, np.int64))
    assert out.min() >= 0 and out.max() < MASK


def test_a_huge_num_steps_decode_can_be_cancelled(bundle: Path) -> None:
    # No cap below 2^24 steps (each step is one forward, so time is linear in num_steps); a caller bounds the
    # time with RunOptions.terminate, which ORT checks between the Loop's nodes.
    options = ort.RunOptions()
    timer = threading.Timer(0.3, lambda: setattr(options, "terminate", True))
    timer.start()
    start = time.perf_counter()
    with pytest.raises(Exception) as info:
        session(bundle, "coarse.onnx").run(None, decode_feeds(num_steps=np.array(2**24 - 1, np.int64)), options)
    timer.join()
    assert time.perf_counter() - start < 30
    assert "terminate" in str(info.value).lower() or "exiting due to terminate" in str(info.value).lower()


LOGITS_ERRORS = [
    ("token id > MASK", np.full((1, 4, 8), MASK + 1, np.int64), "token id 1025"),
    ("negative token id", np.full((1, 4, 8), -1, np.int64), "token id -1"),
    ("rank 2", zeros(4, 8), "Invalid rank for input: codes"),
    ("float codes", np.zeros((1, 4, 8), F32), "expected: (tensor(int64))"),
    ("T = 0", zeros(1, 4, 0), "input 'codes' is empty"),
    ("B = 0", zeros(0, 4, 8), "input 'codes' is empty"),
]


@pytest.mark.parametrize("case,codes,message", LOGITS_ERRORS, ids=[c[0] for c in LOGITS_ERRORS])
def test_logits_graph_refuses_bad_input(bundle: Path, case: str, codes: np.ndarray, message: str) -> None:
    with pytest.raises(Exception) as info:
        session(bundle, "coarse_logits.onnx").run(None, {"codes": codes})
    assert message in str(info.value), f"{case}: {info.value}"


def test_codec_encoder_graph_refuses_bad_audio(bundle: Path) -> None:
    encoder = session(bundle, "codec_encoder.onnx")
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 1, 768 * 4)).astype(F32)
    assert encoder.run(None, {"audio": audio})[0].shape == (1, 14, 4)
    for bad in (np.nan, np.inf, -np.inf):
        broken = audio.copy()
        broken[0, 0, 100] = bad
        with pytest.raises(Exception, match="check_audio_is_finite"):
            encoder.run(None, {"audio": broken})
        with pytest.raises(CodecInputError, match="NaN or infinite"):
            codec_encode(encoder, broken)
    for shape, message in (((1, 3072), "Invalid rank for input: audio"), ((1, 2, 3072), "invalid dimensions"),
                           ((1, 1, 0), "Invalid input shape")):
        with pytest.raises(Exception) as info:
            encoder.run(None, {"audio": np.zeros(shape, F32)})
        assert message in str(info.value), f"{shape}: {info.value}"


def test_codec_decoder_graph_refuses_out_of_range_codes(bundle: Path) -> None:
    decoder = session(bundle, "codec_decoder.onnx")
    for value in (MASK, -1, 10**9):
        codes = zeros(1, 14, 4)
        codes[0, 3, 1] = value
        with pytest.raises(Exception, match="out of data bounds"):
            decoder.run(None, {"codes": codes})
        with pytest.raises(CodecInputError, match="must lie in"):
            codec_decode(decoder, codes)
    with pytest.raises(Exception, match="Invalid rank for input: codes"):
        decoder.run(None, {"codes": zeros(14, 4)})
    with pytest.raises(Exception, match="Invalid input shape"):
        decoder.run(None, {"codes": zeros(1, 14, 0)})


# -- concurrency and leaks of a whole decode ------------------------------------------------------------------


def concurrency_feeds(i: int) -> dict[str, np.ndarray]:
    """Sampling on (temperature 1, top-p, mask temperature), a different seed and input per task."""
    feeds = decode_feeds(b=2, t=24, seed=np.array(100 + i, np.int64), num_steps=np.array(4, np.int64))
    feeds["codes"] = np.random.default_rng(i).integers(0, MASK, (2, 4, 24)).astype(np.int64)
    feeds["mask"][:, :, :6] = 0
    return feeds


def test_decode_shared_session_and_parallel_sessions_match_serial(bundle: Path) -> None:
    path = str(bundle / "coarse.onnx")
    tasks = [concurrency_feeds(i) for i in range(8)]
    serial_session = vampnet_ort.create_session(path, intra_op_threads=1)
    expected = [serial_session.run(None, f)[0] for f in tasks]
    assert len({e.tobytes() for e in expected}) == len(expected)  # the tasks really differ
    shared = vampnet_ort.create_session(path, intra_op_threads=2)
    with ThreadPoolExecutor(4) as pool:
        got_shared = list(pool.map(lambda f: shared.run(None, f)[0], tasks))
    own = [vampnet_ort.create_session(path, intra_op_threads=1 + i % 2) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got_own = list(pool.map(lambda i: [own[i % 4].run(None, tasks[j])[0] for j in range(i, 8, 4)], range(4)))
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(got_shared[i], want)
        np.testing.assert_array_equal(got_own[i % 4][i // 4], want)


RSS_GROWTH_LIMIT = 4 * 1024 * 1024


@pytest.mark.skipif(UNDER_SANITIZER, reason="ASan quarantines freed memory; measured in the plain run")
def test_twenty_decodes_keep_rss_flat(bundle: Path) -> None:
    decoder = vampnet_ort.create_session(str(bundle / "coarse.onnx"), intra_op_threads=2)
    feeds = decode_feeds(b=2, t=64, num_steps=np.array(8, np.int64))
    for i in range(5):  # warm up the allocator arenas
        decoder.run(None, {**feeds, "seed": np.array(i, np.int64)})
    before = rss_bytes()
    for i in range(20):
        decoder.run(None, {**feeds, "seed": np.array(i, np.int64)})
    growth = rss_bytes() - before
    print(f"RSS growth over 20 decodes: {growth / 2**20:.2f} MiB")
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB over 20 decodes"


# -- external data locations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["../../../../../etc/passwd", "/etc/passwd", "symlink"])
def test_external_data_outside_the_model_directory_is_refused(bundle: Path, tmp_path: Path, location: str) -> None:
    shutil.copy(bundle / "coarse.onnx.data", tmp_path / "coarse.onnx.data")
    model = onnx.load(str(bundle / "coarse.onnx"), load_external_data=False)
    if location == "symlink":  # the stored location is harmless but the file links outside the directory
        (tmp_path / "coarse.onnx.data").unlink()
        os.symlink("/etc/passwd", tmp_path / "coarse.onnx.data")
    else:
        tampered = next(t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
        for entry in tampered.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(tmp_path / "coarse.onnx"))
    with pytest.raises(Exception) as info:
        vampnet_ort.create_session(str(tmp_path / "coarse.onnx"))
    message = str(info.value)
    assert "External data path" in message and ("escapes model directory" in message or "Absolute path" in message)


def test_decode_session_options_turn_prepacking_off_and_keep_results(bundle: Path) -> None:
    options = vampnet_ort.decode_session_options(intra_op_threads=1)
    assert options.get_session_config_entry("session.disable_prepacking") == "1"
    lean = vampnet_ort.create_session(str(bundle / "coarse.onnx"), options=options)  # registering twice is a no-op
    feeds = concurrency_feeds(0)
    np.testing.assert_array_equal(lean.run(None, feeds)[0], session(bundle, "coarse.onnx").run(None, feeds)[0])
    via_flag = vampnet_ort.create_session(str(bundle / "coarse.onnx"), disable_prepacking=True)
    np.testing.assert_array_equal(via_flag.run(None, feeds)[0], lean.run(None, feeds)[0])
