"""The vamp options, stated once: ``SamplingOptions``, ``MaskOptions``, ``VampOptions`` and the table ``OPTIONS``.

The dataclasses hold the defaults (upstream VampNet's app's) and validate themselves once, when they are built
(frozen, ``__post_init__``); what needs the model (codebook indices against its codebook count, the librosa extra
for onset and beat masks) is ``VampOptions.validate(n_codebooks)``, run once per job by ``Pipeline.plan_file`` /
``Pipeline.vamp_samples``.

``OPTIONS`` says, for every option, its field path (``mask.periodic_period``), its ``vamp``/``batch`` flag, its
Gradio control and upstream app name, type, bounds, unit and help. Every front end is derived from it: the CLI's
arguments (``add_arguments``/``options_from_args``), batch manifests' per-file overrides (``apply_overrides``: field
paths and flag names), the Gradio app's controls, the web page's defaults and bounds (``web_schema``, written to
``vampnet_ort/web/options.json``) and the docs' option tables (``markdown_table``; tests compare them).

Standard library only: the CLI builds its parser from this module before numpy is imported.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .errors import MaskError, PipelineError

FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]  # the graphs take float32 scalars
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STEPS = 10_000
MAX_VARIATIONS = 64
MAX_FEEDBACK_STEPS = 100
MAX_TIME_STRETCH = 16
MAX_PITCH_SHIFT = 24  # semitones, the app's input pitch shift
MAX_OUTPUT_SAMPLE_RATE = 768_000
# Bounds of the mask options (beyond them every frame is kept anyway; they keep frame arithmetic in int64).
MAX_SECONDS = 86_400.0  # prefix / suffix: one day; beat width: one day in ms
MAX_INT_OPTION = 2**31 - 1  # periods, widths and codebook indices


def _check_probability(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise MaskError(f"{name} must be in [0, 1], got {value}")
    return value


# ---------------------------------------------------------------------------------------------- the dataclasses
@dataclass(frozen=True)
class SamplingOptions:
    """Settings of one decode stage (docs/SPEC.md section 2 / the decode graph inputs). Errors name no stage; built
    through ``with_values`` (the CLI, manifests, the app) they start with it ("coarse steps ...")."""

    steps: int = 36
    temperature: float = 1.0
    mask_temperature: float = 10.5
    top_p: float = 0.0  # <= 0 or >= 1: off
    typical_mass: float = 0.0  # <= 0: off (upstream's typical filter is a no-op, golden item 1)
    typical_min_tokens: int = 64
    sample_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if int(self.steps) < 1 or int(self.steps) > MAX_STEPS:
            raise PipelineError(f"steps must be between 1 and {MAX_STEPS}, got {self.steps}")
        for name in ("temperature", "mask_temperature", "top_p", "typical_mass", "sample_cutoff"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise PipelineError(f"{name.replace('_', ' ')} must be finite, got {value}")
            if abs(value) > FLOAT32_MAX:  # the graphs take float32: it would become infinite
                raise PipelineError(f"{name.replace('_', ' ')} must be at most {FLOAT32_MAX:.4g} in "
                                    f"magnitude (a float32), got {value:g}")
        if self.temperature < 0:
            raise PipelineError(f"temperature must be >= 0 (0 = argmax), got {self.temperature}")
        if self.mask_temperature < 0:
            raise PipelineError(f"mask temperature must be >= 0, got {self.mask_temperature}")
        if not 0.0 <= self.top_p <= 1.0:
            raise PipelineError(f"top-p must be in [0, 1] (0 or 1: off), got {self.top_p}")
        if not 0.0 <= self.typical_mass < 1.0:
            raise PipelineError(f"typical mass must be in [0, 1) (0: off), got {self.typical_mass}")
        if not 1 <= int(self.typical_min_tokens) <= INT64_MAX:
            raise PipelineError(f"typical min tokens must be between 1 and {INT64_MAX}, got "
                                f"{self.typical_min_tokens}")


@dataclass(frozen=True)
class MaskOptions:
    """The upstream app's mask controls (defaults = the app's defaults)."""

    intensity: float = 1.0  # P(regenerate) of the random starting mask
    prefix_s: float = 0.0  # keep this many seconds at the start
    suffix_s: float = 0.0  # keep this many seconds at the end
    periodic_period: int = 7  # keep every period-th frame (0: off)
    periodic_width: int = 1  # frames kept around each periodic frame (even -> width + 1, as upstream)
    periodic_random_roll: bool = True  # the app rolls the periodic pattern by a random offset
    onset_width: int = 0  # > 0: also keep frames around each detected onset
    beat_width_ms: float = 0.0  # > 0: also keep this much audio after each detected beat
    beat_downbeats_only: bool = False  # beat mask on downbeats only
    dropout: float = 0.0  # re-mask kept positions with this probability
    n_conditioning_codebooks: int = 0  # keep codebooks below this index everywhere
    upper_codebook_mask: int = 3  # regenerate every codebook >= this index everywhere

    def __post_init__(self) -> None:
        _check_probability(self.intensity, "mask intensity")
        _check_probability(self.dropout, "dropout")
        for name, label, high in (("prefix_s", "prefix (seconds)", MAX_SECONDS),
                                  ("suffix_s", "suffix (seconds)", MAX_SECONDS),
                                  ("beat_width_ms", "beat width (ms)", MAX_SECONDS * 1000.0)):
            value = float(getattr(self, name))
            if not math.isfinite(value) or not 0 <= value <= high:
                raise MaskError(f"{label} must be between 0 and {high:g}, got {value:g}")
        for name in ("periodic_period", "periodic_width", "onset_width", "n_conditioning_codebooks",
                     "upper_codebook_mask"):
            if not 0 <= int(getattr(self, name)) <= MAX_INT_OPTION:
                raise MaskError(f"{name.replace('_', ' ')} must be between 0 and {MAX_INT_OPTION}, "
                                f"got {getattr(self, name)}")

    def validate(self, n_codebooks: int) -> None:
        """The checks that need the model: codebook indices against its `n_codebooks`; the librosa extra when an
        onset or beat mask is asked for (before any work)."""
        if self.upper_codebook_mask > n_codebooks:
            raise MaskError(
                f"upper codebook mask {self.upper_codebook_mask} is beyond the model's {n_codebooks} codebooks"
            )
        if self.onset_width > 0 or self.beat_width_ms > 0:
            from .extras import require_librosa

            require_librosa()
        if self.n_conditioning_codebooks > n_codebooks:
            raise MaskError(
                f"conditioning codebooks {self.n_conditioning_codebooks} is beyond the model's {n_codebooks} codebooks"
            )


def _c2f_defaults() -> SamplingOptions:
    return SamplingOptions(steps=2)


@dataclass(frozen=True)
class VampOptions:
    """Everything a vamp run can be told; defaults are the upstream app's."""

    mask: MaskOptions = field(default_factory=MaskOptions)
    coarse: SamplingOptions = field(default_factory=SamplingOptions)
    c2f: SamplingOptions = field(default_factory=_c2f_defaults)
    use_c2f: bool = True  # False: keep the input's fine codebooks
    seed: int = 0
    variations: int = 1
    feedback_steps: int = 1
    time_stretch: int = 1

    def __post_init__(self) -> None:
        for name, kind in (("mask", MaskOptions), ("coarse", SamplingOptions), ("c2f", SamplingOptions)):
            if not isinstance(getattr(self, name), kind):
                raise PipelineError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if not INT64_MIN <= int(self.seed) <= INT64_MAX:
            raise PipelineError(f"seed must fit in a signed 64-bit integer, got {self.seed}")
        if not 1 <= int(self.variations) <= MAX_VARIATIONS:
            raise PipelineError(f"variations must be between 1 and {MAX_VARIATIONS}, got {self.variations}")
        if not 1 <= int(self.feedback_steps) <= MAX_FEEDBACK_STEPS:
            raise PipelineError(f"feedback steps must be between 1 and {MAX_FEEDBACK_STEPS}, got {self.feedback_steps}")
        if not 1 <= int(self.time_stretch) <= MAX_TIME_STRETCH:
            raise PipelineError(f"time stretch must be an integer between 1 and {MAX_TIME_STRETCH}, got {self.time_stretch}")

    def validate(self, n_codebooks: int) -> None:
        """The checks that need the model (``MaskOptions.validate``); everything else was checked when built."""
        self.mask.validate(n_codebooks)


