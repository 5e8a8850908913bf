"""Vamp options for a batch: the ``vamp`` command's own option table, per-file overrides, and a plain-data form.

Per-file overrides (manifest columns) use the ``vamp`` command's option names (``seed``, ``period``,
``onset_width`` or ``onset-width``, ``no_random_roll`` ...). They are converted and checked with the very argparse
definitions and ``VampOptions`` builder the ``vamp`` command uses (``vampnet_ort.cli``), so a manifest value means
exactly what the same flag means on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict, Mapping, Optional

from ..masks import MaskOptions
from ..pipeline import PipelineError, SamplingOptions, VampOptions

# Options of `vamp` that describe the run, not one file: never a per-file override.
RUN_LEVEL_OPTIONS = frozenset({"plot", "threads", "quiet"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class OverrideError(ValueError):
    """A per-file override with an unknown name or an impossible value."""


def _vamp_parser() -> argparse.ArgumentParser:
    from ..cli import _add_vamp_options

    parser = argparse.ArgumentParser(add_help=False)
    _add_vamp_options(parser)
    return parser


def _override_actions() -> Dict[str, argparse.Action]:
    return {a.dest: a for a in _vamp_parser()._actions if a.dest not in RUN_LEVEL_OPTIONS}


def override_names() -> list[str]:
    """The names a manifest may override (the ``vamp`` options' argparse destinations)."""
    return sorted(_override_actions())


def default_namespace() -> argparse.Namespace:
    """The ``vamp`` command's defaults, as parsed arguments."""
    return _vamp_parser().parse_args([])


def options_from_namespace(args: argparse.Namespace) -> VampOptions:
    from ..cli import _vamp_options

    return _vamp_options(args)


def namespace_from_options(options: VampOptions) -> argparse.Namespace:
    """The ``vamp`` arguments that build `options` (inverse of the CLI's builder; c2f's top-p and typical
    filtering follow the coarse stage's, as on the command line)."""
    if (options.c2f.top_p, options.c2f.typical_mass, options.c2f.typical_min_tokens) != (
            options.coarse.top_p, options.coarse.typical_mass, options.coarse.typical_min_tokens):
        raise OverrideError("per-file overrides need the c2f stage's top-p and typical filtering equal to the "
                            "coarse stage's (as the vamp command sets them)")
    m, c, f = options.mask, options.coarse, options.c2f
    ns = default_namespace()
    values = dict(
        seed=options.seed, steps=c.steps, temperature=c.temperature, mask_temperature=c.mask_temperature,
        top_p=c.top_p, typical_mass=c.typical_mass, typical_min_tokens=c.typical_min_tokens,
        sample_cutoff=c.sample_cutoff, variations=options.variations, feedback_steps=options.feedback_steps,
        time_stretch=options.time_stretch, c2f_steps=f.steps, c2f_temperature=f.temperature,
        c2f_mask_temperature=f.mask_temperature, c2f_sample_cutoff=f.sample_cutoff, no_c2f=not options.use_c2f,
        intensity=m.intensity, prefix=m.prefix_s, suffix=m.suffix_s, period=m.periodic_period,
        width=m.periodic_width, no_random_roll=not m.periodic_random_roll, onset_width=m.onset_width,
        beat_width=m.beat_width_ms, downbeats_only=m.beat_downbeats_only, dropout=m.dropout,
        conditioning_codebooks=m.n_conditioning_codebooks, upper_codebook_mask=m.upper_codebook_mask,
    )
    for name, value in values.items():
        setattr(ns, name, value)
    return ns


def _convert(action: argparse.Action, name: str, value: Any) -> Any:
    if action.nargs == 0:  # store_true flags
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise OverrideError(f"{name}: expected true or false, got {value!r}")
    if value is None:
        return action.default
    if isinstance(value, bool):
        raise OverrideError(f"{name}: expected a number, got {value!r}")
    convert = action.type or str
    if convert is int and isinstance(value, float):
        if not value.is_integer():
            raise OverrideError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    try:
        return convert(str(value).strip()) if isinstance(value, str) else convert(value)
    except (TypeError, ValueError):
        kind = getattr(convert, "__name__", "value")
        raise OverrideError(f"{name}: invalid {kind} value {value!r}") from None


def apply_overrides(base: argparse.Namespace, overrides: Mapping[str, Any]) -> argparse.Namespace:
    """A copy of `base` with `overrides` (names as in ``override_names``, '-' or '_') converted and set."""
    actions = _override_actions()
    ns = argparse.Namespace(**vars(base))
    for raw_name, value in overrides.items():
        name = str(raw_name).strip().lstrip("-").replace("-", "_")
        if name not in actions:
            hint = " (a run-level option: give it on the command line)" if name in RUN_LEVEL_OPTIONS else ""
            raise OverrideError(f"unknown option '{raw_name}'{hint}; known: {', '.join(sorted(actions))}")
        setattr(ns, name, _convert(actions[name], name, value))
    return ns


def check_output_sample_rate(rate: Optional[int]) -> None:
    if rate is not None and not 1 <= int(rate) <= 768_000:
        raise PipelineError(f"output sample rate must be between 1 and 768000 Hz, got {rate}")


# ---------------------------------------------------------------- plain data (queues, Ray rows, JSON)
def options_to_dict(options: VampOptions) -> Dict[str, Any]:
    return dataclasses.asdict(options)


def options_from_dict(data: Mapping[str, Any]) -> VampOptions:
    values = dict(data)
    return VampOptions(
        mask=MaskOptions(**values.pop("mask")),
        coarse=SamplingOptions(**values.pop("coarse")),
        c2f=SamplingOptions(**values.pop("c2f")),
        **values,
    )
