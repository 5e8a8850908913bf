"""Mask builders: exact agreement with upstream (golden/masks.npz) and properties of the random ones."""

from __future__ import annotations

import numpy as np
import pytest

from op_testing import golden
from test_philox_uniform import KAT, philox_block
from vampnet_ort import masks

G = golden("masks.npz")
X = G["x"]


@pytest.mark.parametrize("prefix,suffix", [(5, 7), (0, 7), (5, 0)])
def test_inpaint_matches_upstream(prefix: int, suffix: int) -> None:
    np.testing.assert_array_equal(masks.inpaint(X, prefix, suffix), G[f"inpaint_{prefix}_{suffix}"])


@pytest.mark.parametrize("period,width", [(7, 1), (7, 3), (7, 2), (0, 1), (1, 1), (10, 5)])
def test_periodic_matches_upstream(period: int, width: int) -> None:
    np.testing.assert_array_equal(masks.periodic_mask(X, period, width), G[f"periodic_{period}_{width}"])


def test_codebook_mask_and_unmask_match_upstream() -> None:
    base = G["periodic_7_1"]
    np.testing.assert_array_equal(masks.codebook_mask(base, 3), G["codebook_mask_3"])
    np.testing.assert_array_equal(masks.codebook_unmask(base, 4), G["codebook_unmask_4"])
    np.testing.assert_array_equal(masks.codebook_unmask(base, None), G["codebook_unmask_none"])


def test_and_or_apply_match_upstream() -> None:
    np.testing.assert_array_equal(masks.mask_and(G["inpaint_5_7"], G["periodic_7_1"]), G["mask_and"])
    np.testing.assert_array_equal(masks.mask_or(G["inpaint_5_7"], G["codebook_unmask_4"]), G["mask_or"])
    np.testing.assert_array_equal(masks.apply_mask(X, G["mask_and"], 1024), G["apply_mask_out"])


@pytest.mark.parametrize("factor", [2, 3])
def test_time_stretch_mask_matches_upstream(factor: int) -> None:
    np.testing.assert_array_equal(masks.time_stretch_mask(X, factor), G[f"time_stretch_{factor}"])


def test_random_roll_rolls_each_item_and_is_seeded() -> None:
    shape = (3, 4, 50)
    a = masks.periodic_mask(shape, 7, 1, random_roll=True, rng=masks.MaskRng(5))
    b = masks.periodic_mask(shape, 7, 1, random_roll=True, rng=masks.MaskRng(5))
    np.testing.assert_array_equal(a, b)
    base = masks.periodic_mask(shape, 7, 1)[0]
    for b_index, item in enumerate(a):  # item b: the unrolled pattern rolled by its Philox word mod 7
        word = philox_block((0, 0, 0, masks.PURPOSE_ROLL), _key(5 + b_index))[0]
        np.testing.assert_array_equal(item, np.roll(base, word % 7, axis=-1))
    with pytest.raises(masks.MaskError):
        masks.periodic_mask(shape, 7, 1, random_roll=True)
    with pytest.raises(masks.MaskError, match="MaskRng"):
        masks.periodic_mask(shape, 7, 1, random_roll=True, rng=np.random.default_rng(0))  # type: ignore[arg-type]


def _key(seed: int) -> tuple[int, int]:
    bits = seed & 0xFFFFFFFFFFFFFFFF
    return bits & 0xFFFFFFFF, bits >> 32


def test_mask_rng_matches_plain_python_philox_and_keys_items_by_seed_plus_b() -> None:
    """MaskRng == the independent pure-Python Philox4x32-10 of test_philox_uniform (checked there against the
    Random123 known answers), with the documented counter (t, c, pass, purpose) and key seed + b."""
    for seed, pass_index in [(0, 0), (-1, 2), (2**63 - 1, 1), (123456789012, 0)]:
        rng = masks.MaskRng(seed, pass_index)
        u = rng.uniform(masks.PURPOSE_DROPOUT, (3, 2, 5))
        for b in range(3):
            for c in range(2):
                for t in range(5):
                    word = philox_block((t, c, pass_index, masks.PURPOSE_DROPOUT), _key(seed + b))[0]
                    assert u[b, c, t] == ((word >> 9) + 0.5) / 2.0**23
        # item b of a batch == item 0 of a batch seeded seed + b (wrap-around at 2^63 included)
        alone = masks.MaskRng((seed + 2 + 2**63) % 2**64 - 2**63, pass_index).uniform(masks.PURPOSE_DROPOUT, (1, 2, 5))
        np.testing.assert_array_equal(u[2:3], alone)
    for counter, key, expected in KAT:
        got = masks.philox4x32_10([np.uint64(v) for v in counter], [np.uint64(v) for v in key])
        assert tuple(int(w) for w in got) == expected
    with pytest.raises(masks.MaskError, match="seed"):
        masks.MaskRng(2**63)


def test_random_mask_intensity() -> None:
    rng = masks.MaskRng(0)
    m = masks.random_mask((2, 14, 2000), 0.3, rng)
    assert set(np.unique(m)) <= {0, 1}
    assert abs(m.mean() - 0.3) < 0.01
    assert masks.random_mask((1, 2, 10), 1.0, rng).all()
    assert not masks.random_mask((1, 2, 10), 0.0, rng).any()
    with pytest.raises(masks.MaskError, match="intensity"):
        masks.random_mask((1, 2, 3), 1.5, rng)


def test_dropout_only_turns_kept_into_regenerated() -> None:
    rng = masks.MaskRng(1)
    base = masks.periodic_mask((1, 4, 4000), 2, 1)  # half kept
    out = masks.dropout(base, 0.25, rng)
    assert (out >= base).all()
    kept_before = base == 0
    assert abs(out[kept_before].mean() - 0.25) < 0.02
    np.testing.assert_array_equal(masks.dropout(base, 0.0, rng), base)
    assert masks.dropout(base, 1.0, rng).all()


