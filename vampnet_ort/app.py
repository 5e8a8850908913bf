"""``vampnet-ort app``: a Gradio UI with the controls of upstream VampNet's app, over ``vampnet_ort.pipeline``.

This module only maps UI controls to ``VampOptions`` (``options_from_controls``), applies the input pitch shift
(librosa, as upstream shifts the input before encoding), and shows what ``Pipeline.vamp_samples`` returns: two
variations and the mask. Everything else (preprocessing, masks, decoding, writing) is the pipeline's.

The vamp event is also the API endpoint ``/vamp`` (``gradio_client``): its first parameter is the input audio file,
every other parameter has the UI's default; it returns the two output files, variation 0 first. Beside it: upstream's
Space API ``/vamp_1`` (``space_api``) and HARP's ``controls``/``process``/``cancel`` (``harp``). Several bundles can
be served (``models.ModelRegistry``), chosen by name. One job runs at a time (the work is CPU-bound); later ones wait
in Gradio's queue, which shows their position.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import audio as audio_io
from . import harp, masks, space_api
from .app_presets import PRESETS, apply_preset
from .extras import require_librosa
from .frontend import bundle_dir, describe_error
from .gradio_util import user_error, with_parameter_names
from .models import ModelEntry, ModelRegistry
from .options import Option, VampOptions, by_control, with_values
from .app_runtime import DEFAULT_FILE_LIFETIME_S, JobFiles, call_cancellable, exact_integer, gradio_cache_schedule
from .app_runtime import stop_on_signals
from .pipeline import Pipeline

N_OUTPUTS = 2  # upstream's app makes two variations per click
START_PRESET = "medium variation"  # the preset the UI starts with (upstream's dropdown shows it at start)
PREVIEW_SECONDS = 10.0  # the mask preview's length while no input is loaded
EXAMPLE_SECONDS = 5.0
# Upstream's app trims its input to 100 s; here a longer one is refused with a message (an output always covers its
# whole input). Rates, channels and decoded samples: audio.InputLimits' defaults.
APP_INPUT_LIMITS = audio_io.InputLimits(max_seconds=100.0)
PREVIEW_CONCURRENCY = 2  # mask previews and upload checks drawn at once (each decodes the input)
UI_CONCURRENCY = 4  # the instant UI events (preset <-> controls)
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
    return exact_integer(value, name)  # never through a float: seeds up to 2^63 - 1 stay exact


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


PRESET_CONTROLS = ("periodic_prompt", "compression_prompt", "onset_mask_width", "dropout", "beat_mask_ms")


def matching_preset(controls: Controls) -> Optional[str]:
    """The preset whose five values the controls have (None: none matches, or a value is not a number)."""
    try:
        values = [float(getattr(controls, c)) for c in PRESET_CONTROLS]
    except (TypeError, ValueError):
        return None
    for name, preset in PRESETS.items():
        if all(abs(v - float(getattr(preset, c))) < 1e-9 for v, c in zip(values, PRESET_CONTROLS)):
            return name
    return None


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
    """The app's state: the models it serves (loaded on first use), a work directory for the files it serves."""

    def __init__(self, models: Union[ModelRegistry, Pipeline], work_dir: Optional[Path] = None,
                 file_lifetime: float = DEFAULT_FILE_LIFETIME_S) -> None:
        self.models = models if isinstance(models, ModelRegistry) else ModelRegistry.of_pipeline(models)
        self.files = JobFiles(file_lifetime, work_dir)  # per-job folders, deleted after `file_lifetime` seconds
        self.work_dir = self.files.root
        self._rng = np.random.default_rng()
        self._rng_lock = threading.Lock()

    @property
    def demo(self) -> bool:
        """Whether the default model is a demo bundle."""
        return self.models.resolve(None).demo

    @property
    def n_codebooks(self) -> int:
        return self.models.resolve(None).n_codebooks

    @property
    def frame_rate(self) -> float:
        return self.models.resolve(None).frame_rate

    def _job_dir(self) -> Path:
        """A fresh directory for one job's files; those older than the file lifetime go (Gradio has copied what it
        serves into its own cache by then, which ``gr.Blocks(delete_cache=...)`` empties on the same schedule)."""
        self.files.sweep()
        return self.files.new()

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

    def read_input(self, input_path: Optional[str]) -> Tuple[np.ndarray, int]:
        """The samples of the input file; a missing or unreadable file is an error naming the file as the user
        named it (not by its upload path)."""
        if not input_path:
            raise ValueError("no input audio: upload a file or load the example")
        try:
            return audio_io.read_audio(input_path, APP_INPUT_LIMITS)
        except audio_io.AudioError as exc:
            raise audio_io.AudioError(str(exc).replace(str(input_path), Path(input_path).name)) from None

    def input_seconds(self, input_path: Optional[str]) -> float:
        """The input's length in seconds (checks that it decodes)."""
        samples, rate = self.read_input(input_path)
        return samples.shape[-1] / rate

    def preview(self, controls: Controls, seconds: Optional[float] = None, model: Optional[str] = None) -> str:
        """PNG of the mask the controls build on `seconds` of audio (the loaded input's length; PREVIEW_SECONDS
        without one). No onset or beat mask: they need the audio."""
        entry = self.models.resolve(model)
        options = options_from_controls(replace(controls, onset_mask_width=0, beat_mask_ms=0.0), 1)
        options.validate(entry.n_codebooks)
        length = PREVIEW_SECONDS if seconds is None else float(seconds)
        frames = max(1, int(np.ceil(length * entry.frame_rate)))
        mask = masks.build_mask(options.mask, (1, entry.n_codebooks, frames),
                                masks.MaskRng(int(self.pick_seed(controls.seed)), 0),
                                sample_rate=entry.sample_rate, hop_length=entry.hop_length)
        return str(draw_mask(mask[0], entry.frame_rate, "mask preview (onset and beat masks not shown)",
                             self._job_dir() / f"mask-preview-{length:.1f}s.png"))

    def check(self, input_path: Optional[str], controls: Controls, model: Optional[str] = None) -> None:
        """Everything a vamp checks before it starts: the input decodes, the model exists, the controls are
        valid for it."""
        entry = self.models.resolve(model)
        options_from_controls(controls, 1).validate(entry.n_codebooks)
        _integer(controls.pitch_shift, "pitch shift")
        self.read_input(input_path)

    def vamp(self, input_path: Optional[str], controls: Controls,
             on_progress: Optional[Callable[[str, int, int], None]] = None, *, model: Optional[str] = None,
             variations: int = N_OUTPUTS, mask_image: bool = True) -> Tuple[List[str], Optional[str], int]:
        """Vamp `input_path` with `controls` and model `model` (None: the first); returns (the `variations` output
        files, the mask PNG or None without `mask_image`, the seed used)."""
        entry = self.models.resolve(model)
        seed = self.pick_seed(controls.seed)
        options = replace(options_from_controls(controls, seed), variations=int(variations))
        options.validate(entry.n_codebooks)
        samples, rate = self.read_input(input_path)
        samples = pitch_shift(samples, rate, _integer(controls.pitch_shift, "pitch shift"))
        result = self.models.pipeline(entry.name).vamp_samples(samples, rate, options, on_progress=on_progress)
        job = self._job_dir()
        outputs = [str(audio_io.write_audio(job / f"output_{i}.wav", audio_io.limit_peak(waveform), result.sample_rate))
                   for i, waveform in enumerate(result.audio)]
        image = None
        if mask_image:
            title = f"mask used, seed {seed}" + (" (demo bundle: not music)" if result.demo else "")
            image = str(draw_mask(result.mask[0], result.frame_rate, title, job / "mask.png"))
        return outputs, image, seed


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

    defaults = preset_controls(START_PRESET)  # the UI starts on a preset (upstream's dropdown shows it)
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
        if spec.low is None:  # the seed: text, so every digit of a 64-bit seed survives the browser (JS numbers
            kw["value"] = str(kw["value"])  # are doubles: exact only to 2^53)
            return gr.Textbox(max_lines=1, **kw)
        high = app.n_codebooks if spec.high is None else spec.high
        return gr.Slider(spec.low, high, step=option.step, **kw)

    demo_note = " (demo bundle: not music)" if app.demo else ""
    with gr.Blocks(title="vampnet-ort", delete_cache=gradio_cache_schedule(app.files.lifetime)) as blocks:
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
                    preset = gr.Dropdown(label="preset (sets the five controls below; empty: they match none)",
                                         choices=list(PRESETS), value=matching_preset(defaults), elem_id="preset")
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
                model_choice = gr.Dropdown(label="model choice", choices=app.models.names,
                                           value=app.models.default, elem_id="model-choice")
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
        by_name = dict(zip(CONTROL_NAMES, controls))
        preset_targets = [by_name[name] for name in PRESET_CONTROLS]

        def on_preset(name: Optional[str]):
            if not name:
                return [gr.skip() for _ in preset_targets]
            c = preset_controls(name)
            return [getattr(c, target) for target in PRESET_CONTROLS]

        def on_preset_controls(*values: Any):
            return gr.update(value=matching_preset(replace(defaults, **dict(zip(PRESET_CONTROLS, values)))))

        # a person picks a preset (`input`: not when the app sets the dropdown itself), the five controls follow;
        # any change of the five shows the preset they match (none: empty)
        ui = dict(concurrency_id="ui", concurrency_limit=UI_CONCURRENCY)
        preview = dict(concurrency_id="preview", concurrency_limit=PREVIEW_CONCURRENCY)  # each decodes the input
        preset.input(on_preset, inputs=[preset], outputs=preset_targets, api_visibility="private", **ui)
        for widget in preset_targets:
            widget.change(on_preset_controls, inputs=preset_targets, outputs=[preset], api_visibility="private",
                          trigger_mode="always_last", show_progress="hidden", **ui)

        def warn(exc: BaseException) -> None:
            gr.Warning(describe_error(exc))

        def on_preview(input_path: Optional[str], model: Optional[str], *values: Any):
            """The mask preview over the loaded input's length; a problem is a warning, the image stays."""
            try:
                seconds = app.input_seconds(input_path) if input_path else None
                return app.preview(controls_of(values), seconds, model)
            except Exception as exc:
                warn(exc)
                return gr.skip()

        def on_input(input_path: Optional[str]) -> None:
            """An uploaded file is decoded at once: a file that cannot be read is reported now, not at generate."""
            if input_path:
                try:
                    app.read_input(input_path)
                except Exception as exc:
                    raise user_error(exc) from None

        preview_inputs = [input_audio, model_choice, *controls]
        preview_triggers = [by_name[name] for name in ("periodic_prompt", "periodic_width", "compression_prompt",
                                                       "dropout", "random_mask_intensity", "prefix_s", "suffix_s",
                                                       "conditioning_codebooks")]
        for widget in (*preview_triggers, model_choice):
            widget.change(on_preview, inputs=preview_inputs, outputs=[mask_image], api_visibility="private",
                          trigger_mode="always_last", **preview)
        blocks.load(on_preview, inputs=preview_inputs, outputs=[mask_image], api_visibility="private", **preview)
        # the check has no outputs, so an error shows as one message and no component turns into an error box
        input_audio.change(on_input, inputs=[input_audio], outputs=None, api_visibility="private",
                           **preview).success(
            on_preview, inputs=preview_inputs, outputs=[mask_image], api_visibility="private", **preview)

        example_button.click(app.example, inputs=[], outputs=[input_audio], api_visibility="private", **ui)
        for button, output in zip(feedback_buttons, outputs):
            button.click(lambda path: path, inputs=[output], outputs=[input_audio], api_visibility="private", **ui)

        def ui_check(input_path: Optional[str], model: Optional[str], *values: Any) -> None:
            try:
                app.check(input_path, controls_of(values), model)
            except Exception as exc:
                raise user_error(exc) from None

        async def ui_vamp(*args: Any):  # async: a cancelled job cancels its work (app_runtime.call_cancellable)
            files, image, used_seed = await call_cancellable(_run, app, args[0], controls_of(args[1:-2]), args[-2],
                                                             args[-1])
            note = f"seed used: **{used_seed}** (output 2: {used_seed + 1})" + demo_note
            return (*files, image, note)

        async def api_vamp(*args: Any):
            files, _, _ = await call_cancellable(_run, app, args[0], controls_of(args[1:-2]), args[-2], args[-1])
            return tuple(files)

        vamp_inputs = [input_audio, *controls, model_choice]
        vamp_names = ("input_audio", *CONTROL_NAMES, space_api.MODEL_CHOICE)
        # the click checks first (no outputs: a bad input or setting is one message, the outputs stay as they are)
        vamp_button.click(ui_check, inputs=[input_audio, model_choice, *controls], outputs=None,
                          api_visibility="private", **preview).success(
            with_parameter_names(ui_vamp, vamp_names, gr.Progress()), inputs=vamp_inputs,
            outputs=[*outputs, mask_image, status], api_visibility="private", concurrency_id="vamp",
            concurrency_limit=1)
        # the API endpoints: the same work on the same queue
        with gr.Column(visible=False):
            # /vamp: every control (the UI's start values), returning only the output files
            api_defaults = [getattr(defaults, name) for name in CONTROL_NAMES]
            gr.Button("api vamp", visible=False).click(
                with_parameter_names(api_vamp, vamp_names, gr.Progress()),
                inputs=_api_inputs(gr, vamp_names, [None, *api_defaults, app.models.default]), outputs=outputs,
                api_name="vamp", concurrency_id="vamp", concurrency_limit=1)
            _add_space_api(app, outputs, gr)
        harp.add_endpoints(harp_endpoint(app, defaults), harp_runner(app), concurrency_id="vamp")
    return blocks