# ---------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class AppControl:
    """How the Gradio app shows an option: a slider over [low, high] (high None: the model's codebook count),
    a checkbox (bool) or a number box (seed)."""

    label: str
    low: Optional[float] = None
    high: Optional[float] = None
    elem_id: Optional[str] = None


@dataclass(frozen=True)
class Option:
    """One vamp option as every front end sees it. `path` None: a front-end control with no VampOptions field
    (its default lives with that front end)."""

    path: Optional[str]  # VampOptions field path, "mask.periodic_period"
    kind: type  # int, float, bool or str
    help: str
    flag: Optional[str] = None  # `vamp` / `batch` flag
    metavar: Optional[str] = None
    group: str = ""  # CLI help group: "generation", "c2f", "mask", "output"
    negated: bool = False  # the flag is a switch that sets the field to False ("--no-c2f")
    mirrors: Tuple[str, ...] = ()  # fields the flag and the app set to the same value (c2f.top_p follows --top-p)
    low: Optional[float] = None  # the accepted range (what validation allows)
    high: Optional[float] = None
    high_open: bool = False  # high itself is refused
    unit: str = ""
    step: Optional[float] = None  # UI increment (web page, app sliders)
    control: Optional[str] = None  # the Gradio app's control = its /vamp API parameter
    app: Optional[AppControl] = None
    upstream: Optional[str] = None  # upstream VampNet app.py's name (api_vamp parameter / UI variable)

    @property
    def dest(self) -> Optional[str]:
        """The flag's argparse destination ("--mask-temperature" -> "mask_temperature")."""
        return None if self.flag is None else self.flag.lstrip("-").replace("-", "_")

    @property
    def paths(self) -> Tuple[str, ...]:
        return () if self.path is None else (self.path, *self.mirrors)

    @property
    def default(self) -> Any:
        """The default, read from ``VampOptions()`` (None for front-end-only controls)."""
        return None if self.path is None else get_path(VampOptions(), self.path)


