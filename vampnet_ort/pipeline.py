"""The vamp pipeline: audio -> codes -> mask -> coarse + coarse-to-fine decode -> audio, on ONNX Runtime alone.

It reproduces what upstream VampNet's app does around the decode (docs/SPEC.md section 3):

1. read (soundfile), resample to the codec rate (soxr), mono, -24 LUFS, peak <= 1, right-pad to a multiple of hop;
2. encode with ``codec_encoder.onnx``;
3. build the mask (``masks.build_mask``, the app's recipe and defaults); optional integer time stretch;
4. coarse decode on chunks of ``coarse.chunk_frames`` (575 = 10 s): a chunk whose mask has any 0 gets its first
   and last frame forced to 0 so that chunks stitch cleanly;
5. coarse-to-fine on chunks of ``c2f.chunk_frames`` (173 = 3 s) with 2 steps, tau 1.0, tau_m 10.5, sample_cutoff
   1.0; the conditioning codebooks are never masked; the last chunk is zero-padded with mask 1;
6. MASK -> 0, ``codec_decoder.onnx``, restore the input loudness, trim, write.

A batch of N variations runs as one batch (per-item seeds ``seed + i``; item i of a batch equals a single run with
that seed in everything: its mask is drawn from the counter-based ``masks.MaskRng`` keyed by seed + i, its decode
from PhiloxUniform keyed by the derived chunk seed + i). Feedback steps re-vamp the previous output with a freshly
drawn mask (pass p uses counter word ``pass = p``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Protocol, Tuple, Union

import numpy as np

from . import audio as audio_io
from . import masks
from .bundle import Bundle, BundleError, load_bundle
from .counter_rng import derive_seed  # noqa: F401  (re-exported)
from .errors import PipelineError
from .options import (  # noqa: F401  (re-exported: `from vampnet_ort.pipeline import VampOptions` keeps working)
    MAX_OUTPUT_SAMPLE_RATE,
    MAX_TIME_STRETCH,
    MAX_VARIATIONS,
    SamplingOptions,
    VampOptions,
)
from .fileio import atomic_output
from .paths import PathError, check_distinct, check_input_file, check_output_file, same_file

PathLike = Union[str, os.PathLike]
ProgressCallback = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``: stage is "encode", "coarse", "c2f" or "decode"; called with done = 0 when a
stage starts and after each unit of work (coarse/c2f: a chunk, counted over all feedback passes; decode: one
output); done == total when the stage is finished."""

class Cancelled(PipelineError):
    """The run was cancelled through its ``CancelToken`` (``cancellable``)."""


class CancelToken:
    """Stops a run from another thread (``cancellable``): ``cancel()`` sets ONNX Runtime's ``RunOptions.terminate``
    for the model run in flight (it stops between two nodes, also inside a decode ``Loop``) and every later one, so
    the work really ends instead of running on after its caller gave up. The run then raises ``Cancelled``."""

    def __init__(self) -> None:
        import onnxruntime as ort

        self.run_options = ort.RunOptions()
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()
        self.run_options.terminate = True

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


_CANCEL_SCOPE = threading.local()  # per thread: the token of the innermost ``cancellable`` block


@contextlib.contextmanager
def cancellable(token: Optional[CancelToken] = None) -> Iterator[CancelToken]:
    """Every ``Pipeline`` run in this thread inside the block can be stopped with the yielded token's ``cancel()``
    from any thread; the run then raises ``Cancelled``. A front end (the app) wraps its call without needing to
    know which pipeline runs::

        with cancellable() as token:   # hand `token` to whoever may cancel
            pipe.vamp_samples(samples, rate, options)
    """
    token = token if token is not None else CancelToken()
    previous = getattr(_CANCEL_SCOPE, "token", None)
    _CANCEL_SCOPE.token = token
    try:
        yield token
    finally:
        _CANCEL_SCOPE.token = previous


@dataclass
class VampResult:
    audio: np.ndarray  # float32 [variations, samples] at sample_rate
    sample_rate: int
    codes_in: np.ndarray  # int64 [1, n_codebooks, T] (time-stretched when time_stretch > 1)
    codes_out: np.ndarray  # int64 [variations, n_codebooks, T]
    mask: np.ndarray  # int64 [variations, n_codebooks, T]: the last pass's mask as the models saw it (1 = regenerated)
    input_loudness: float
    demo: bool
    frame_rate: float  # codec frames per second


