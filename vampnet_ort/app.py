"""``vampnet-ort app``: a Gradio UI with the controls of upstream VampNet's app, over ``vampnet_ort.pipeline``.

This module only maps UI controls to ``VampOptions`` (``options_from_controls``), applies the input pitch shift
(librosa, as upstream shifts the input before encoding), and shows what ``Pipeline.vamp_samples`` returns: two
variations and the mask. Everything else (preprocessing, masks, decoding, writing) is the pipeline's.

The vamp event is also the API endpoint ``/vamp`` (``gradio_client``): its first parameter is the input audio file,
every other parameter has the UI's default; it returns the two output files, variation 0 first. One job runs at a
time per loaded bundle (the work is CPU-bound); later ones wait in Gradio's queue, which shows their position.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from . import audio as audio_io
from . import masks
from .app_presets import PRESETS, apply_preset
from .pipeline import Pipeline, SamplingOptions, VampOptions

N_OUTPUTS = 2  # upstream's app makes two variations per click
PREVIEW_SECONDS = 10.0
EXAMPLE_SECONDS = 5.0
JOB_FILES_MAX_AGE_S = 3600.0
DEMO_WARNING = ("**Demo bundle**: tiny models with random weights, the output is **not music**. Start the app with "
                "`--models DIR` (a bundle from `vampnet-ort export`) for music.")


@dataclass(frozen=True)
class Controls:
    """The UI's controls, in the order of the ``/vamp`` API parameters after the input file; defaults = the UI's."""

    periodic_prompt: int = 7
    periodic_width: int = 1
    onset_mask_width: int = 0
    beat_mask_ms: float = 0.0
    downbeats_only: bool = False
    compression_prompt: int = 3
    dropout: float = 0.0
    random_mask_intensity: float = 1.0
    prefix_s: float = 0.0
    suffix_s: float = 0.0
    conditioning_codebooks: int = 0
    feedback_steps: int = 1
    time_stretch: int = 1
    pitch_shift: int = 0
    sampling_steps: int = 36
    temperature: float = 1.0
    mask_temperature: float = 10.5
    top_p: float = 0.0
    typical_filtering: bool = False
    typical_mass: float = 0.15
    typical_min_tokens: int = 64
    sample_cutoff: float = 1.0
    use_c2f: bool = True
    seed: int = 0  # 0: a random seed (as upstream); the seed used is shown


CONTROL_NAMES: Tuple[str, ...] = tuple(Controls.__dataclass_fields__)


def _integer(value: Any, name: str) -> int:
    number = float(value)
    if not np.isfinite(number) or number != int(number):
        raise ValueError(f"{name.replace('_', ' ')} must be a whole number, got {value}")
    return int(number)


def options_from_controls(controls: Controls, seed: int) -> VampOptions:
    """The ``VampOptions`` a click runs (two variations, seeds `seed` and `seed + 1`)."""
    c = controls
    mask = masks.MaskOptions(
        intensity=float(c.random_mask_intensity), prefix_s=float(c.prefix_s), suffix_s=float(c.suffix_s),
        periodic_period=_integer(c.periodic_prompt, "periodic prompt"),
        periodic_width=_integer(c.periodic_width, "periodic prompt width"), periodic_random_roll=True,
        onset_width=_integer(c.onset_mask_width, "onset mask width"), beat_width_ms=float(c.beat_mask_ms),
        beat_downbeats_only=bool(c.downbeats_only), dropout=float(c.dropout),
        n_conditioning_codebooks=_integer(c.conditioning_codebooks, "conditioning codebooks"),
        upper_codebook_mask=_integer(c.compression_prompt, "compression prompt"),
    )
    typical = float(c.typical_mass) if c.typical_filtering else 0.0
    filters = dict(top_p=float(c.top_p), typical_mass=typical,
                   typical_min_tokens=_integer(c.typical_min_tokens, "typical min tokens"))
    coarse = SamplingOptions(steps=_integer(c.sampling_steps, "sampling steps"), temperature=float(c.temperature),
                             mask_temperature=float(c.mask_temperature), sample_cutoff=float(c.sample_cutoff),
                             **filters)  # type: ignore[arg-type]
    defaults = VampOptions()
    return VampOptions(mask=mask, coarse=coarse, c2f=replace(defaults.c2f, **filters), use_c2f=bool(c.use_c2f),
                       seed=int(seed), variations=N_OUTPUTS,
                       feedback_steps=_integer(c.feedback_steps, "feedback steps"),
                       time_stretch=_integer(c.time_stretch, "time stretch"))


def preset_controls(name: str, controls: Controls = Controls()) -> Controls:
    """`controls` with preset `name`'s five values."""
    options = apply_preset(name, options_from_controls(controls, 1))
    m = options.mask
    return replace(controls, periodic_prompt=m.periodic_period, compression_prompt=m.upper_codebook_mask,
                   onset_mask_width=m.onset_width, dropout=m.dropout, beat_mask_ms=m.beat_width_ms)