_GEN, _C2F, _MASK, _OUT = "generation", "c2f", "mask", "output"
_FILTERS = ("c2f.top_p", "c2f.typical_mass", "c2f.typical_min_tokens")

OPTIONS: Tuple[Option, ...] = (
    # generation (coarse stage)
    Option("seed", int, "random seed: the same seed reproduces the output", flag="--seed", metavar="N", group=_GEN,
           low=INT64_MIN, high=INT64_MAX, step=1, control="seed", upstream="seed",
           app=AppControl("seed (0 = random)")),
    Option("coarse.steps", int, "coarse decoding steps (the upstream library's default is 12)", flag="--steps",
           metavar="N", group=_GEN, low=1, high=MAX_STEPS, step=1, control="sampling_steps",
           upstream="sampling_steps", app=AppControl("sampling steps", 1, 128)),
    Option("coarse.temperature", float, "sampling temperature; 0 = argmax", flag="--temperature", metavar="X",
           group=_GEN, low=0.0, high=FLOAT32_MAX, step=0.01, control="temperature", upstream="sampletemp",
           app=AppControl("sample temperature (0 = argmax)", 0.0, 10.0)),
    Option("coarse.mask_temperature", float, "temperature of the Gumbel noise that picks which tokens to re-mask",
           flag="--mask-temperature", metavar="X", group=_GEN, low=0.0, high=FLOAT32_MAX, step=0.1,
           control="mask_temperature", app=AppControl("mask temperature", 0.0, 100.0)),
    Option("coarse.top_p", float, "nucleus sampling threshold; 0 or 1 = off (both stages)", flag="--top-p",
           metavar="X", group=_GEN, mirrors=("c2f.top_p",), low=0.0, high=1.0, step=0.01, control="top_p",
           upstream="top_p", app=AppControl("top p (0 = off)", 0.0, 1.0)),
    Option("coarse.typical_mass", float,
           "typical filtering mass; 0 = off (both stages). Off reproduces upstream: its app shows typical "
           "filtering on (0.15) but its filter is a no-op; 0.15 enables a working filter",
           flag="--typical-mass", metavar="X", group=_GEN, mirrors=("c2f.typical_mass",), low=0.0, high=1.0,
           high_open=True, step=0.01, control="typical_mass", upstream="typical_mass",
           app=AppControl("typical mass", 0.01, 0.99)),
    Option("coarse.typical_min_tokens", int, "typical filtering keeps at least this many tokens (both stages)",
           flag="--typical-min-tokens", metavar="N", group=_GEN, mirrors=("c2f.typical_min_tokens",), low=1,
           high=INT64_MAX, step=1, control="typical_min_tokens", upstream="typical_min_tokens",
           app=AppControl("typical min tokens", 1, 256)),
    Option("coarse.sample_cutoff", float, "sample while step/steps <= this, argmax after; < 0 = always argmax",
           flag="--sample-cutoff", metavar="X", group=_GEN, low=-FLOAT32_MAX, high=FLOAT32_MAX, step=0.01,
           control="sample_cutoff", upstream="sample_cutoff",
           app=AppControl("sample cutoff (argmax after this fraction of the steps)", 0.0, 1.0)),
    Option("variations", int, "N outputs with seeds SEED..SEED+N-1 from one input in one batched run; OUTPUT "
           "becomes OUTPUT_0, OUTPUT_1, ...", flag="--variations", metavar="N", group=_GEN, low=1,
           high=MAX_VARIATIONS, step=1),
    Option("feedback_steps", int, "vamp passes: each pass re-vamps the previous output with a fresh mask",
           flag="--feedback-steps", metavar="N", group=_GEN, low=1, high=MAX_FEEDBACK_STEPS, step=1,
           control="feedback_steps", upstream="num_feedback_steps",
           app=AppControl("feedback steps (re-vamp the output; slower)", 1, 8)),
    Option("time_stretch", int, "integer factor: insert FACTOR-1 generated frames after every input frame (1 = off)",
           flag="--time-stretch", metavar="N", group=_GEN, low=1, high=MAX_TIME_STRETCH, step=1,
           control="time_stretch", upstream="stretch_factor", app=AppControl("time stretch factor", 1, 8)),
    # coarse-to-fine stage
    Option("c2f.steps", int, "c2f decoding steps", flag="--c2f-steps", metavar="N", group=_C2F, low=1,
           high=MAX_STEPS, step=1),
    Option("c2f.temperature", float, "c2f sampling temperature", flag="--c2f-temperature", metavar="X",
           group=_C2F, low=0.0, high=FLOAT32_MAX, step=0.01),
    Option("c2f.mask_temperature", float, "c2f mask temperature", flag="--c2f-mask-temperature", metavar="X",
           group=_C2F, low=0.0, high=FLOAT32_MAX, step=0.1),
    Option("c2f.sample_cutoff", float, "c2f sample cutoff", flag="--c2f-sample-cutoff", metavar="X", group=_C2F,
           low=-FLOAT32_MAX, high=FLOAT32_MAX, step=0.01),
    Option("use_c2f", bool, "skip the c2f stage: keep the input's fine codebooks", flag="--no-c2f", group=_C2F,
           negated=True, control="use_c2f", app=AppControl("use coarse-to-fine")),
    # mask
    Option("mask.intensity", float, "probability that a token starts masked, before the prompts below",
           flag="--intensity", metavar="X", group=_MASK, low=0.0, high=1.0, step=0.01,
           control="random_mask_intensity", app=AppControl("random mask intensity (< 1 scatters prompts)", 0.0, 1.0)),
    Option("mask.prefix_s", float, "keep this many seconds at the start", flag="--prefix", metavar="SECONDS",
           group=_MASK, low=0.0, high=MAX_SECONDS, unit="s", step=0.1, control="prefix_s",
           app=AppControl("prefix hint (s)", 0.0, 10.0)),
    Option("mask.suffix_s", float, "keep this many seconds at the end", flag="--suffix", metavar="SECONDS",
           group=_MASK, low=0.0, high=MAX_SECONDS, unit="s", step=0.1, control="suffix_s",
           app=AppControl("suffix hint (s)", 0.0, 10.0)),
    Option("mask.periodic_period", int, "periodic prompt: keep every PERIOD-th frame; 0 = off", flag="--period",
           metavar="N", group=_MASK, low=0, high=MAX_INT_OPTION, unit="frames", step=1, control="periodic_prompt",
           upstream="periodic_p",
           app=AppControl("periodic prompt (keep every N-th frame; 0 = off)", 0, 64, "periodic-prompt")),
    Option("mask.periodic_width", int, "frames kept at each periodic prompt; an even width keeps width+1 frames, "
           "as upstream", flag="--width", metavar="N", group=_MASK, low=0, high=MAX_INT_OPTION, unit="frames",
           step=1, control="periodic_width", app=AppControl("periodic prompt width (frames, 1 frame ~ 17 ms)", 1, 20)),
    Option("mask.periodic_random_roll", bool, "do not shift the periodic prompt by a random offset (upstream's app "
           "rolls it)", flag="--no-random-roll", group=_MASK, negated=True),
    Option("mask.onset_width", int, "also keep WIDTH frames before and after each detected onset (librosa); 0 = off",
           flag="--onset-width", metavar="N", group=_MASK, low=0, high=MAX_INT_OPTION, unit="frames", step=1,
           control="onset_mask_width", upstream="onset_mask_width",
           app=AppControl("onset mask width (frames; 0 = off; not in the preview)", 0, 100, "onset-mask-width")),
    Option("mask.beat_width_ms", float, "also keep MS milliseconds after each detected beat (librosa beat tracking "
           "in place of upstream's WaveBeat); 0 = off", flag="--beat-width", metavar="MS", group=_MASK, low=0.0,
           high=MAX_SECONDS * 1000.0, unit="ms", step=1, control="beat_mask_ms", upstream="beat_mask_ms",
           app=AppControl("beat mask width (ms; 0 = off; not in the preview)", 0, 200, "beat-mask-ms")),
    Option("mask.beat_downbeats_only", bool, "beat mask on downbeats only (approximated as every 4th beat)",
           flag="--downbeats-only", group=_MASK, control="downbeats_only",
           app=AppControl("beat mask: downbeats only")),
    Option("mask.dropout", float, "re-mask each kept token with this probability", flag="--dropout", metavar="X",
           group=_MASK, low=0.0, high=1.0, step=0.01, control="dropout", upstream="dropout",
           app=AppControl("mask dropout", 0.0, 1.0, "dropout")),
    Option("mask.n_conditioning_codebooks", int, "keep codebooks below this index everywhere",
           flag="--conditioning-codebooks", metavar="N", group=_MASK, low=0, high=MAX_INT_OPTION, step=1,
           control="conditioning_codebooks", app=AppControl("conditioning codebooks (kept everywhere)", 0, None)),
    Option("mask.upper_codebook_mask", int, "regenerate every codebook >= this index everywhere",
           flag="--upper-codebook-mask", metavar="N", group=_MASK, low=0, high=MAX_INT_OPTION, step=1,
           control="compression_prompt", upstream="n_mask_codebooks",
           app=AppControl("compression prompt (regenerate codebooks >= N)", 1, None, "compression-prompt")),
    # front-end controls with no VampOptions field
    Option(None, int, "pitch shift of the input before encoding (librosa), the app's", low=-MAX_PITCH_SHIFT,
           high=MAX_PITCH_SHIFT, unit="semitones", step=1, control="pitch_shift", upstream="pitch_shift_amt",
           app=AppControl("pitch shift of the input (semitones)", -12, 12)),
    Option(None, bool, "typical filtering on (with the typical mass) or off (mass 0), the app's",
           control="typical_filtering", upstream="typical_filtering", app=AppControl("typical filtering")),
    Option(None, str, "which model (fine-tune) to vamp with, by name: a bundle the app serves (the app's and "
           "upstream's model choice)", upstream="model_choice"),
)