def test_stretch_inserts_masked_frames() -> None:
    codes = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    mask = np.zeros((2, 3, 5), dtype=np.int64)
    mask[:, :, 2] = 1
    s_codes, s_mask = masks.stretch(codes, mask, 3)
    assert s_codes.shape == s_mask.shape == (2, 3, 15)
    np.testing.assert_array_equal(s_codes[:, :, ::3], codes)
    np.testing.assert_array_equal(s_mask[:, :, ::3], mask)
    assert s_mask[:, :, 1::3].all() and s_mask[:, :, 2::3].all()


def test_onset_mask_keeps_frames_around_onsets() -> None:
    m = masks.onset_mask((1, 2, 20), np.array([0, 5, 19, 40]), width=2)
    expected = np.ones(20, dtype=np.int64)
    for start, stop in [(0, 2), (3, 7), (17, 21)]:
        expected[start:stop] = 0
    np.testing.assert_array_equal(m[0, 0], expected)
    np.testing.assert_array_equal(m[0, 1], expected)
    assert masks.onset_mask((1, 2, 20), np.array([], dtype=np.int64), 1).all()


def test_onset_detection_finds_clicks() -> None:
    sr, hop = 44100, 768
    audio = np.zeros(sr * 2, dtype=np.float32)
    click_frames = [10, 40, 80]
    for f in click_frames:
        audio[f * hop: f * hop + 200] = np.hanning(200) * np.sin(np.arange(200) * 0.5)
    found = masks.onset_frames(audio, sr, hop)
    for f in click_frames:
        assert np.min(np.abs(found - f)) <= 2, (found, f)


def test_beat_mask_from_times() -> None:
    sr, hop = 44100, 768
    beats = np.array([0.5, 1.0, 1.5, 2.0])
    downbeats = np.array([0.5, 2.0])
    m = masks.beat_mask((1, 1, 200), beats, downbeats, sr, hop, after_beat_s=0.02)
    kept = np.flatnonzero(m[0, 0] == 0)
    starts = [int(np.ceil(b * sr / hop)) for b in beats]
    assert kept.tolist() == sorted(s + k for s in starts for k in range(2))
    down = masks.beat_mask((1, 1, 200), beats, downbeats, sr, hop, after_beat_s=0.02, keep_upbeats=False)
    kept_down = np.flatnonzero(down[0, 0] == 0)
    assert kept_down.tolist() == sorted(int(np.ceil(b * sr / hop)) + k for b in downbeats for k in range(2))


def test_beat_tracking_on_click_track() -> None:
    sr, hop = 44100, 768
    rng = np.random.default_rng(0)
    audio = 0.01 * rng.standard_normal(sr * 8).astype(np.float32)
    period = int(0.5 * sr)  # 120 bpm: decaying noise bursts
    for start in range(0, audio.size - 4000, period):
        audio[start: start + 4000] += (np.exp(-np.arange(4000) / 800) * rng.standard_normal(4000)).astype(np.float32)
    beats, downbeats = masks.beat_times(audio, sr, hop)
    assert len(beats) >= 6
    assert np.median(np.diff(beats)) == pytest.approx(0.5, abs=0.05)
    np.testing.assert_array_equal(downbeats, beats[::4])


def test_build_mask_follows_app_recipe() -> None:
    rng = masks.MaskRng(0)
    opts = masks.MaskOptions(prefix_s=0.1, suffix_s=0.1, periodic_period=5, periodic_random_roll=False,
                             upper_codebook_mask=3)
    m = masks.build_mask(opts, (1, 14, 60), rng)
    expected = masks.mask_and(masks.inpaint((1, 14, 60), 6, 6), masks.periodic_mask((1, 14, 60), 5, 1))
    expected = masks.codebook_mask(expected, 3)
    np.testing.assert_array_equal(m, expected)
    with pytest.raises(masks.MaskError, match="upper codebook"):
        masks.build_mask(masks.MaskOptions(upper_codebook_mask=15), (1, 14, 10), rng)
    with pytest.raises(masks.MaskError, match="dropout"):
        masks.build_mask(masks.MaskOptions(dropout=-0.1), (1, 14, 10), rng)
    with pytest.raises(masks.MaskError, match="period"):
        masks.build_mask(masks.MaskOptions(periodic_period=-1), (1, 14, 10), rng)


def test_build_mask_with_onsets_and_beats_adds_kept_regions() -> None:
    rng = masks.MaskRng(0)
    shape = (1, 14, 100)
    opts = masks.MaskOptions(periodic_period=0, onset_width=2, beat_width_ms=30.0, upper_codebook_mask=3)
    beats = (np.array([0.5, 1.0]), np.array([0.5]))
    m = masks.build_mask(opts, shape, rng, onsets=np.array([10, 60]), beats=beats)
    expected = masks.mask_and(masks.onset_mask(shape, np.array([10, 60]), 2),
                              masks.beat_mask(shape, beats[0], beats[1], 44100, 768, after_beat_s=0.03))
    np.testing.assert_array_equal(m, masks.codebook_mask(expected, 3))
    kept = np.flatnonzero(m[0, 0] == 0).tolist()
    # onsets 10, 60 +- 2 -> [8, 12), [58, 62); beats ceil(0.5 * 44100 / 768) = 29, ceil(1.0 * ...) = 58, 2 frames each
    assert kept == [8, 9, 10, 11, 29, 30, 58, 59, 60, 61]
    with pytest.raises(masks.MaskError, match="need the input audio"):
        masks.build_mask(masks.MaskOptions(onset_width=1), shape, rng)