def _chunked_codec(session):
    """The chunked codec runner (``vampnet_ort.codec``) when it is installed and `session` carries codec metadata."""
    if "codec_config" not in session.get_modelmeta().custom_metadata_map:
        return None
    try:
        from . import codec
    except ImportError:
        return None
    return codec


def _progress(iterable, *, total: int, desc: str, enabled: bool, unit: str = "chunk"):
    if not enabled:
        return iterable
    from tqdm import tqdm

    # disable=None: bars only on a terminal, so logs and captured stderr keep to notes and errors
    return tqdm(iterable, total=total, desc=f"{desc:>7}", unit=unit, leave=False, file=sys.stderr,
                dynamic_ncols=True, disable=None)


def _report(on_progress: Optional[ProgressCallback], stage: str, done: int, total: int) -> None:
    if on_progress is not None:
        on_progress(stage, int(done), int(total))


def output_paths(output: PathLike, variations: int) -> List[Path]:
    """OUTPUT for one variation, else OUTPUT's stem with _0, _1, ... before the extension."""
    p = Path(output)
    if variations == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i}{p.suffix}") for i in range(variations)]


def check_vamp_paths(input_path: PathLike, targets: List[Path], *, plot: Optional[PathLike] = None,
                     output_sample_rate: Optional[int] = None) -> None:
    """Every check of a file run's paths that needs no audio, done before any work: the input is a readable
    regular file; each output has a supported extension (and rate), a writable directory, and is not the input
    (resolved, so symlinks and hard links count); the plot likewise."""
    if output_sample_rate is not None and not 1 <= int(output_sample_rate) <= MAX_OUTPUT_SAMPLE_RATE:
        raise PipelineError(
            f"output sample rate must be between 1 and {MAX_OUTPUT_SAMPLE_RATE} Hz, got {output_sample_rate}")
    try:
        check_input_file(input_path, "input audio")
    except PathError as exc:  # as read_audio reports it
        raise audio_io.AudioError(str(exc)) from None
    try:
        for target in targets:
            audio_io.output_format(target, output_sample_rate)  # AudioError naming the supported formats
            check_output_file(target, "output")
        check_distinct(input_path, targets)
        if plot is not None:
            _matplotlib()  # fail before the work when the extra is missing
            if Path(plot).suffix.lower() != ".png":
                raise PipelineError(f"{plot}: the plot is written as PNG; give a .png path")
            check_output_file(plot, "plot")
            check_distinct(input_path, [plot])
            if any(same_file(plot, target) for target in targets):
                raise PipelineError(f"{plot}: the plot would overwrite an audio output")
    except PathError as exc:
        raise PipelineError(str(exc)) from None


class ModelShape(Protocol):
    """What planning needs of a model: a ``Bundle``, a ``bundle.ManifestInfo`` (read without loading) or the demo
    bundle's ``demo.DEMO_SHAPE``."""

    n_codebooks: int
    sample_rate: int


@dataclass(frozen=True)
class FileJob:
    """A planned file vamp (``plan_file``): every cheap check done; ``Pipeline.run`` executes it."""

    input: Path
    outputs: Tuple[Path, ...]
    options: VampOptions
    n_codebooks: int  # the options were checked against this model
    plot: Optional[Path] = None
    output_sample_rate: Optional[int] = None  # None: the codec's rate


def plan_file(model: ModelShape, input_path: PathLike, output_path: PathLike, options: Optional[VampOptions] = None,
              *, plot: Optional[PathLike] = None, output_sample_rate: Optional[int] = None) -> FileJob:
    """Every check of a file vamp that needs no audio and no loaded model, done once: the options against the
    model's codebook count (and the librosa extra), the input (a readable regular file: one stat; its header within
    ``audio.InputLimits`` and the run's outputs within ``audio.MAX_OUTPUT_SECONDS``), each output's format,
    directory (one write probe each) and distinctness from the input, the plot likewise."""
    options = options if options is not None else VampOptions()
    options.validate(int(model.n_codebooks))
    targets = output_paths(output_path, int(options.variations))
    check_vamp_paths(input_path, targets, plot=plot,
                     output_sample_rate=int(model.sample_rate) if output_sample_rate is None else output_sample_rate)
    audio_io.check_input_header(input_path, variations=int(options.variations),
                                time_stretch=int(options.time_stretch))
    return FileJob(input=Path(input_path), outputs=tuple(targets), options=options,
                   n_codebooks=int(model.n_codebooks), plot=None if plot is None else Path(plot),
                   output_sample_rate=None if output_sample_rate is None else int(output_sample_rate))