def _api_inputs(gr: Any, names: Sequence[str], defaults: Sequence[Any]) -> List[Any]:
    """Hidden inputs of an API endpoint holding its defaults (what ``gradio_client`` shows and fills in): the
    audio file (default None), checkboxes, text for names, numbers without bounds: the app, not Gradio, checks
    the values (one clear message; Gradio's own bound checks would print a traceback on the console)."""
    inputs: List[Any] = []
    for name, default in zip(names, defaults):
        if default is None:
            inputs.append(gr.Audio(type="filepath", label=name))
        elif isinstance(default, bool):
            inputs.append(gr.Checkbox(value=default, label=name))
        elif isinstance(default, str):
            inputs.append(gr.Textbox(value=default, label=name))
        else:
            inputs.append(gr.Number(value=default, label=name))
    return inputs


def _add_space_api(app: VampApp, outputs: List[Any], gr: Any) -> None:
    """Upstream's Space API ``/vamp_1`` (``space_api``), with upstream's defaults."""
    inputs = _api_inputs(gr, space_api.NAMES, [None, *(p.default for p in space_api.parameters(Controls()))])

    async def upstream_vamp(input_audio: Optional[str], *values: Any, progress: Any = None):
        try:
            given, model = space_api.controls_of(dict(zip(space_api.NAMES[1:], values)))
            controls = replace(Controls(), **given)
        except Exception as exc:
            raise user_error(exc) from None
        files, _, _ = await call_cancellable(_run, app, input_audio, controls, model, progress)
        return tuple(files)

    gr.Button("upstream api vamp", visible=False).click(
        with_parameter_names(upstream_vamp, space_api.NAMES, gr.Progress()), inputs=inputs, outputs=outputs,
        api_name=space_api.API_NAME, concurrency_id="vamp", concurrency_limit=1)