def pitch_shift(samples: np.ndarray, sample_rate: int, semitones: int) -> np.ndarray:
    """`samples` [channels, frames] shifted by `semitones` (librosa's phase vocoder + resampling; length kept)."""
    if int(semitones) == 0:
        return samples
    if not -24 <= int(semitones) <= 24:
        raise ValueError(f"pitch shift must be between -24 and 24 semitones, got {semitones}")
    librosa = masks._librosa()
    return librosa.effects.pitch_shift(np.asarray(samples, dtype=np.float32), sr=int(sample_rate),
                                       n_steps=float(semitones)).astype(np.float32)


def draw_mask(mask: np.ndarray, frame_rate: float, title: str, path: Path) -> Path:
    """PNG of a mask [codebooks, frames] (white = regenerated, black = kept). Uses matplotlib's object API, not
    pyplot's global state: previews are drawn while a vamp runs."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ValueError("the mask image needs matplotlib: pip install 'vampnet-ort[app]'") from None
    fig = Figure(figsize=(7, 2.8), layout="constrained")
    ax = fig.subplots()
    n_frames = mask.shape[-1]
    ax.imshow(mask, aspect="auto", origin="lower", interpolation="nearest", cmap="gray", vmin=0, vmax=1,
              extent=(0.0, n_frames / frame_rate, -0.5, mask.shape[0] - 0.5))
    ax.set_title(title, fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("seconds")
    ax.set_ylabel("codebook")
    fig.savefig(path, format="png", dpi=100)
    return path


class VampApp:
    """The app's state: one pipeline (one bundle), a work directory for the files it serves."""

    def __init__(self, pipeline: Pipeline, work_dir: Optional[Path] = None) -> None:
        self.pipeline = pipeline
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="vampnet-ort-app-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._rng = np.random.default_rng()
        self._rng_lock = threading.Lock()

    @property
    def demo(self) -> bool:
        return bool(self.pipeline.bundle.demo)

    @property
    def n_codebooks(self) -> int:
        return int(self.pipeline.bundle.n_codebooks)

    @property
    def frame_rate(self) -> float:
        return self.pipeline.bundle.sample_rate / self.pipeline.bundle.hop_length

    def _job_dir(self) -> Path:
        """A fresh directory for one job's files; those of jobs older than JOB_FILES_MAX_AGE_S go (Gradio has
        copied what it serves into its own cache by then)."""
        now = time.time()
        for old in self.work_dir.iterdir():
            try:
                if old.is_dir() and now - old.stat().st_mtime > JOB_FILES_MAX_AGE_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        path = self.work_dir / uuid.uuid4().hex
        path.mkdir()
        return path

    def pick_seed(self, seed: Any) -> int:
        value = _integer(seed if seed is not None else 0, "seed")
        if value != 0:
            return value
        with self._rng_lock:
            return int(self._rng.integers(1, 2**31))

    def example(self) -> str:
        """A synthesized clip (the package's demo clip), as a file for the input."""
        path = self._job_dir() / "example.wav"
        rate = 44100
        audio_io.write_audio(path, audio_io.limit_peak(_demo_clip(EXAMPLE_SECONDS, rate)), rate)
        return str(path)

    def preview(self, controls: Controls) -> str:
        """PNG of the mask the controls build on PREVIEW_SECONDS of audio (no onset or beat mask: they need the
        audio)."""
        options = options_from_controls(replace(controls, onset_mask_width=0, beat_mask_ms=0.0), 1)
        options.validate(self.n_codebooks)
        frames = max(1, int(round(PREVIEW_SECONDS * self.frame_rate)))
        template = np.zeros((1, self.n_codebooks, frames), dtype=np.int64)
        mask = self.pipeline.build_mask(template, options.mask, int(self.pick_seed(controls.seed)))
        return str(draw_mask(mask[0], self.frame_rate, "mask preview (onset and beat masks not shown)",
                             self._job_dir() / "mask-preview.png"))

    def vamp(self, input_path: Optional[str], controls: Controls,
             on_progress: Optional[Callable[[str, int, int], None]] = None) -> Tuple[List[str], str, int]:
        """Vamp `input_path` with `controls`; returns (the N_OUTPUTS output files, the mask PNG, the seed used)."""
        if not input_path:
            raise ValueError("no input audio: upload a file or load the example")
        seed = self.pick_seed(controls.seed)
        options = options_from_controls(controls, seed)
        options.validate(self.n_codebooks)
        try:
            samples, rate = audio_io.read_audio(input_path)
        except audio_io.AudioError as exc:  # name the file as the user knows it, not by its upload path
            raise audio_io.AudioError(str(exc).replace(str(input_path), Path(input_path).name)) from None
        samples = pitch_shift(samples, rate, _integer(controls.pitch_shift, "pitch shift"))
        result = self.pipeline.vamp_samples(samples, rate, options, on_progress=on_progress)
        job = self._job_dir()
        outputs = [str(audio_io.write_audio(job / f"output_{i}.wav", audio_io.limit_peak(waveform), result.sample_rate))
                   for i, waveform in enumerate(result.audio)]
        title = f"mask used, seed {seed}" + (" (demo bundle: not music)" if result.demo else "")
        image = draw_mask(result.mask[0], result.frame_rate, title, job / "mask.png")
        return outputs, str(image), seed