# Options of a batch file that are not VampOptions fields (a manifest may override them per file).
OUTPUT_SAMPLE_RATE = Option(None, int, "resample the output to this rate (default: the codec's rate, 44100 Hz for "
                            "VampNet)", flag="--output-sample-rate", metavar="HZ", group=_OUT, low=1,
                            high=MAX_OUTPUT_SAMPLE_RATE, unit="Hz", step=1)
# `vamp` options that describe the run, not one file: never a per-file override.
RUN_LEVEL_OPTIONS = frozenset({"plot", "threads", "quiet", "verbose", "models"})

GROUP_TITLES = {
    _GEN: "generation (coarse stage; defaults = upstream app)",
    _C2F: "coarse-to-fine stage (defaults = upstream)",
    _MASK: "mask (1 = regenerate; defaults = upstream app)",
}


def field_options() -> Tuple[Option, ...]:
    """The rows that set VampOptions fields."""
    return tuple(o for o in OPTIONS if o.path is not None)


def by_control() -> Dict[str, Option]:
    return {o.control: o for o in OPTIONS if o.control is not None}


def by_upstream() -> Dict[str, Option]:
    """Upstream app.py's parameter names -> rows (``sampletemp``, ``periodic_p``, ``n_mask_codebooks``, ...)."""
    return {o.upstream: o for o in OPTIONS if o.upstream is not None}


