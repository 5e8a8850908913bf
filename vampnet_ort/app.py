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
from .extras import require_librosa
from .frontend import bundle_dir, describe_error
from .app_presets import PRESETS, apply_preset
from .options import Option, VampOptions, by_control, with_values
from .pipeline import Pipeline

N_OUTPUTS = 2  # upstream's app makes two variations per click
PREVIEW_SECONDS = 10.0
EXAMPLE_SECONDS = 5.0
JOB_FILES_MAX_AGE_S = 3600.0
DEMO_WARNING = ("**Demo bundle**: tiny models with random weights, the output is **not music**. Start the app with "
                "`--models DIR` (a bundle from `vampnet-ort export`) for music.")


def _default(control: str) -> Any:
    """A control's default: its VampOptions field's (the table ``options.OPTIONS`` maps controls to fields)."""
    return by_control()[control].default


@dataclass(frozen=True)
class Controls:
    """The UI's controls, in the order of the ``/vamp`` API parameters after the input file; defaults = the
    VampOptions fields they set (``options.OPTIONS``), except the app's own controls below."""

    periodic_prompt: int = _default("periodic_prompt")
    periodic_width: int = _default("periodic_width")
    onset_mask_width: int = _default("onset_mask_width")
    beat_mask_ms: float = _default("beat_mask_ms")
    downbeats_only: bool = _default("downbeats_only")
    compression_prompt: int = _default("compression_prompt")
    dropout: float = _default("dropout")
    random_mask_intensity: float = _default("random_mask_intensity")
    prefix_s: float = _default("prefix_s")
    suffix_s: float = _default("suffix_s")
    conditioning_codebooks: int = _default("conditioning_codebooks")
    feedback_steps: int = _default("feedback_steps")
    time_stretch: int = _default("time_stretch")
    pitch_shift: int = 0  # semitones (the app's own: not a VampOptions field)
    sampling_steps: int = _default("sampling_steps")
    temperature: float = _default("temperature")
    mask_temperature: float = _default("mask_temperature")
    top_p: float = _default("top_p")
    typical_filtering: bool = False  # off: typical mass 0 (upstream's filter is a no-op; docs/SAMPLING.md)
    typical_mass: float = 0.15  # the mass used when typical filtering is on (upstream's UI value)
    typical_min_tokens: int = _default("typical_min_tokens")
    sample_cutoff: float = _default("sample_cutoff")
    use_c2f: bool = _default("use_c2f")
    seed: int = _default("seed")  # 0: a random seed (as upstream); the seed used is shown


CONTROL_NAMES: Tuple[str, ...] = tuple(Controls.__dataclass_fields__)


def _integer(value: Any, name: str) -> int:
    number = float(value)
    if not np.isfinite(number) or number != int(number):
        raise ValueError(f"{name.replace('_', ' ')} must be a whole number, got {value}")
    return int(number)


def _control_value(option: Option, value: Any) -> Any:
    if option.kind is bool:
        return bool(value)
    if option.kind is int:
        return _integer(value, option.control or "value")
    return float(value)


def options_from_controls(controls: Controls, seed: int) -> VampOptions:
    """The ``VampOptions`` a click runs (two variations, seeds `seed` and `seed + 1`): every control that sets a
    field (``options.OPTIONS``), typical filtering off = typical mass 0."""
    values = {}
    for name, option in by_control().items():
        if option.path is None or name == "seed":
            continue
        value = _control_value(option, getattr(controls, name))
        if name == "typical_mass" and not controls.typical_filtering:
            value = 0.0
        for path in option.paths:
            values[path] = value
    return with_values(VampOptions(seed=int(seed), variations=N_OUTPUTS), values)


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
    librosa = require_librosa()
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
        return gr.Error(describe_error(exc))

    def run_vamp(input_path: Optional[str], values: Tuple[Any, ...], progress: Any) -> Tuple[List[str], str, int]:
        def report(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=_stage_label(stage), unit=_STAGE_UNITS.get(stage, ""))

        try:
            return app.vamp(input_path, controls_of(values), report)
        except Exception as exc:  # every error class of the package derives from ValueError
            raise fail(exc) from None

    defaults = Controls()
    table = by_control()

    def control(name: str) -> Any:
        """The widget of control `name`: its range, step and label from ``options.OPTIONS``, its value from
        ``Controls()``."""
        option = table[name]
        spec = option.app
        assert spec is not None, name
        kw: dict = dict(value=getattr(defaults, name), label=spec.label)
        if spec.elem_id:
            kw["elem_id"] = spec.elem_id
        if option.kind is bool:
            return gr.Checkbox(**kw)
        if spec.low is None:
            return gr.Number(precision=0, **kw)
        high = app.n_codebooks if spec.high is None else spec.high
        return gr.Slider(spec.low, high, step=option.step, **kw)

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
                    periodic_prompt = control("periodic_prompt")
                    periodic_width = control("periodic_width")
                    onset_mask_width = control("onset_mask_width")
                    beat_mask_ms = control("beat_mask_ms")
                    downbeats_only = control("downbeats_only")
                    compression_prompt = control("compression_prompt")
                    dropout = control("dropout")
                    feedback_steps = control("feedback_steps")
                mask_image = gr.Image(label="mask (white = regenerated, black = kept)", type="filepath",
                                      interactive=False, height=260, elem_id="mask-image")
                with gr.Accordion("extras", open=False):
                    random_mask_intensity = control("random_mask_intensity")
                    prefix_s = control("prefix_s")
                    suffix_s = control("suffix_s")
                    conditioning_codebooks = control("conditioning_codebooks")
                    pitch_shift_semitones = control("pitch_shift")
                    time_stretch = control("time_stretch")
                with gr.Accordion("sampling settings", open=False):
                    sampling_steps = control("sampling_steps")
                    temperature = control("temperature")
                    mask_temperature = control("mask_temperature")
                    top_p = control("top_p")
                    typical_filtering = control("typical_filtering")
                    typical_mass = control("typical_mass")
                    typical_min_tokens = control("typical_min_tokens")
                    sample_cutoff = control("sample_cutoff")
                    use_c2f = control("use_c2f")
                seed = control("seed")
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
    path, _ = bundle_dir(models, log)
    pipeline = Pipeline(path, intra_op_threads=threads)
    app = VampApp(pipeline)
    try:
        blocks = build_ui(app)
        blocks.queue(default_concurrency_limit=1)
        blocks.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(app.work_dir)],
                      show_error=True, quiet=False)
    finally:
        shutil.rmtree(app.work_dir, ignore_errors=True)