def _run(app: VampApp, input_path: Optional[str], controls: Controls, model: Optional[str], progress: Any,
         ) -> Tuple[List[str], Optional[str], int]:
    """`app.vamp`, its stages reported to a ``gr.Progress``, its errors as ``gr.Error``."""
    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc=_stage_label(stage), unit=_STAGE_UNITS.get(stage, ""))

    try:
        return app.vamp(input_path, controls, report, model=model)
    except Exception as exc:
        raise user_error(exc) from None


_MODEL_CHOICE_INFO = "the model to run (the bundles the app serves)"


def harp_endpoint(app: VampApp, defaults: Controls) -> harp.Endpoint:
    """HARP's view of the app: upstream's six controls, with upstream's labels and the app's ranges, steps and help
    (``options.OPTIONS``) and start values (`defaults`)."""
    table = by_control()
    named: List[Tuple[str, harp.Control]] = []
    for name, label in harp.CONTROLS:
        if name == space_api.MODEL_CHOICE:
            named.append((name, harp.Dropdown(label, _MODEL_CHOICE_INFO, app.models.names, app.models.default)))
            continue
        option = table[name]
        assert option.app is not None and option.app.low is not None and option.step is not None, name
        high = app.n_codebooks if option.app.high is None else option.app.high
        named.append((name, harp.Slider(label, option.help, option.app.low, high, option.step,
                                        getattr(defaults, name))))
    note = " (demo bundle: not music)" if app.demo else ""
    return harp.Endpoint(
        input_track=harp.AudioTrack("input audio", "the audio to vamp on", required=True),
        controls=tuple(named),
        outputs=(harp.AudioTrack("output audio", "the vamped audio" + note),
                 harp.JsonOutput("output labels", "the model and seed used")))