# ---------------------------------------------------------------------------------------------- field paths
def get_path(options: Any, path: str) -> Any:
    value = options
    for part in path.split("."):
        value = getattr(value, part)
    return value


def with_values(base: VampOptions, values: Mapping[str, Any]) -> VampOptions:
    """`base` with the fields at `values`' paths replaced; validated once (a sampling error names its stage)."""
    groups: Dict[str, Dict[str, Any]] = {"mask": {}, "coarse": {}, "c2f": {}}
    top: Dict[str, Any] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            if head not in groups or rest not in {f.name for f in fields(type(getattr(base, head)))}:
                raise PipelineError(f"unknown option field {path!r}")
            groups[head][rest] = value
        else:
            if path not in {f.name for f in fields(VampOptions)} or path in groups:
                raise PipelineError(f"unknown option field {path!r}")
            top[path] = value
    for stage in ("coarse", "c2f"):
        if groups[stage]:
            try:
                top[stage] = replace(getattr(base, stage), **groups[stage])
            except PipelineError as exc:
                raise PipelineError(f"{stage} {exc}") from None
    if groups["mask"]:
        top["mask"] = replace(base.mask, **groups["mask"])
    return replace(base, **top) if top else base


# ---------------------------------------------------------------------------------------------- plain data
def options_to_json(options: VampOptions) -> Dict[str, Any]:
    """The options as JSON-able nested data (field names as in the dataclasses): the one serialised form the batch
    path carries (queues, Ray rows)."""
    return asdict(options)


