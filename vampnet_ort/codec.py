"""Chunked codec inference on ONNX Runtime sessions: audio of any length in bounded memory.

``encode(session, audio)`` runs ``codec_encoder.onnx`` and ``decode(session, codes)`` runs ``codec_decoder.onnx``
over overlapping chunks. Each chunk is cut with enough context on both sides (the receptive field computed from the
codec config stored in the model, see ``codec_geometry.input_span``) that the part kept from it depends only on
real input, never on the chunk's zero padding; chunk starts are multiples of hop_length, so every strided conv
samples the same grid as in one unchunked run. The result therefore equals the unchunked one up to float rounding
inside the convolutions: codes exactly (their decision margins are far above rounding), audio to ~1e-6.
"""

from __future__ import annotations

import json
from typing import Iterator

import numpy as np
import onnxruntime as ort

from .codec_geometry import CodecConfig, chunk_geometry, decoder_plan, encoder_plan, input_span, output_length

DEFAULT_ENCODE_CHUNK_SECONDS = 10.0
DEFAULT_DECODE_CHUNK_FRAMES = 512


class CodecInputError(ValueError):
    """Audio or codes that the codec cannot process."""


def session_config(session: ort.InferenceSession) -> CodecConfig:
    """The codec config a codec graph carries in its metadata (``codec_config``)."""
    meta = session.get_modelmeta().custom_metadata_map
    if "codec_config" not in meta:
        raise CodecInputError("this session's model has no 'codec_config' metadata; is it a vampnet-ort codec graph?")
    return CodecConfig.from_kwargs(json.loads(meta["codec_config"]))