def _demo_clip(seconds: float, rate: int) -> np.ndarray:
    from .demo import synthesize_clip

    return synthesize_clip(seconds, rate, 0)


_STAGE_UNITS = {"coarse": "chunks", "c2f": "chunks", "decode": "outputs"}


def _stage_label(stage: str) -> str:
    return {"encode": "encoding", "coarse": "coarse decode", "c2f": "coarse-to-fine", "decode": "decoding audio"}.get(
        stage, stage)


def build_ui(app: VampApp):
    """The Gradio Blocks of the app (not launched)."""
    import gradio as gr

    def controls_of(values: Tuple[Any, ...]) -> Controls:
        return Controls(**dict(zip(CONTROL_NAMES, values)))

    def fail(exc: BaseException):
        message = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
        if isinstance(exc, (ValueError, OSError)):
            return gr.Error(message)
        return gr.Error(f"internal error: {type(exc).__name__}: {message}")

    def run_vamp(input_path: Optional[str], values: Tuple[Any, ...], progress: Any) -> Tuple[List[str], str, int]:
        def report(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=_stage_label(stage), unit=_STAGE_UNITS.get(stage, ""))

        try:
            return app.vamp(input_path, controls_of(values), report)
        except Exception as exc:  # every error class of the package derives from ValueError
            raise fail(exc) from None

    defaults = Controls()
    demo_note = " (demo bundle: not music)" if app.demo else ""
    with gr.Blocks(title="vampnet-ort") as blocks:
        gr.Markdown("# vampnet-ort\nVampNet on ONNX Runtime: upload audio, pick a preset or set the mask, "
                    "generate two variations.")
        if app.demo:
            gr.Markdown(DEMO_WARNING, elem_id="demo-warning")
        with gr.Row():
            with gr.Column():
                input_audio = gr.Audio(label="input audio", type="filepath", sources=["upload"],
                                       elem_id="input-audio")
                example_button = gr.Button("or load example audio (synthesized)", elem_id="example-button")
            with gr.Column():
                with gr.Accordion("manual controls", open=True):
                    preset = gr.Dropdown(label="preset (sets the five controls below)", choices=list(PRESETS),
                                         value=None, elem_id="preset")
                    periodic_prompt = gr.Slider(0, 64, value=defaults.periodic_prompt, step=1,
                                                elem_id="periodic-prompt",
                                                label="periodic prompt (keep every N-th frame; 0 = off)")
                    periodic_width = gr.Slider(1, 20, value=defaults.periodic_width, step=1,
                                               label="periodic prompt width (frames, 1 frame ~ 17 ms)")
                    onset_mask_width = gr.Slider(0, 100, value=defaults.onset_mask_width, step=1,
                                                 elem_id="onset-mask-width",
                                                 label="onset mask width (frames; 0 = off; not in the preview)")
                    beat_mask_ms = gr.Slider(0, 200, value=defaults.beat_mask_ms, step=1,
                                             elem_id="beat-mask-ms",
                                             label="beat mask width (ms; 0 = off; not in the preview)")
                    downbeats_only = gr.Checkbox(value=defaults.downbeats_only, label="beat mask: downbeats only")
                    compression_prompt = gr.Slider(1, app.n_codebooks, value=defaults.compression_prompt, step=1,
                                                   elem_id="compression-prompt",
                                                   label="compression prompt (regenerate codebooks >= N)")
                    dropout = gr.Slider(0.0, 1.0, value=defaults.dropout, step=0.01, elem_id="dropout",
                                        label="mask dropout")
                    feedback_steps = gr.Slider(1, 8, value=defaults.feedback_steps, step=1,
                                               label="feedback steps (re-vamp the output; slower)")
                mask_image = gr.Image(label="mask (white = regenerated, black = kept)", type="filepath",
                                      interactive=False, height=260, elem_id="mask-image")
                with gr.Accordion("extras", open=False):
                    random_mask_intensity = gr.Slider(0.0, 1.0, value=defaults.random_mask_intensity, step=0.01,
                                                      label="random mask intensity (< 1 scatters prompts)")
                    prefix_s = gr.Slider(0.0, 10.0, value=defaults.prefix_s, step=0.1, label="prefix hint (s)")
                    suffix_s = gr.Slider(0.0, 10.0, value=defaults.suffix_s, step=0.1, label="suffix hint (s)")
                    conditioning_codebooks = gr.Slider(0, app.n_codebooks, value=defaults.conditioning_codebooks,
                                                       step=1, label="conditioning codebooks (kept everywhere)")
                    pitch_shift_semitones = gr.Slider(-12, 12, value=defaults.pitch_shift, step=1,
                                                      label="pitch shift of the input (semitones)")
                    time_stretch = gr.Slider(1, 8, value=defaults.time_stretch, step=1, label="time stretch factor")
                with gr.Accordion("sampling settings", open=False):
                    sampling_steps = gr.Slider(1, 128, value=defaults.sampling_steps, step=1, label="sampling steps")
                    temperature = gr.Slider(0.0, 10.0, value=defaults.temperature, step=0.01,
                                            label="sample temperature (0 = argmax)")
                    mask_temperature = gr.Slider(0.0, 100.0, value=defaults.mask_temperature, step=0.1,
                                                 label="mask temperature")
                    top_p = gr.Slider(0.0, 1.0, value=defaults.top_p, step=0.01, label="top p (0 = off)")
                    typical_filtering = gr.Checkbox(value=defaults.typical_filtering, label="typical filtering")
                    typical_mass = gr.Slider(0.01, 0.99, value=defaults.typical_mass, step=0.01, label="typical mass")
                    typical_min_tokens = gr.Slider(1, 256, value=defaults.typical_min_tokens, step=1,
                                                   label="typical min tokens")
                    sample_cutoff = gr.Slider(0.0, 1.0, value=defaults.sample_cutoff, step=0.01,
                                              label="sample cutoff (argmax after this fraction of the steps)")
                    use_c2f = gr.Checkbox(value=defaults.use_c2f, label="use coarse-to-fine")
                seed = gr.Number(value=defaults.seed, precision=0, label="seed (0 = random)")
            with gr.Column():
                vamp_button = gr.Button("generate (vamp)!", variant="primary", elem_id="vamp-button")
                status = gr.Markdown("", elem_id="status")
                outputs: List[Any] = []
                feedback_buttons: List[Any] = []
                for i in range(N_OUTPUTS):
                    outputs.append(gr.Audio(label=f"output audio {i + 1}{demo_note}", type="filepath",
                                            interactive=False, elem_id=f"output-{i}"))
                    feedback_buttons.append(gr.Button("use as input (feedback)", elem_id=f"use-as-input-{i}"))

        controls = [periodic_prompt, periodic_width, onset_mask_width, beat_mask_ms, downbeats_only,
                    compression_prompt, dropout, random_mask_intensity, prefix_s, suffix_s, conditioning_codebooks,
                    feedback_steps, time_stretch, pitch_shift_semitones, sampling_steps, temperature,
                    mask_temperature, top_p, typical_filtering, typical_mass, typical_min_tokens, sample_cutoff,
                    use_c2f, seed]
        assert len(controls) == len(CONTROL_NAMES)
        preset_targets = [periodic_prompt, compression_prompt, onset_mask_width, dropout, beat_mask_ms]

        def on_preset(name: Optional[str]):
            if not name:
                return [gr.update() for _ in preset_targets]
            c = preset_controls(name)
            return [c.periodic_prompt, c.compression_prompt, c.onset_mask_width, c.dropout, c.beat_mask_ms]

        preset.change(on_preset, inputs=[preset], outputs=preset_targets, api_visibility="private")

        def on_preview(*values: Any):
            try:
                return app.preview(controls_of(values))
            except Exception as exc:
                raise fail(exc) from None

        preview_inputs = [periodic_prompt, periodic_width, compression_prompt, dropout, random_mask_intensity,
                          prefix_s, suffix_s, conditioning_codebooks]
        for widget in preview_inputs:
            widget.change(on_preview, inputs=controls, outputs=[mask_image], api_visibility="private",
                          trigger_mode="always_last", concurrency_limit=None)
        blocks.load(on_preview, inputs=controls, outputs=[mask_image], api_visibility="private")

        example_button.click(app.example, inputs=[], outputs=[input_audio], api_visibility="private")
        for button, output in zip(feedback_buttons, outputs):
            button.click(lambda path: path, inputs=[output], outputs=[input_audio], api_visibility="private")

        def ui_vamp(*args: Any):
            files, image, used_seed = run_vamp(args[0], args[1:-1], args[-1])
            note = f"seed used: **{used_seed}** (output 2: {used_seed + 1})" + demo_note
            return (*files, image, note)

        def api_vamp(*args: Any):
            files, _, _ = run_vamp(args[0], args[1:-1], args[-1])
            return tuple(files)

        vamp_inputs = [input_audio, *controls]
        vamp_button.click(_with_parameters(ui_vamp, gr.Progress()), inputs=vamp_inputs,
                          outputs=[*outputs, mask_image, status], api_visibility="private",
                          concurrency_id="vamp", concurrency_limit=1)
        # the API endpoint: the same work on the same queue, returning only the output files (as upstream's "api vamp")
        api_button = gr.Button("api vamp", visible=False)
        api_button.click(_with_parameters(api_vamp, gr.Progress()), inputs=vamp_inputs, outputs=outputs,
                         api_name="vamp", concurrency_id="vamp", concurrency_limit=1)
    return blocks