def options_from_json(data: Mapping[str, Any]) -> VampOptions:
    """Inverse of ``options_to_json``; missing fields take the defaults, unknown ones are refused."""
    if not isinstance(data, Mapping):
        raise PipelineError(f"options must be an object, got {type(data).__name__}")
    values: Dict[str, Any] = {}
    for key, value in data.items():
        if key in ("mask", "coarse", "c2f"):
            if not isinstance(value, Mapping):
                raise PipelineError(f"options {key} must be an object, got {type(value).__name__}")
            values.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            values[key] = value
    return with_values(VampOptions(), values)


# ---------------------------------------------------------------------------------------------- command line
def _default_text(option: Option) -> str:
    value = OUTPUT_SAMPLE_RATE.default if option.path is None else option.default
    return "" if option.negated or option.kind is bool or value is None else f" (default {value})"


def add_arguments(parser: argparse.ArgumentParser, *, groups: Iterable[str] = (_GEN, _C2F, _MASK)) -> None:
    """The option flags of ``vamp`` / ``batch``, one argument group per table group; defaults from VampOptions."""
    for group in groups:
        g = parser.add_argument_group(GROUP_TITLES[group])
        for option in OPTIONS:
            if option.group != group or option.flag is None:
                continue
            if option.kind is bool:
                g.add_argument(option.flag, action="store_true", help=option.help)
            else:
                g.add_argument(option.flag, type=option.kind, metavar=option.metavar, default=option.default,
                               help=option.help + _default_text(option))


def add_output_sample_rate(parser: Any) -> None:
    o = OUTPUT_SAMPLE_RATE
    parser.add_argument(o.flag, type=o.kind, metavar=o.metavar, help=o.help)


def _flag_value(option: Option, value: Any) -> Any:
    """The field value a flag's parsed value means (a switch sets a negated field to False)."""
    if option.kind is bool:
        return (not bool(value)) if option.negated else bool(value)
    return value


def options_from_args(args: argparse.Namespace, base: Optional[VampOptions] = None) -> VampOptions:
    """The VampOptions that parsed ``vamp``/``batch`` arguments ask for (validated once)."""
    values: Dict[str, Any] = {}
    for option in OPTIONS:
        if option.flag is None or option.path is None:
            continue
        value = _flag_value(option, getattr(args, option.dest))
        for path in option.paths:
            values[path] = value
    return with_values(base or VampOptions(), values)


# ---------------------------------------------------------------------------------------------- overrides
class OverrideError(ValueError):
    """A per-file override with an unknown name or an impossible value."""


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def override_names() -> List[str]:
    """The names a manifest may use: the flags' names (``period``, ``no_random_roll``, ``output_sample_rate``);
    field paths (``mask.periodic_period``) are accepted too."""
    return sorted([o.dest for o in OPTIONS if o.dest is not None and o.path is not None] + [OUTPUT_SAMPLE_RATE.dest])


def _lookup(raw_name: Any) -> Tuple[str, Option, bool]:
    """(normalised name, row, is a field path)."""
    text = str(raw_name).strip()
    for option in OPTIONS:
        if option.path is not None and text in option.paths:
            return text, option, True
    name = text.lstrip("-").replace("-", "_")
    for option in (*OPTIONS, OUTPUT_SAMPLE_RATE):
        if option.dest == name and (option.path is not None or option is OUTPUT_SAMPLE_RATE):
            return name, option, False
    hint = " (a run-level option: give it on the command line)" if name in RUN_LEVEL_OPTIONS else ""
    raise OverrideError(f"unknown option '{raw_name}'{hint}; known: {', '.join(override_names())} "
                        "(or a field path such as mask.periodic_period)")


