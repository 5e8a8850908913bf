"""Audio in and out of the vamp pipeline: read, resample, mono, loudness, pad, restore, trim, write atomically.

Reading and writing use soundfile (libsndfile: wav, flac, ogg/vorbis, aiff, ... in int and float formats, any
channel count); resampling uses soxr (VHQ); loudness uses pyloudnorm (ITU-R BS.1770, as audiotools does).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from .fileio import atomic_output, temporary_sibling
from .paths import PathError, check_input_file

PathLike = Union[str, os.PathLike]

TARGET_LOUDNESS_LUFS = -24.0
MIN_LOUDNESS_LUFS = -70.0  # audiotools' floor: silence measures as -70 LUFS, never -inf
_LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating block; shorter signals are zero-padded for the measurement


class AudioError(ValueError):
    """An audio file that cannot be read or written, or samples that cannot be processed."""


def _soundfile():
    import soundfile

    return soundfile


@dataclass(frozen=True)
class InputLimits:
    """What one input file may hold. Checked from the file's header (libsndfile's frame count, rate and channel
    count) before a single sample is decoded, so a tiny file cannot expand into gigabytes: a 1 kB WAV declaring
    1 Hz is refused by its rate, and one declaring hours by its duration. The decoded samples (frames x channels,
    float32) are then bounded by ``max_samples``; the pipeline's own memory grows with the duration (docs/PIPELINE.md,
    "Limits")."""

    max_seconds: float = 600.0
    min_sample_rate: int = 4000  # below it a file holds nothing a 44.1 kHz music codec can use
    max_sample_rate: int = 768_000
    max_channels: int = 64
    max_samples: int = 1 << 27  # frames x channels: 512 MiB as float32 (10 min of 96 kHz stereo fits)

    def check(self, where: str, frames: int, sample_rate: int, channels: int) -> None:
        """AudioError naming the limit `where` (a file name) exceeds; nothing when it fits."""
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise AudioError(f"{where}: sample rate {sample_rate} Hz is outside the supported "
                             f"{self.min_sample_rate}..{self.max_sample_rate} Hz")
        if not 1 <= channels <= self.max_channels:
            raise AudioError(f"{where}: {channels} channels; at most {self.max_channels} are supported")
        seconds = frames / sample_rate
        if seconds > self.max_seconds:
            raise AudioError(f"{where}: {seconds:.1f} s of audio is longer than the limit of {self.max_seconds:g} s "
                             "(cut the file, or vamp it in parts)")
        if frames * channels > self.max_samples:
            raise AudioError(f"{where}: {frames} frames x {channels} channels exceed the limit of {self.max_samples} "
                             "decoded samples (use fewer channels, a lower rate or a shorter file)")


DEFAULT_INPUT_LIMITS = InputLimits()
# All outputs of one run together (variations x duration x time stretch) are held in memory as float32 before
# they are written: one hour at 44.1 kHz is 635 MB.
MAX_OUTPUT_SECONDS = 3600.0


def check_output_duration(input_seconds: float, variations: int, time_stretch: int) -> None:
    """AudioError when one run's outputs together would exceed MAX_OUTPUT_SECONDS."""
    total = float(input_seconds) * int(variations) * int(time_stretch)
    if total > MAX_OUTPUT_SECONDS:
        raise AudioError(f"{variations} variation(s) x {input_seconds:.1f} s x time stretch {time_stretch} = "
                         f"{total:.0f} s of output in one run; the limit is {MAX_OUTPUT_SECONDS:g} s (use fewer "
                         "variations, a smaller stretch or a shorter input)")


READ_BLOCK_FRAMES = 1 << 16