def _with_parameters(fn: Callable, progress: Any) -> Callable:
    """`fn(*args)` with the signature (input_audio, <every control>, progress=gr.Progress()): Gradio names the API
    parameters after it and fills `progress` in."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(name, kind) for name in ("input_audio", *CONTROL_NAMES)]
    params.append(inspect.Parameter("progress", kind, default=progress))

    def named(*args: Any):
        return fn(*args)

    named.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    named.__name__ = fn.__name__
    return named


def serve(models: Optional[str] = None, host: str = "127.0.0.1", port: Optional[int] = None, share: bool = False,
          threads: Optional[int] = None, log: Callable[[str], None] = print) -> None:
    """Load the bundle (the demo bundle without `models`), build the UI, serve until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the app needs Gradio: pip install 'vampnet-ort[app]'") from None
    if models is None:
        from .demo import DEMO_NOTE, demo_bundle_path

        log(DEMO_NOTE)
        pipeline = Pipeline(demo_bundle_path(log=log), intra_op_threads=threads)
    else:
        pipeline = Pipeline(models, intra_op_threads=threads)
    app = VampApp(pipeline)
    try:
        blocks = build_ui(app)
        blocks.queue(default_concurrency_limit=1)
        blocks.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(app.work_dir)],
                      show_error=True, quiet=False)
    finally:
        shutil.rmtree(app.work_dir, ignore_errors=True)