class Pipeline:
    """Vamp audio with a model bundle. ``Pipeline()`` uses the built-in demo bundle (random weights: not music)."""

    def __init__(
        self,
        bundle: Union[Bundle, PathLike, None] = None,
        *,
        intra_op_threads: Optional[int] = None,
        progress: bool = False,
        log: Optional[Callable[[str], None]] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> None:
        """`progress`: tqdm bars on stderr (a terminal only); `on_progress`: a ``ProgressCallback`` called for every
        run (a run's own ``on_progress`` argument replaces it for that run)."""
        if bundle is None:
            from .demo import demo_bundle_path

            bundle = demo_bundle_path(log=log)
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, intra_op_threads=intra_op_threads)
        self.progress = progress
        self.on_progress = on_progress

    def _token(self) -> Optional[CancelToken]:
        """The CancelToken of the ``cancellable`` block this thread is in (raises Cancelled once it is cancelled)."""
        token = getattr(_CANCEL_SCOPE, "token", None)
        if token is not None:
            token.check()
        return token

    # ---------------------------------------------------------------- codec
    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Mono preprocessed audio [N] (N a multiple of hop) -> codes int64 [1, n_codebooks, N / hop].

        Long audio is encoded in overlapping chunks (``vampnet_ort.codec``) in bounded memory, codes identical to
        one run; a codec graph without the codec metadata chunking needs runs in one piece."""
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, 1, -1)
        chunked = _chunked_codec(self.bundle.session("codec_encoder"))
        if chunked is not None:
            token = self._token()
            options = token.run_options if token is not None else None
            codes = self._guard("codec_encoder", lambda: chunked.encode(self.bundle.session("codec_encoder"), x,
                                                                         run_options=options))
        else:
            codes = self._run("codec_encoder", {"audio": x})
        return np.ascontiguousarray(codes, dtype=np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes [B, n_codebooks, T] (MASK allowed: decoded as code 0, as upstream) -> audio float32 [B, N']."""
        z = np.where(codes >= self.bundle.vocab_size, 0, codes).astype(np.int64)
        chunked = _chunked_codec(self.bundle.session("codec_decoder"))
        if chunked is not None:
            token = self._token()
            options = token.run_options if token is not None else None
            out = self._guard("codec_decoder", lambda: chunked.decode(self.bundle.session("codec_decoder"), z,
                                                                       run_options=options))
        else:
            out = self._run("codec_decoder", {"codes": z})
        return np.asarray(out, dtype=np.float32).reshape(z.shape[0], -1)

    def _guard(self, model: str, call: Callable[[], np.ndarray]) -> np.ndarray:
        try:
            return call()
        except Exception as exc:  # ORT raises its own exception types (not RuntimeError subclasses)
            token = getattr(_CANCEL_SCOPE, "token", None)
            if token is not None and token.cancelled:
                raise Cancelled(f"cancelled during {model}") from None
            if type(exc).__module__.startswith("onnxruntime"):
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise PipelineError(f"{model}: ONNX Runtime failed: {first}") from None
            raise

    def _run(self, model: str, feeds: dict) -> np.ndarray:
        session = self.bundle.session(model)
        token = self._token()
        options = token.run_options if token is not None else None
        if options is None:
            return self._guard(model, lambda: session.run(None, feeds)[0])
        return self._guard(model, lambda: session.run(None, feeds, options)[0])

    # ---------------------------------------------------------------- generation
    def _stage_feeds(self, codes: np.ndarray, mask: np.ndarray, seed: int, opts: SamplingOptions) -> dict:
        return {
            "codes": np.ascontiguousarray(codes, dtype=np.int64),
            "mask": np.ascontiguousarray(mask, dtype=np.int64),
            "seed": np.array(int(seed), dtype=np.int64),  # item b uses seed + b (docs/SPEC.md section 5)
            "num_steps": np.array(int(opts.steps), dtype=np.int64),
            "temperature": np.array(opts.temperature, dtype=np.float32),
            "mask_temperature": np.array(opts.mask_temperature, dtype=np.float32),
            "top_p": np.array(opts.top_p, dtype=np.float32),
            "typical_mass": np.array(opts.typical_mass, dtype=np.float32),
            "typical_min_tokens": np.array(int(opts.typical_min_tokens), dtype=np.int64),
            "sample_cutoff": np.array(opts.sample_cutoff, dtype=np.float32),
        }

    def coarse_stage(self, codes: np.ndarray, mask: np.ndarray, seed: int, opts: SamplingOptions,
                     pass_index: int = 0, *, on_progress: Optional[ProgressCallback] = None,
                     n_passes: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        """Coarse decode of codebooks 0..coarse_C-1 in chunks (item b seeded seed + b); returns (codes, effective
        coarse mask). An item whose chunk mask keeps anything gets the chunk's first and last frames kept too.
        `on_progress` counts chunks over `n_passes` feedback passes."""
        stage = self.bundle.coarse
        n = stage.n_codebooks
        out = codes.copy()
        effective = mask[:, :n].copy()
        total = codes.shape[-1]
        n_chunks = max(1, -(-total // stage.chunk_frames))
        _report(on_progress, "coarse", pass_index * n_chunks, n_passes * n_chunks)
        for k in _progress(range(n_chunks), total=n_chunks, desc="coarse", enabled=self.progress):
            lo, hi = k * stage.chunk_frames, min(total, (k + 1) * stage.chunk_frames)
            chunk_mask = effective[:, :, lo:hi]  # a view: the forced frames are recorded in `effective`
            # per item (upstream runs one item, so this is its rule at B = 1): an item's result must not depend
            # on the other items of the batch (variation b == a single run seeded seed + b)
            keeps = (chunk_mask == 0).any(axis=(1, 2))
            chunk_mask[keeps, :, 0] = 0
            chunk_mask[keeps, :, -1] = 0
            feeds = self._stage_feeds(codes[:, :n, lo:hi], chunk_mask, derive_seed(seed, pass_index, 0, k), opts)
            out[:, :n, lo:hi] = self._run("coarse", feeds)
            _report(on_progress, "coarse", pass_index * n_chunks + k + 1, n_passes * n_chunks)
        return out, effective

    def c2f_stage(self, codes: np.ndarray, mask: np.ndarray, seed: int, opts: SamplingOptions,
                  pass_index: int = 0, *, on_progress: Optional[ProgressCallback] = None,
                  n_passes: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        """Coarse-to-fine on fixed-size chunks (last one zero-padded, mask 1); returns (codes, effective mask)."""
        stage = self.bundle.c2f
        assert stage is not None
        n, chunk = stage.n_codebooks, stage.chunk_frames
        batch, _, total = codes.shape
        n_chunks = max(1, -(-total // chunk))
        padded = n_chunks * chunk
        z = np.zeros((batch, n, padded), dtype=np.int64)
        z[:, : min(n, codes.shape[1]), :total] = codes[:, :n]
        m = np.ones((batch, n, padded), dtype=np.int64)
        m[:, :, :total] = mask[:, :n]
        m[:, : stage.n_conditioning_codebooks, :] = 0  # never regenerate what c2f conditions on
        out = z.copy()
        _report(on_progress, "c2f", pass_index * n_chunks, n_passes * n_chunks)
        for k in _progress(range(n_chunks), total=n_chunks, desc="c2f", enabled=self.progress):
            lo, hi = k * chunk, (k + 1) * chunk
            feeds = self._stage_feeds(z[:, :, lo:hi], m[:, :, lo:hi], derive_seed(seed, pass_index, 1, k), opts)
            out[:, :, lo:hi] = self._run("c2f", feeds)
            _report(on_progress, "c2f", pass_index * n_chunks + k + 1, n_passes * n_chunks)
        result = codes.copy()
        result[:, :n] = out[:, :, :total]
        return result, m[:, :, :total]

    def generate(self, codes: np.ndarray, mask: np.ndarray, options: VampOptions,
                 pass_index: int = 0, *, on_progress: Optional[ProgressCallback] = None) -> Tuple[np.ndarray, np.ndarray]:
        """One vamp pass over codes [B, n_codebooks, T] with mask [B, n_codebooks, T]; item b uses seed + b.

        Returns (codes out, the effective mask: 1 where a model regenerated the token)."""
        passes = int(options.feedback_steps)
        out, coarse_mask = self.coarse_stage(codes, mask, int(options.seed), options.coarse, pass_index,
                                             on_progress=on_progress, n_passes=passes)
        effective = np.zeros_like(mask)
        effective[:, : coarse_mask.shape[1]] = coarse_mask
        if options.use_c2f and self.bundle.c2f is not None:
            out, c2f_mask = self.c2f_stage(out, mask, int(options.seed), options.c2f, pass_index,
                                           on_progress=on_progress, n_passes=passes)
            cc = self.bundle.c2f.n_conditioning_codebooks
            effective[:, cc: c2f_mask.shape[1]] = c2f_mask[:, cc:]
        return out, effective

    # ---------------------------------------------------------------- whole runs
    def build_mask(self, codes: np.ndarray, options: masks.MaskOptions, seed: int, pass_index: int = 0,
                   audio: Optional[np.ndarray] = None, onsets=None, beats=None) -> np.ndarray:
        """The mask for codes [B, C, T] of pass `pass_index` of a run seeded `seed` (item b keyed seed + b)."""
        return masks.build_mask(options, codes.shape, masks.MaskRng(int(seed), int(pass_index)), audio=audio,
                                sample_rate=self.bundle.sample_rate, hop_length=self.bundle.hop_length,
                                onsets=onsets, beats=beats)

    def vamp_samples(self, samples: np.ndarray, sample_rate: int, options: Optional[VampOptions] = None, *,
                     on_progress: Optional[ProgressCallback] = None) -> VampResult:
        """Vamp audio [channels, frames] (or [frames]) at `sample_rate`; `on_progress` (default: the pipeline's)
        is told each stage's progress."""
        options = options if options is not None else VampOptions()
        options.validate(self.bundle.n_codebooks)
        x = np.asarray(samples, dtype=np.float32)
        x = x[None, :] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] == 0 or not np.isfinite(x).all():
            raise PipelineError("audio must be finite samples [channels, frames] with at least one frame")
        return self._vamp_checked(x, sample_rate, options, on_progress)

    def _vamp_checked(self, x: np.ndarray, sample_rate: int, options: VampOptions,
                      on_progress: Optional[ProgressCallback]) -> VampResult:
        """``vamp_samples`` after its checks: `x` finite float32 [channels, frames], `options` checked."""
        on_progress = on_progress or self.on_progress
        if int(sample_rate) > 0:
            audio_io.check_output_duration(x.shape[1] / int(sample_rate), options.variations, options.time_stretch)
        b = self.bundle
        prepared = audio_io.prepare(x, int(sample_rate), b.sample_rate, b.hop_length)
        _report(on_progress, "encode", 0, 1)
        codes = self.encode(prepared.samples)
        _report(on_progress, "encode", 1, 1)
        seed = int(options.seed)

        factor = int(options.time_stretch)
        need_audio = options.mask.onset_width > 0 or options.mask.beat_width_ms > 0
        analysis_audio = prepared.samples[: prepared.length] if need_audio else None
        onsets = beats = None
        if options.mask.onset_width > 0:
            onsets = masks.onset_frames(analysis_audio, b.sample_rate, b.hop_length)  # type: ignore[arg-type]
        if options.mask.beat_width_ms > 0:
            beats = masks.beat_times(analysis_audio, b.sample_rate, b.hop_length)  # type: ignore[arg-type]

        batch = np.repeat(codes, int(options.variations), axis=0)  # item b: seed + b, masks included
        mask = self.build_mask(batch, options.mask, seed, 0, onsets=onsets, beats=beats)
        if factor > 1:
            batch, mask = masks.stretch(batch, mask, factor)
            codes = batch[:1]
            onsets = None if onsets is None else onsets * factor
            beats = None if beats is None else (beats[0] * factor, beats[1] * factor)

        current = batch
        effective = mask
        for pass_index in range(int(options.feedback_steps)):
            if pass_index > 0:
                mask = self.build_mask(batch, options.mask, seed, pass_index, onsets=onsets, beats=beats)
            current, effective = self.generate(current, mask, options, pass_index, on_progress=on_progress)
        decoded = self._decode_batch(current, on_progress)
        length = prepared.length * factor
        outputs = np.stack([audio_io.finish(d, b.sample_rate, length, prepared.input_loudness) for d in decoded])
        return VampResult(audio=outputs, sample_rate=b.sample_rate, codes_in=codes, codes_out=current,
                          mask=effective, input_loudness=prepared.input_loudness, demo=b.demo,
                          frame_rate=b.sample_rate / b.hop_length)

    def _decode_batch(self, codes: np.ndarray, on_progress: Optional[ProgressCallback] = None) -> np.ndarray:
        """Decode variation by variation (bounded memory, one progress step each)."""
        n = codes.shape[0]
        decoded = []
        _report(on_progress, "decode", 0, n)
        for i in _progress(range(n), total=n, desc="decode", enabled=self.progress, unit="output"):
            decoded.append(self.decode(codes[i: i + 1])[0])
            _report(on_progress, "decode", i + 1, n)
        return np.stack(decoded)

    def plan_file(self, input_path: PathLike, output_path: PathLike, options: Optional[VampOptions] = None, *,
                  plot: Optional[PathLike] = None, output_sample_rate: Optional[int] = None) -> FileJob:
        """``plan_file`` against this pipeline's bundle: every cheap check, once; ``run`` executes the job."""
        return plan_file(self.bundle, input_path, output_path, options, plot=plot,
                         output_sample_rate=output_sample_rate)

    def run(self, job: FileJob, *, on_progress: Optional[ProgressCallback] = None) -> Tuple[List[Path], VampResult]:
        """Execute a planned file vamp: read the input, vamp it, write the variation(s) and the plot atomically
        (all or nothing)."""
        if job.n_codebooks != self.bundle.n_codebooks:  # planned against another model
            job.options.validate(self.bundle.n_codebooks)
        samples, sr = audio_io.read_audio(job.input, checked=True)  # finite, [channels, frames]
        result = self._vamp_checked(samples, sr, job.options, on_progress)
        rate = int(job.output_sample_rate or result.sample_rate)
        written: List[Path] = []
        try:
            for target, waveform in zip(job.outputs, result.audio):
                data = audio_io.resample(waveform, result.sample_rate, rate) if rate != result.sample_rate else waveform
                written.append(audio_io.write_audio(target, audio_io.limit_peak(data), rate))
            if job.plot is not None:
                plot_codes(result, job.plot)
        except BaseException:
            for path in written:  # all or nothing
                try:
                    path.unlink()
                except OSError:
                    pass
            raise
        return written, result

    def vamp_file(self, input_path: PathLike, output_path: PathLike, options: Optional[VampOptions] = None, *,
                  plot: Optional[PathLike] = None, output_sample_rate: Optional[int] = None,
                  on_progress: Optional[ProgressCallback] = None) -> Tuple[List[Path], VampResult]:
        """Read `input_path`, vamp it, write the variation(s) (see ``output_paths``) and optionally a PNG plot:
        ``run(plan_file(...))``. Output formats and directories are checked before any work; every file is
        written atomically."""
        job = self.plan_file(input_path, output_path, options, plot=plot, output_sample_rate=output_sample_rate)
        return self.run(job, on_progress=on_progress)


def _matplotlib():
    """matplotlib.pyplot on the Agg backend, or a clear error naming the extra to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PipelineError("--plot needs matplotlib: pip install 'vampnet-ort[plot]'") from None
    return plt


def plot_codes(result: VampResult, path: PathLike) -> Path:
    """PNG with the input codes, the mask and the output codes (first variation), written atomically."""
    plt = _matplotlib()
    p = Path(path)
    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True, constrained_layout=True)
    panels = [
        (result.codes_in[0], "input codes", "viridis"),
        (result.mask[0], "mask (white = regenerated, black = kept)", "gray"),
        (result.codes_out[0], "output codes (variation 0)", "viridis"),
    ]
    for ax, (data, title, cmap) in zip(axes, panels):
        im = ax.imshow(data, aspect="auto", origin="lower", interpolation="nearest", cmap=cmap)
        ax.set_title(title + (" - demo model, not music" if result.demo and "output" in title else ""))
        ax.set_ylabel("codebook")
        fig.colorbar(im, ax=ax)
    axes[-1].set_xlabel(f"frame ({result.frame_rate:.2f} frames/s)")
    try:
        with atomic_output(p) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(fig)
    return p


__all__ = [
    "CancelToken",
    "Cancelled",
    "cancellable",
    "Pipeline",
    "PipelineError",
    "ProgressCallback",
    "SamplingOptions",
    "VampOptions",
    "VampResult",
    "BundleError",
    "derive_seed",
    "output_paths",
    "check_vamp_paths",
    "plan_file",
    "FileJob",
    "ModelShape",
    "plot_codes",
]