def convert_value(option: Option, name: str, value: Any) -> Any:
    """`value` (a manifest cell: text, or a JSON value) as `option`'s type; None -> the default."""
    if option.kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise OverrideError(f"{name}: expected true or false, got {value!r}")
    if value is None:
        return OUTPUT_SAMPLE_RATE.default if option.path is None else option.default
    if isinstance(value, bool):
        raise OverrideError(f"{name}: expected a number, got {value!r}")
    convert = option.kind
    if convert is int and isinstance(value, float):
        if not value.is_integer():
            raise OverrideError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    try:
        return convert(str(value).strip()) if isinstance(value, str) else convert(value)
    except (TypeError, ValueError, OverflowError):
        raise OverrideError(f"{name}: invalid {convert.__name__} value {value!r}") from None


@dataclass(frozen=True)
class Overrides:
    """Checked per-file overrides: VampOptions field values by path, and the output sample rate when given."""

    fields: Tuple[Tuple[str, Any], ...] = ()
    output_sample_rate: Optional[Tuple[Optional[int]]] = None  # (rate,) when overridden

    @property
    def names(self) -> frozenset:
        return frozenset(path for path, _ in self.fields)

    def apply(self, options: VampOptions) -> VampOptions:
        return with_values(options, dict(self.fields)) if self.fields else options


def parse_overrides(overrides: Mapping[str, Any]) -> Overrides:
    """Names and types of a manifest row's overrides (flag names with '-' or '_', or field paths); option ranges
    are checked when they are applied."""
    values: Dict[str, Any] = {}
    rate: Optional[Tuple[Optional[int]]] = None
    for raw_name, raw_value in overrides.items():
        name, option, is_path = _lookup(raw_name)
        value = convert_value(option, name, raw_value)
        if option is OUTPUT_SAMPLE_RATE:
            rate = (value,)
            continue
        if is_path:
            values[name] = value
        else:
            value = _flag_value(option, value)
            for path in option.paths:
                values[path] = value
    return Overrides(tuple(values.items()), rate)


def apply_overrides(options: VampOptions, overrides: Mapping[str, Any]) -> VampOptions:
    """`options` with a manifest row's `overrides` (see ``parse_overrides``), validated."""
    return parse_overrides(overrides).apply(options)


def check_output_sample_rate(rate: Optional[int]) -> None:
    if rate is not None and not 1 <= int(rate) <= MAX_OUTPUT_SAMPLE_RATE:
        raise PipelineError(f"output sample rate must be between 1 and {MAX_OUTPUT_SAMPLE_RATE} Hz, got {rate}")


# ---------------------------------------------------------------------------------------------- web page, docs
def _bound(value: Optional[float]) -> Optional[Union[int, float, str]]:
    if value is None:
        return None
    if isinstance(value, int) and abs(value) > 2**53:  # not exact as a JS number: as text
        return str(value)
    return value


def web_schema() -> Dict[str, Any]:
    """What the web page reads (``vampnet_ort/web/options.json``): VampOptions' defaults, and per field path its
    type, bounds and UI step; the limits its validation messages quote."""
    bounds: Dict[str, Any] = {}
    for option in field_options():
        for path in option.paths:
            bounds[path] = {"type": option.kind.__name__, "min": _bound(option.low), "max": _bound(option.high),
                            "max_open": option.high_open, "step": option.step, "unit": option.unit}
    limits = {"FLOAT32_MAX": FLOAT32_MAX, "INT64_MAX": str(INT64_MAX), "MAX_STEPS": MAX_STEPS,
              "MAX_VARIATIONS": MAX_VARIATIONS, "MAX_FEEDBACK_STEPS": MAX_FEEDBACK_STEPS,
              "MAX_TIME_STRETCH": MAX_TIME_STRETCH, "MAX_SECONDS": MAX_SECONDS, "MAX_INT_OPTION": MAX_INT_OPTION,
              "MAX_SECONDS_TEXT": f"{MAX_SECONDS:g}", "MAX_BEAT_MS_TEXT": f"{MAX_SECONDS * 1000.0:g}"}
    return {"generated_by": "python -m vampnet_ort.options --web-json vampnet_ort/web/options.json",
            "defaults": options_to_json(VampOptions()), "bounds": bounds, "limits": limits}


