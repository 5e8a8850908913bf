"""Mask builders of the vamp pipeline (numpy only; librosa is imported lazily for onset/beat masks).

A mask is an int64 array [B, C, T] (batch, codebooks, frames) with 1 = regenerate, 0 = keep. The deterministic
builders reproduce upstream ``vampnet/mask.py`` exactly (checked against ``golden/masks.npz``). The random ones
(random intensity, periodic roll, dropout) draw from a counter-based generator, ``MaskRng`` (``counter_rng.py``): Philox4x32-10 keyed by
(seed + batch item) with a counter of (frame, codebook, pass, purpose), the same family and keying as the decode
graphs' ``PhiloxUniform``. So item b of a batch seeded s draws exactly what a single run seeded s + b draws, and
any other implementation (the web app's JS port) reproduces the masks bit for bit from the contract in
docs/PIPELINE.md ("Mask random numbers"). Upstream's torch RNG stream is not reproduced.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .counter_rng import (  # noqa: F401  (re-exported)
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_W0,
    PHILOX_W1,
    PURPOSE_DROPOUT,
    PURPOSE_INTENSITY,
    PURPOSE_ROLL,
    MaskRng,
    Shape,
    ShapeLike,
    philox4x32_10,
    shape3,
)
from .errors import MaskError
from .extras import require_librosa
from .options import MAX_INT_OPTION, MAX_SECONDS, MaskOptions  # noqa: F401  (MaskOptions, MAX_*: re-exported)

# Counter-based random numbers: vampnet_ort/counter_rng.py (re-exported here, where the mask builders use them).
_shape = shape3


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 3:
        raise MaskError(f"{name} must be an int array [batch, codebooks, frames]")
    if mask.size and not np.isin(mask, (0, 1)).all():
        raise MaskError(f"{name} must hold only 0 and 1")
    return mask.astype(np.int64, copy=False)


def _check_probability(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise MaskError(f"{name} must be in [0, 1], got {value}")
    return value


def full_mask(template: ShapeLike) -> np.ndarray:
    """All ones: regenerate everything."""
    return np.ones(_shape(template), dtype=np.int64)


def empty_mask(template: ShapeLike) -> np.ndarray:
    """All zeros: keep everything."""
    return np.zeros(_shape(template), dtype=np.int64)


def _check_rng(rng: object, what: str) -> "MaskRng":
    if not isinstance(rng, MaskRng):
        raise MaskError(f"{what} needs a masks.MaskRng (counter-based random numbers), got {type(rng).__name__}")
    return rng


def random_mask(template: ShapeLike, intensity: float, rng: MaskRng) -> np.ndarray:
    """Each position is 1 with probability `intensity` (upstream ``linear_random`` / the app's mask intensity):
    1 where u(PURPOSE_INTENSITY) < intensity."""
    p = _check_probability(intensity, "mask intensity")
    rng = _check_rng(rng, "random_mask")
    shape = _shape(template)
    if p in (0.0, 1.0):  # every u lies strictly inside (0, 1): the draws cannot change the result
        return np.full(shape, int(p), dtype=np.int64)
    return (rng.uniform(PURPOSE_INTENSITY, shape) < p).astype(np.int64)


def inpaint(template: ShapeLike, n_prefix: int, n_suffix: int) -> np.ndarray:
    """Keep (0) the first `n_prefix` and the last `n_suffix` frames, regenerate the rest."""
    if n_prefix < 0 or n_suffix < 0:
        raise MaskError(f"prefix and suffix must be >= 0 frames, got {n_prefix} and {n_suffix}")
    mask = full_mask(template)
    if n_prefix > 0:
        mask[:, :, :n_prefix] = 0
    if n_suffix > 0:
        mask[:, :, -n_suffix:] = 0
    return mask


def periodic_mask(
    template: ShapeLike,
    period: int,
    width: int = 1,
    random_roll: bool = False,
    rng: Optional[MaskRng] = None,
) -> np.ndarray:
    """Keep every `period`-th frame (frames ``j % period == 0``) and ``width // 2`` frames on each side of it.

    As upstream: an even width keeps ``width + 1`` frames; period 0 keeps nothing (all ones), period 1 keeps
    everything. With `random_roll`, each batch item's pattern is rolled right by an offset drawn from
    ``[0, period)``: the item's PURPOSE_ROLL word mod period (needs `rng`).
    """
    period, width = int(period), int(width)
    if period < 0:
        raise MaskError(f"periodic prompt period must be >= 0, got {period}")
    if width < 0:
        raise MaskError(f"periodic prompt width must be >= 0, got {width}")
    mask = full_mask(template)
    if period == 0:
        return mask
    n_frames = mask.shape[-1]
    half = width // 2
    for j in range(0, n_frames, period):
        mask[:, :, max(0, j - half): min(n_frames - 1, j + half) + 1] = 0
    if random_roll:
        if rng is None:
            raise MaskError("periodic_mask(random_roll=True) needs a masks.MaskRng")
        offsets = _check_rng(rng, "periodic_mask").offsets(PURPOSE_ROLL, mask.shape[0], period)
        for b in range(mask.shape[0]):
            mask[b] = np.roll(mask[b], int(offsets[b]), axis=-1)
    return mask


def time_stretch_mask(template: ShapeLike, factor: int) -> np.ndarray:
    """Keep every `factor`-th frame (upstream: ``periodic_mask(x, factor, 1)``)."""
    if int(factor) < 1:
        raise MaskError(f"time stretch factor must be >= 1, got {factor}")
    return periodic_mask(template, int(factor), 1)


def codebook_mask(mask: np.ndarray, upper_codebook: Optional[int]) -> np.ndarray:
    """Regenerate every codebook >= `upper_codebook` (upstream ``codebook_mask``; the app's upper_codebook_mask)."""
    mask = _check_mask(mask).copy()
    if upper_codebook is None:
        return mask
    if int(upper_codebook) < 0:
        raise MaskError(f"upper codebook mask must be >= 0, got {upper_codebook}")
    mask[:, int(upper_codebook):, :] = 1
    return mask


def codebook_unmask(mask: np.ndarray, n_conditioning: Optional[int]) -> np.ndarray:
    """Keep every codebook < `n_conditioning` (upstream ``codebook_unmask``; None leaves the mask as it is)."""
    mask = _check_mask(mask).copy()
    if n_conditioning is None:
        return mask
    if int(n_conditioning) < 0:
        raise MaskError(f"number of conditioning codebooks must be >= 0, got {n_conditioning}")
    mask[:, : int(n_conditioning), :] = 0
    return mask


def mask_and(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Regenerate where both masks regenerate (keeps the union of the kept regions)."""
    a, b = _check_mask(a, "first mask"), _check_mask(b, "second mask")
    if a.shape != b.shape:
        raise MaskError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return (a & b).astype(np.int64)


def mask_or(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Regenerate where either mask regenerates."""
    a, b = _check_mask(a, "first mask"), _check_mask(b, "second mask")
    if a.shape != b.shape:
        raise MaskError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return (a | b).astype(np.int64)


def dropout(mask: np.ndarray, probability: float, rng: MaskRng) -> np.ndarray:
    """Turn each kept position (0) into a regenerated one (1) with `probability` (upstream ``dropout``): 1 where
    the mask is 1 or u(PURPOSE_DROPOUT) < probability."""
    p = _check_probability(probability, "dropout")
    mask = _check_mask(mask)
    rng = _check_rng(rng, "dropout")
    if p == 0.0 or not (mask == 0).any():
        return mask.copy()
    if p == 1.0:
        return np.ones_like(mask)
    return (mask | (rng.uniform(PURPOSE_DROPOUT, mask.shape) < p)).astype(np.int64)


def apply_mask(codes: np.ndarray, mask: np.ndarray, mask_token: int) -> np.ndarray:
    """`codes` with `mask_token` wherever `mask` is 1."""
    mask = _check_mask(mask)
    if codes.shape != mask.shape:
        raise MaskError(f"codes {codes.shape} and mask {mask.shape} differ in shape")
    return np.where(mask == 1, np.int64(mask_token), codes.astype(np.int64))


def stretch(codes: np.ndarray, mask: np.ndarray, factor: int) -> Tuple[np.ndarray, np.ndarray]:
    """Time stretch by an integer `factor`: frame t moves to t * factor, with `factor - 1` regenerated frames
    inserted after it (the codes are repeated there; they are masked, so their value does not matter)."""
    factor = int(factor)
    if factor < 1:
        raise MaskError(f"time stretch factor must be >= 1, got {factor}")
    mask = _check_mask(mask)
    if factor == 1:
        return codes.copy(), mask.copy()
    stretched_codes = np.repeat(codes, factor, axis=-1)
    stretched_mask = mask_or(np.repeat(mask, factor, axis=-1), time_stretch_mask(stretched_codes, factor))
    return stretched_codes, stretched_mask


def seconds_to_frames(seconds: float | np.ndarray, sample_rate: int, hop_length: int):
    """Upstream ``interface.s2t``: ceil(seconds * sample_rate / hop)."""
    if isinstance(seconds, np.ndarray):
        return np.ceil(seconds * sample_rate / hop_length).astype(np.int64)
    return int(math.ceil(float(seconds) * sample_rate / hop_length))


def onset_frames(audio: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
    """Codec-frame indices of the onsets librosa detects in mono `audio` (analysis hop = codec hop)."""
    librosa = require_librosa()
    y = np.ascontiguousarray(audio, dtype=np.float32)
    if y.size < 2 * hop_length or not np.any(y):
        return np.zeros(0, dtype=np.int64)
    frames = librosa.onset.onset_detect(y=y, sr=sample_rate, hop_length=hop_length, units="frames")
    return np.asarray(frames, dtype=np.int64)


def onset_mask(template: ShapeLike, onsets: np.ndarray, width: int) -> np.ndarray:
    """Keep frames ``[onset - width, onset + width)`` around each onset frame (upstream ``onset_mask``), regenerate
    the rest. No onsets -> all ones (keeps nothing extra). The start is clamped at frame 0 (upstream slices with
    a negative start there, which keeps nothing)."""
    width = int(width)
    if width < 1:
        raise MaskError(f"onset mask width must be >= 1 frame, got {width}")
    mask = full_mask(template)
    n_frames = mask.shape[-1]
    for onset in np.asarray(onsets, dtype=np.int64).reshape(-1):
        index = min(max(int(onset), 0), n_frames - 1)
        mask[:, :, max(0, index - width): index + width] = 0
    return mask


def beat_times(audio: np.ndarray, sample_rate: int, hop_length: int, beats_per_bar: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """(beat times, downbeat times) in seconds from librosa's beat tracker.

    Upstream uses the WaveBeat model, whose weights are not available; librosa gives beats but no downbeats, so
    every `beats_per_bar`-th beat starting at the first one is taken as a downbeat (an approximation).
    """
    librosa = require_librosa()
    y = np.ascontiguousarray(audio, dtype=np.float32)
    if y.size < 2 * hop_length or not np.any(y):
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty
    _, beats = librosa.beat.beat_track(y=y, sr=sample_rate, hop_length=hop_length, units="time")
    beats = np.asarray(beats, dtype=np.float64).reshape(-1)
    return beats, beats[:: max(1, int(beats_per_bar))]


def beat_mask(
    template: ShapeLike,
    beats_s: np.ndarray,
    downbeats_s: np.ndarray,
    sample_rate: int,
    hop_length: int,
    *,
    before_beat_s: float = 0.0,
    after_beat_s: float = 0.02,
    keep_upbeats: bool = True,
    keep_downbeats: bool = True,
) -> np.ndarray:
    """Keep frames ``[beat - s2t(before), beat + s2t(after))`` around each beat (upstream ``make_beat_mask`` with
    invert=True), regenerate the rest. `keep_upbeats=False` keeps only downbeats (the app's "downbeats only")."""
    if before_beat_s < 0 or after_beat_s < 0:
        raise MaskError("beat mask widths must be >= 0 seconds")
    mask = full_mask(template)
    beats_z = seconds_to_frames(np.asarray(beats_s, dtype=np.float64), sample_rate, hop_length)
    downbeats_z = seconds_to_frames(np.asarray(downbeats_s, dtype=np.float64), sample_rate, hop_length)
    upbeats_z = beats_z[~np.isin(beats_z, downbeats_z)]
    before = seconds_to_frames(before_beat_s, sample_rate, hop_length)
    after = seconds_to_frames(after_beat_s, sample_rate, hop_length)
    selected = []
    if keep_upbeats:
        selected.extend(upbeats_z.tolist())
    if keep_downbeats:
        selected.extend(downbeats_z.tolist())
    for beat in selected:
        start, stop = max(0, int(beat) - before), int(beat) + after
        mask[:, :, start:stop] = 0
    return mask


def build_mask(
    options: MaskOptions,
    template: ShapeLike,
    rng: MaskRng,
    *,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 44100,
    hop_length: int = 768,
    onsets: Optional[np.ndarray] = None,
    beats: Optional[Tuple[np.ndarray, np.ndarray]] = None,
) -> np.ndarray:
    """The upstream app's mask recipe, in its order: random(intensity) AND inpaint(prefix, suffix) AND periodic
    prompt (random roll), AND onset mask, AND beat mask, then dropout, conditioning unmask, upper codebook mask.

    `audio` (mono, at `sample_rate`) is needed only for onset and beat masks, unless their analysis is given
    precomputed: `onsets` (frame indices) and `beats` ((beat times, downbeat times) in seconds).
    """
    shape = _shape(template)
    options.validate(shape[1])  # the model-dependent checks (the rest ran when `options` was built)
    mask = random_mask(shape, options.intensity, rng)
    mask = mask_and(
        mask,
        inpaint(shape, seconds_to_frames(options.prefix_s, sample_rate, hop_length),
                seconds_to_frames(options.suffix_s, sample_rate, hop_length)),
    )
    mask = mask_and(
        mask,
        periodic_mask(shape, options.periodic_period, options.periodic_width,
                      random_roll=options.periodic_random_roll, rng=rng),
    )
    if audio is None and ((options.onset_width > 0 and onsets is None) or (options.beat_width_ms > 0 and beats is None)):
        raise MaskError("onset and beat masks need the input audio")
    if options.onset_width > 0:
        if onsets is None:
            onsets = onset_frames(audio, sample_rate, hop_length)  # type: ignore[arg-type]
        mask = mask_and(mask, onset_mask(shape, onsets, options.onset_width))
    if options.beat_width_ms > 0:
        if beats is None:
            beats = beat_times(audio, sample_rate, hop_length)  # type: ignore[arg-type]
        beat_s, downbeats = beats
        mask = mask_and(
            mask,
            beat_mask(shape, beat_s, downbeats, sample_rate, hop_length,
                      after_beat_s=options.beat_width_ms / 1000.0,
                      keep_upbeats=not options.beat_downbeats_only),
        )
    mask = dropout(mask, options.dropout, rng)
    mask = codebook_unmask(mask, options.n_conditioning_codebooks)
    mask = codebook_mask(mask, options.upper_codebook_mask)
    return mask