def harp_runner(app: VampApp) -> harp.Runner:
    def run(input_path: Optional[str], values: Dict[str, Any], check: Callable[[], None],
            ) -> Tuple[str, List[harp.OutputLabel]]:
        def report(stage: str, done: int, total: int) -> None:
            check()

        try:
            values = dict(values)
            model = values.pop("model_choice", None)
            controls = replace(Controls(), **harp.FIXED_CONTROLS, **values)
            entry = app.models.resolve(model)
            files, _, seed = app.vamp(input_path, controls, report, model=entry.name, variations=1, mask_image=False)
            samples, rate = audio_io.read_audio(files[0])
            seconds = samples.shape[-1] / rate
        except Exception as exc:
            raise user_error(exc) from None
        description = f"model {entry.name}, seed {seed}" + (" (demo bundle: not music)" if entry.demo else "")
        return files[0], [harp.OutputLabel(t=0.0, label=f"vampnet: {entry.name}", duration=seconds,
                                           description=description)]

    return run


def serve(models: Optional[Sequence[str]] = None, host: str = "127.0.0.1", port: Optional[int] = None,
          share: bool = False, threads: Optional[int] = None, log: Callable[[str], None] = print,
          file_lifetime: float = DEFAULT_FILE_LIFETIME_S) -> None:
    """Serve `models` (bundle directories or folders of bundles, listed in this order; none: the demo bundle) until
    interrupted (Ctrl-C, SIGTERM or SIGHUP: Gradio closes, its cache and the work folder are deleted). Only the
    manifests are read now; a model loads when first used. Uploads and outputs live `file_lifetime` seconds."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the app needs Gradio: pip install 'vampnet-ort[app]'") from None
    if models:
        registry = ModelRegistry.from_paths(models, threads)
    else:
        path, _ = bundle_dir(None, log)  # the demo bundle, with its note
        registry = ModelRegistry([ModelEntry.read(path, "demo")], threads)
    log("models: " + ", ".join(f"{e.name} ({e.path})" for e in registry.entries) + f"; \"default\": {registry.default}")
    app = VampApp(registry, file_lifetime=file_lifetime)
    try:
        with stop_on_signals():
            app.files.start_sweeping()
            blocks = build_ui(app)
            blocks.queue(default_concurrency_limit=1)
            blocks.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(app.work_dir)],
                          show_error=True, quiet=False)
    finally:
        app.files.close()