def web_schema_text() -> str:
    return json.dumps(web_schema(), indent=1) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float) and value == FLOAT32_MAX:
        return "float32 max"
    if isinstance(value, float) and value == -FLOAT32_MAX:
        return "-float32 max"
    if value == INT64_MAX:
        return "2^63-1"
    if value == INT64_MIN:
        return "-2^63"
    if value == MAX_INT_OPTION:
        return "2^31-1"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(option: Option) -> str:
    if option.kind is bool or option.low is None:
        return ""
    return f"[{_cell(option.low)}, {_cell(option.high)}{')' if option.high_open else ']'}"


def markdown_table(group: str) -> str:
    """The docs table of one CLI group (docs/PIPELINE.md embeds them; tests/test_options.py compares)."""
    rows = ["| flag | field | default | range | upstream app | help |", "|---|---|---|---|---|---|"]
    for option in OPTIONS:
        if option.group != group or option.flag is None:
            continue
        flag = f"`{option.flag}`" if option.kind is bool else f"`{option.flag} {option.metavar}`"
        paths = ", ".join(f"`{p}`" for p in option.paths) or "(run)"
        if option.path is None:
            default = "codec rate"
        elif option.negated:
            default = ""
        else:
            default = _cell(option.default)
        unit = f" {option.unit}" if option.unit and option.low is not None else ""
        upstream = f"`{option.upstream}`" if option.upstream else ""
        rows.append(f"| {flag} | {paths} | {default} | {_range(option)}{unit} | {upstream} | {option.help} |")
    return "\n".join(rows) + "\n"


def app_table() -> str:
    """The docs table of the app's controls: /vamp parameter, upstream name, field."""
    rows = ["| app control (/vamp parameter) | upstream app name | field | app range |", "|---|---|---|---|"]
    for option in OPTIONS:
        if option.control is None and option.upstream is None:
            continue
        control = f"`{option.control}`" if option.control else "(none)"
        upstream = f"`{option.upstream}`" if option.upstream else ""
        paths = ", ".join(f"`{p}`" for p in option.paths) or "(front end)"
        app = option.app
        rng = "" if app is None or app.low is None else f"{_cell(app.low)} .. {'codebooks' if app.high is None else _cell(app.high)}"
        rows.append(f"| {control} | {upstream} | {paths} | {rng} |")
    return "\n".join(rows) + "\n"


DOC_TABLES = {"generation": "docs/PIPELINE.md", "c2f": "docs/PIPELINE.md", "mask": "docs/PIPELINE.md",
              "app": "docs/APP.md"}


def doc_table(name: str) -> str:
    return app_table() if name == "app" else markdown_table(name)


def doc_block(name: str) -> str:
    """The generated block for table `name` as it stands in the docs, markers included."""
    return (f"<!-- BEGIN options:{name} (generated by python -m vampnet_ort.options --update-docs .) -->\n"
            f"{doc_table(name)}<!-- END options:{name} -->")


def update_docs(root: str) -> List[str]:
    """Rewrite the generated option tables in the docs under `root`; returns the files changed."""
    import os
    import re

    changed = []
    for name, relative in DOC_TABLES.items():
        path = os.path.join(root, relative)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        pattern = re.compile(rf"<!-- BEGIN options:{name} .*?<!-- END options:{name} -->", re.S)
        if not pattern.search(text):
            raise ValueError(f"{path}: no generated block for options:{name}")
        new = pattern.sub(lambda _: doc_block(name), text)
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            changed.append(path)
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vampnet_ort.options",
                                     description="Write what the front ends derive from the option table.")
    parser.add_argument("--web-json", metavar="PATH", help="write the web page's options.json here")
    parser.add_argument("--markdown", choices=tuple(DOC_TABLES), help="print a docs table")
    parser.add_argument("--update-docs", metavar="ROOT", help="rewrite the generated tables of the docs under ROOT")
    args = parser.parse_args(argv)
    if args.update_docs:
        for path in update_docs(args.update_docs):
            print(path)
    if args.web_json:
        with open(args.web_json, "w", encoding="utf-8") as fh:
            fh.write(web_schema_text())
    if args.markdown:
        print(doc_table(args.markdown), end="")
    return 0


__all__ = [
    "SamplingOptions", "MaskOptions", "VampOptions", "Option", "AppControl", "OPTIONS", "OUTPUT_SAMPLE_RATE",
    "OverrideError", "Overrides", "PipelineError", "MaskError", "add_arguments", "options_from_args",
    "apply_overrides", "parse_overrides", "override_names", "options_to_json", "options_from_json", "with_values",
    "get_path", "web_schema", "markdown_table", "app_table", "check_output_sample_rate",
]

if __name__ == "__main__":
    raise SystemExit(main())