def check_input_header(path: PathLike, limits: Optional[InputLimits] = DEFAULT_INPUT_LIMITS, *,
                       variations: int = 1, time_stretch: int = 1) -> None:
    """`limits` and one run's output bound checked from the header alone (``soundfile.info``), before any model is
    loaded (``pipeline.plan_file``). A header libsndfile cannot read passes: ``read_audio`` then says why."""
    try:
        info = _soundfile().info(str(path))
        frames, rate, channels = int(info.frames), int(info.samplerate), int(info.channels)
    except Exception:  # unreadable or unsupported: read_audio reports it in its own words
        return
    if rate <= 0 or frames <= 0:
        return
    if limits is not None:
        limits.check(str(path), frames, rate, channels)
    check_output_duration(frames / rate, variations, time_stretch)


def read_audio(path: PathLike, limits: Optional[InputLimits] = DEFAULT_INPUT_LIMITS, *,
               checked: bool = False) -> Tuple[np.ndarray, int]:
    """Samples float32 [channels, frames] in [-1, 1] (int formats scaled), all finite, and the sample rate of `path`.

    Anything but a regular file (a FIFO, a device, a socket, a directory) is refused before it is opened
    (`checked`: the caller has just done that check, ``pipeline.plan_file``); the header is checked against
    `limits` (None: no limits) before any sample is decoded, and the samples are then decoded block by block into
    one [channels, frames] array (no second, transposed copy)."""
    sf = _soundfile()
    p = Path(path)
    if not checked:
        try:
            check_input_file(p, "input audio")
        except PathError as exc:
            raise AudioError(str(exc)) from None
    frames = channels = done = 0
    try:
        with sf.SoundFile(str(p)) as handle:
            frames, sample_rate, channels = int(handle.frames), int(handle.samplerate), int(handle.channels)
            if sample_rate <= 0:
                raise AudioError(f"{p}: invalid sample rate {sample_rate}")
            if frames <= 0:
                raise AudioError(f"{p}: the file holds no audio samples")
            if limits is not None:
                limits.check(str(p), frames, sample_rate, channels)
            data = np.empty((channels, frames), dtype=np.float32)
            done = 0
            while done < frames:
                block = handle.read(min(READ_BLOCK_FRAMES, frames - done), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break  # the file is shorter than its header says: keep what is there
                if not np.isfinite(block).all():
                    raise AudioError(f"{p}: the audio contains NaN or infinite samples")
                data[:, done: done + block.shape[0]] = block.T
                done += block.shape[0]
    except AudioError:
        raise
    except sf.LibsndfileError as exc:
        # error_string: libsndfile's reason alone (str(exc) repeats the path: "Error opening '<path>': ...")
        message = str(getattr(exc, "error_string", "") or exc).strip()
        if "Format not recognised" in message or "unknown format" in message.lower() or "supported" in message:
            raise AudioError(
                f"{p}: unsupported or unrecognised audio format (readable: {', '.join(supported_formats())})"
            ) from None
        reason = message.splitlines()[0].replace(str(p), "the file") if message else "libsndfile error"
        raise AudioError(f"{p}: cannot read audio ({reason})") from None
    except MemoryError:
        raise AudioError(f"{p}: not enough memory to decode {frames} frames x {channels} channels") from None
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        raise AudioError(f"{p}: cannot read audio ({type(exc).__name__}: {exc})") from None
    if done == 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    return (data if done == frames else np.ascontiguousarray(data[:, :done])), sample_rate


def supported_formats() -> list[str]:
    """File extensions soundfile can read and write here (lower case)."""
    return sorted(ext.lower() for ext in _soundfile().available_formats())


@dataclass(frozen=True)
class OutputFormat:
    """How one output extension is written (libsndfile major format and subtype) and its rate limit."""

    extension: str
    format: str
    subtype: str
    max_sample_rate: int


# Exactly what write_audio writes; every other extension is refused before any work. libvorbis crashed
# (SIGSEGV) encoding above 192 kHz, so .ogg stops there; FLAC streams hold at most 655350 Hz.
OUTPUT_FORMATS = {
    ".wav": OutputFormat(".wav", "WAV", "PCM_16", 768_000),
    ".flac": OutputFormat(".flac", "FLAC", "PCM_16", 655_350),
    ".ogg": OutputFormat(".ogg", "OGG", "VORBIS", 192_000),
}
# Frames per SoundFile.write call: libvorbis overflowed its stack (SIGSEGV) when libsndfile handed it a whole
# long clip (about 30 s and more) in one call.
WRITE_BLOCK_FRAMES = 1 << 15


def output_format(path: PathLike, sample_rate: Optional[int] = None) -> OutputFormat:
    """The OutputFormat of `path`'s extension (AudioError naming exactly the supported ones otherwise), checked
    against `sample_rate` when given."""
    suffix = Path(path).suffix.lower()
    fmt = OUTPUT_FORMATS.get(suffix)
    if fmt is None:
        shown = f"'{Path(path).suffix}'" if suffix else "none"
        raise AudioError(f"{path}: cannot write audio with extension {shown} (supported: {', '.join(OUTPUT_FORMATS)})")
    if sample_rate is not None and not 1 <= int(sample_rate) <= fmt.max_sample_rate:
        raise AudioError(
            f"{path}: {fmt.extension} output supports sample rates from 1 to {fmt.max_sample_rate} Hz, got {sample_rate}"
        )
    return fmt


def check_writable_format(path: PathLike) -> str:
    """The libsndfile format name for `path`'s extension; AudioError when it is missing or unsupported."""
    return output_format(path).format


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Mean over channels: [channels, frames] -> [frames]."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=0, dtype=np.float64).astype(np.float32)


def resample(samples: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Resample [..., frames] with soxr (very high quality)."""
    if int(sample_rate) == int(target_rate):
        return samples.astype(np.float32, copy=False)
    import soxr

    x = np.ascontiguousarray(samples.T if samples.ndim == 2 else samples, dtype=np.float32)
    y = soxr.resample(x, int(sample_rate), int(target_rate), quality="VHQ")
    return np.ascontiguousarray(y.T if samples.ndim == 2 else y, dtype=np.float32)


def loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of mono `samples`, floored at -70 LUFS (silence)."""
    import pyloudnorm

    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    min_len = int(np.ceil(_LOUDNESS_BLOCK_S * sample_rate)) + 1
    if x.size < min_len:
        x = np.pad(x, (0, min_len - x.size))
    value = pyloudnorm.Meter(int(sample_rate)).integrated_loudness(x)
    if not np.isfinite(value):
        return MIN_LOUDNESS_LUFS
    return max(float(value), MIN_LOUDNESS_LUFS)


def set_loudness(samples: np.ndarray, sample_rate: int, target_lufs: float, current_lufs: float | None = None) -> np.ndarray:
    """`samples` scaled to `target_lufs` (silence stays silent)."""
    if current_lufs is None:
        current_lufs = loudness(samples, sample_rate)
    gain = 10.0 ** ((float(target_lufs) - float(current_lufs)) / 20.0)
    return (samples.astype(np.float64) * gain).astype(np.float32)


def limit_peak(samples: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Scale down so that max |x| <= `peak` (audiotools ``ensure_max_of_audio``)."""
    current = float(np.max(np.abs(samples))) if samples.size else 0.0
    if current > peak:
        return (samples * (peak / current)).astype(np.float32)
    return samples.astype(np.float32, copy=False)


@dataclass
class PreparedAudio:
    """Model-ready audio and what is needed to undo the preprocessing."""

    samples: np.ndarray  # float32 [frames], mono, at the codec rate, -24 LUFS, |x| <= 1, length a multiple of hop
    sample_rate: int  # the codec's rate
    length: int  # frames before padding (the output is trimmed to this, times any time-stretch factor)
    input_loudness: float  # LUFS of the mono resampled input, restored on the output
    input_sample_rate: int
    input_channels: int


def prepare(samples: np.ndarray, sample_rate: int, target_rate: int, hop_length: int,
            limits: Optional[InputLimits] = DEFAULT_INPUT_LIMITS) -> PreparedAudio:
    """Upstream preprocessing: resample, mono, loudness -24 LUFS, peak <= 1, right-pad with zeros to a multiple of hop.

    `limits` (None: none) are checked before resampling, so samples at 1 Hz never expand to minutes at the codec
    rate."""
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise AudioError("expected samples [channels, frames] with at least one frame")
    if limits is not None:
        limits.check("input audio", int(samples.shape[1]), int(sample_rate), int(samples.shape[0]))
    mono = to_mono(resample(samples, sample_rate, target_rate))
    if mono.size == 0:
        raise AudioError("the audio is too short to resample to the codec's sample rate")
    input_lufs = loudness(mono, target_rate)
    normalized = limit_peak(set_loudness(mono, target_rate, TARGET_LOUDNESS_LUFS, input_lufs))
    length = int(normalized.size)
    padded_length = -(-length // hop_length) * hop_length
    padded = np.pad(normalized, (0, padded_length - length))
    return PreparedAudio(
        samples=np.ascontiguousarray(padded, dtype=np.float32),
        sample_rate=int(target_rate),
        length=length,
        input_loudness=input_lufs,
        input_sample_rate=int(sample_rate),
        input_channels=int(samples.shape[0]),
    )


def finish(decoded: np.ndarray, sample_rate: int, length: int, target_lufs: float) -> np.ndarray:
    """Decoder output -> final audio: trim (or zero-pad) to `length`, restore `target_lufs`, peak <= 1.

    Gain and peak limiting run in float64, so restoring the loudness of an input near FLT_MAX (a gain far beyond
    float32's range) still gives finite samples; a non-finite result is an error, never written."""
    x = np.asarray(decoded, dtype=np.float32).reshape(-1)
    x = x[:length] if x.size >= length else np.pad(x, (0, length - x.size))
    if not np.isfinite(x).all():
        raise AudioError("the decoder produced NaN or infinite samples")
    exponent = (float(target_lufs) - loudness(x, sample_rate)) / 20.0
    if not math.isfinite(exponent) or exponent > 300.0:
        raise AudioError(f"cannot restore the input loudness ({target_lufs} LUFS): the gain is out of range")
    y = x.astype(np.float64) * (10.0 ** exponent)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0:
        y = y * (1.0 / peak)
    out = y.astype(np.float32)
    if not np.isfinite(out).all():
        raise AudioError("the output holds NaN or infinite samples after loudness restoration")
    return out


def write_audio(path: PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono or [channels, frames] `samples` to `path` atomically: a temporary file in the same directory,
    then ``os.replace``; on any failure nothing is left behind. The format follows the extension (OUTPUT_FORMATS:
    wav and flac 16-bit PCM, ogg vorbis); samples go to libsndfile in blocks of WRITE_BLOCK_FRAMES frames."""
    sf = _soundfile()
    p = Path(path)
    fmt = output_format(p, sample_rate)
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise AudioError(f"{p}: the output directory {directory} does not exist")
    data = np.asarray(samples, dtype=np.float32)
    data = data.T if data.ndim == 2 else data.reshape(-1, 1)
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: refusing to write NaN or infinite samples")
    try:
        tmp_name = temporary_sibling(p)
    except OSError as exc:
        raise AudioError(f"{p}: cannot write in {directory} ({exc.strerror or exc})") from None
    try:
        with atomic_output(p, tmp_name):
            with sf.SoundFile(tmp_name, "w", samplerate=int(sample_rate), channels=int(data.shape[1]),
                              format=fmt.format, subtype=fmt.subtype) as out:
                for start in range(0, data.shape[0], WRITE_BLOCK_FRAMES):
                    out.write(data[start: start + WRITE_BLOCK_FRAMES])
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{p}: cannot write audio ({exc})") from None
    return p