def num_frames(config: CodecConfig, num_samples: int) -> int:
    """Frames the encoder makes from `num_samples` (right-padded to a multiple of hop_length first)."""
    hop = config.hop_length
    padded = -(-num_samples // hop) * hop
    return output_length(encoder_plan(config), padded)


def num_samples(config: CodecConfig, frames: int) -> int:
    """Samples the decoder makes from `frames` code frames."""
    return output_length(decoder_plan(config), frames)


def encode_chunk_frames(config: CodecConfig, chunk_seconds: float = DEFAULT_ENCODE_CHUNK_SECONDS) -> int:
    """Frames per encoder chunk (context excluded) for `chunk_seconds` of audio."""
    return max(1, int(round(chunk_seconds * config.sample_rate / config.hop_length)))


def geometry(config: CodecConfig) -> dict[str, int]:
    """``codec_geometry.chunk_geometry`` plus the default chunk sizes of ``encode`` / ``decode``: everything another
    implementation needs to chunk exactly as this module does (vampnet.json ``codec.geometry``; docs/PIPELINE.md)."""
    return {**chunk_geometry(config), "encode_chunk_frames": encode_chunk_frames(config),
            "decode_chunk_frames": DEFAULT_DECODE_CHUNK_FRAMES}


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def encode_chunks(config: CodecConfig, n: int, chunk: int) -> list[tuple[int, int, int, int]]:
    """The chunked encode of `n` samples: (f0, f1, start, stop) per chunk, frames [f0, f1) kept from the codes of
    audio[start:stop] (start, stop multiples of hop_length, clamped to the signal)."""
    hop, plan = config.hop_length, encoder_plan(config)
    chunks = []
    for f0, f1 in _chunks(num_frames(config, n), chunk):
        lo, hi = input_span(plan, f0, f1 - 1)
        chunks.append((f0, f1, max(0, lo) // hop * hop, min(n, -(-(hi + 1) // hop) * hop)))
    return chunks


def decode_chunks(config: CodecConfig, total: int, chunk: int) -> list[tuple[int, int, int, int, int, int]]:
    """The chunked decode of `total` frames: (f0, f1, g0, g1, s0, s1) per chunk, output samples [s0, s1) kept from
    the decode of frames [g0, g1) (the chunk [f0, f1) with its context)."""
    plan, hop = decoder_plan(config), config.decoder_hop
    out_total = output_length(plan, total)
    chunks = []
    for f0, f1 in _chunks(total, chunk):
        s0 = f0 * hop
        s1 = out_total if f1 == total else f1 * hop
        lo, hi = input_span(plan, s0, s1 - 1)
        chunks.append((f0, f1, max(0, lo), min(total, hi + 1), s0, s1))
    return chunks


def _as_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None, None, :]
    if audio.ndim != 3 or audio.shape[1] != 1:
        raise CodecInputError(f"audio must have shape [B, 1, N] or [N] (mono), got {list(audio.shape)}")
    if audio.shape[0] < 1 or audio.shape[2] < 1:
        raise CodecInputError(f"audio is empty (shape {list(audio.shape)})")
    if not np.issubdtype(audio.dtype, np.floating):
        raise CodecInputError(f"audio must be floating point, got {audio.dtype}")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        raise CodecInputError("audio holds NaN or infinite samples")
    return audio


def _run(session: ort.InferenceSession, names: list[str], feeds: dict,
         run_options: ort.RunOptions | None) -> np.ndarray:
    """The first output of one run (``run_options`` only when given: session stand-ins take two arguments)."""
    if run_options is None:
        return session.run(names, feeds)[0]
    return session.run(names, feeds, run_options)[0]


def encode(session: ort.InferenceSession, audio: np.ndarray,
           chunk_seconds: float | None = DEFAULT_ENCODE_CHUNK_SECONDS,
           run_options: ort.RunOptions | None = None) -> np.ndarray:
    """audio float [B, 1, N] (or [N]) -> codes int64 [B, n_codebooks, ceil-ish(N / hop)] via ``codec_encoder.onnx``.

    ``chunk_seconds`` bounds the audio per run (None: one run). Codes equal the unchunked run exactly.
    ``run_options`` go to every run (``terminate`` on them stops the encode).
    """
    config = session_config(session)
    audio = _as_audio(audio)
    hop, n = config.hop_length, audio.shape[2]
    total = num_frames(config, n)
    if total < 1:
        raise CodecInputError(f"{n} samples are too short for this codec (it makes no frame from them)")
    if chunk_seconds is None:
        return _run(session, ["codes"], {"audio": audio}, run_options)
    if not chunk_seconds > 0:
        raise CodecInputError(f"chunk_seconds must be > 0, got {chunk_seconds}")
    parts = []
    for f0, f1, start, stop in encode_chunks(config, n, encode_chunk_frames(config, chunk_seconds)):
        codes = _run(session, ["codes"], {"audio": audio[:, :, start:stop]}, run_options)
        offset = start // hop
        if codes.shape[2] < f1 - offset:  # cannot happen with upstream arithmetic; guards the seam logic
            raise RuntimeError(f"chunked encode: chunk [{start}, {stop}) gave {codes.shape[2]} frames, "
                               f"needed {f1 - offset}")
        parts.append(codes[:, :, f0 - offset:f1 - offset])
    return np.concatenate(parts, axis=2)


def _as_codes(codes: np.ndarray, config: CodecConfig) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 3:
        raise CodecInputError(f"codes must have shape [B, n_codebooks, T], got {list(codes.shape)}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise CodecInputError(f"codes must be integers, got {codes.dtype}")
    b, c, t = codes.shape
    if b < 1 or t < 1 or not 1 <= c <= config.n_codebooks:
        raise CodecInputError(
            f"codes must have shape [B >= 1, 1..{config.n_codebooks}, T >= 1], got {list(codes.shape)}")
    bad = (codes < 0) | (codes >= config.codebook_size)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CodecInputError(
            f"codes must lie in [0, {config.codebook_size}); found {int(codes[where])} at {list(where)} "
            f"(replace MASK = {config.codebook_size} by 0 before decoding)")
    return np.ascontiguousarray(codes, dtype=np.int64)


def decode(session: ort.InferenceSession, codes: np.ndarray,
           chunk_frames: int | None = DEFAULT_DECODE_CHUNK_FRAMES,
           run_options: ort.RunOptions | None = None) -> np.ndarray:
    """codes int64 [B, C, T] -> audio float [B, 1, N'] via ``codec_decoder.onnx``.

    ``chunk_frames`` bounds the frames decoded per run, context excluded (None: one run). Audio equals the unchunked
    run to float rounding (max abs difference ~1e-6; tests assert 1e-5). ``run_options`` go to every run.
    """
    config = session_config(session)
    codes = _as_codes(codes, config)
    total = codes.shape[2]
    if chunk_frames is None:
        return _run(session, ["audio"], {"codes": codes}, run_options)
    if int(chunk_frames) < 1:
        raise CodecInputError(f"chunk_frames must be >= 1, got {chunk_frames}")
    hop = config.decoder_hop
    parts = []
    for f0, f1, g0, g1, s0, s1 in decode_chunks(config, total, int(chunk_frames)):
        audio = _run(session, ["audio"], {"codes": codes[:, :, g0:g1]}, run_options)
        offset = g0 * hop
        if audio.shape[2] < s1 - offset:  # cannot happen with upstream arithmetic; guards the seam logic
            raise RuntimeError(f"chunked decode: frames [{g0}, {g1}) gave {audio.shape[2]} samples, "
                               f"needed {s1 - offset}")
        parts.append(audio[:, :, s0 - offset:s1 - offset])
    return np.concatenate(parts, axis=2)
