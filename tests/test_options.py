"""The one option table (``vampnet_ort.options``) against everything derived from it: the dataclass defaults are the
only ones; the CLI, manifests, the app, the web page's JSON and the docs' tables agree with them; the table's bounds
are exactly what validation accepts. No model, no subprocess: a few seconds."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from vampnet_ort import MaskOptions, SamplingOptions, VampOptions
from vampnet_ort import options as opt
from vampnet_ort.app import CONTROL_NAMES, Controls, options_from_controls
from vampnet_ort.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "vampnet_ort" / "web"

# Upstream VampNet's app.py (hugofloresgarcia/vampnet, main): the parameters of `api_vamp` after input_audio, read
# from its source. The harp branch builds the drop-in /vamp_1 endpoint from these names.
UPSTREAM_API_VAMP = ("sampletemp", "top_p", "periodic_p", "dropout", "stretch_factor", "onset_mask_width",
                     "typical_filtering", "typical_mass", "typical_min_tokens", "seed", "model_choice",
                     "n_mask_codebooks", "pitch_shift_amt", "sample_cutoff", "sampling_steps", "beat_mask_ms",
                     "num_feedback_steps")


def test_the_old_import_paths_still_work() -> None:
    from vampnet_ort import masks, pipeline

    assert pipeline.VampOptions is VampOptions and pipeline.SamplingOptions is SamplingOptions
    assert masks.MaskOptions is MaskOptions is opt.MaskOptions


def test_options_are_frozen_and_validated_as_built() -> None:
    o = VampOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.seed = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="variations must be between 1 and 64"):
        VampOptions(variations=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        MaskOptions(dropout=2.0)
    with pytest.raises(ValueError, match="^coarse steps must be between 1 and 10000"):
        opt.with_values(VampOptions(), {"coarse.steps": 0})  # built from values, a sampling error names its stage
    with pytest.raises(ValueError, match="upper codebook mask 15 is beyond the model's 14 codebooks"):
        MaskOptions(upper_codebook_mask=15).validate(14)  # what needs the model: at plan time


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_cli_defaults_are_the_dataclass_defaults() -> None:
    assert opt.options_from_args(_parse("vamp", "in.wav", "out.wav")) == VampOptions()
    assert opt.options_from_args(_parse("batch", "in", "--out", "o")) == VampOptions()


def test_every_flag_is_a_table_row_and_sets_its_fields() -> None:
    parser = build_parser()
    vamp = next(a for a in parser._subparsers._actions if a.dest == "command").choices["vamp"]  # type: ignore[union-attr]
    flags = {s for a in vamp._actions for s in a.option_strings if s.startswith("--")}
    table_flags = {o.flag for o in opt.OPTIONS if o.flag} | {opt.OUTPUT_SAMPLE_RATE.flag}
    runtime = {"--help", "--models", "--plot", "--threads", "--quiet", "--verbose"}
    assert flags == table_flags | runtime
    for option in opt.field_options():
        if option.flag is None:
            continue
        if option.kind is bool:
            args = _parse("vamp", "i", "o", option.flag)
            expected = not option.default
        else:
            low = option.low if option.low is not None and math.isfinite(option.low) else 0
            expected = option.kind(low) if low != option.default else option.kind(low) + option.kind(1)
            if option.high is not None and expected > option.high or (option.high_open and expected >= option.high):
                expected = option.kind(low)
            args = _parse("vamp", "i", "o", f"{option.flag}={expected}")
        built = opt.options_from_args(args)
        for path in option.paths:
            assert opt.get_path(built, path) == expected, (option.flag, path)


def _beyond(value: float, kind: type, up: bool) -> float:
    if kind is int:
        return int(value) + (1 if up else -1)
    return math.nextafter(float(value), math.inf if up else -math.inf)


@pytest.mark.parametrize("option", [o for o in opt.field_options() if o.low is not None], ids=lambda o: o.path)
def test_table_bounds_are_what_validation_accepts(option: opt.Option) -> None:
    build = lambda v: opt.with_values(VampOptions(), {p: v for p in option.paths})  # noqa: E731
    build(option.kind(option.low))
    with pytest.raises(ValueError):
        build(_beyond(option.low, option.kind, up=False))
    if option.high_open:
        with pytest.raises(ValueError):
            build(option.kind(option.high))
        build(_beyond(option.high, option.kind, up=False))
    else:
        build(option.kind(option.high))
        with pytest.raises(ValueError):
            build(_beyond(option.high, option.kind, up=True))


def test_overrides_take_flag_names_and_field_paths() -> None:
    o = opt.apply_overrides(VampOptions(), {"period": "5", "onset-width": 2, "--no-c2f": "yes", "coarse.steps": 3,
                                           "mask.upper_codebook_mask": 4.0})
    assert (o.mask.periodic_period, o.mask.onset_width, o.use_c2f, o.coarse.steps, o.mask.upper_codebook_mask) == \
        (5, 2, False, 3, 4)
    assert opt.parse_overrides({"output_sample_rate": "22050"}).output_sample_rate == (22050,)
    with pytest.raises(opt.OverrideError, match="unknown option 'perod'.*period.*mask.periodic_period"):
        opt.parse_overrides({"perod": 3})
    with pytest.raises(opt.OverrideError, match="run-level option"):
        opt.parse_overrides({"threads": 2})
    with pytest.raises(opt.OverrideError, match="invalid int value 'three'"):
        opt.parse_overrides({"period": "three"})
    with pytest.raises(opt.OverrideError, match="expected an integer"):
        opt.parse_overrides({"seed": 1.5})


def test_json_round_trip_refuses_unknown_fields() -> None:
    o = opt.with_values(VampOptions(), {"mask.dropout": 0.25, "c2f.steps": 3, "seed": -7})
    assert opt.options_from_json(json.loads(json.dumps(opt.options_to_json(o)))) == o
    with pytest.raises(ValueError, match="unknown option field 'mask.perod'"):
        opt.options_from_json({"mask": {"perod": 3}})


def test_app_controls_follow_the_table() -> None:
    table = opt.by_control()
    assert set(CONTROL_NAMES) == set(table)
    defaults = Controls()
    for name, option in table.items():
        if option.path is not None and name != "typical_mass":  # the app's mass when typical filtering is on
            assert getattr(defaults, name) == option.default, name
    assert options_from_controls(defaults, 0) == VampOptions(variations=2)


def test_upstream_names_are_upstream_app_parameters() -> None:
    assert set(opt.by_upstream()) == set(UPSTREAM_API_VAMP)
    assert opt.by_upstream()["periodic_p"].path == "mask.periodic_period"
    assert opt.by_upstream()["n_mask_codebooks"].path == "mask.upper_codebook_mask"
    assert opt.by_upstream()["sampletemp"].path == "coarse.temperature"
    assert opt.by_upstream()["stretch_factor"].path == "time_stretch"


def test_web_json_is_current_and_the_page_states_no_option_value() -> None:
    assert (WEB / "options.json").read_text(encoding="utf-8") == opt.web_schema_text(), \
        "regenerate: python -m vampnet_ort.options --web-json vampnet_ort/web/options.json"
    html = (WEB / "index.html").read_text(encoding="utf-8")
    controls = re.findall(r"<input [^>]*data-option=\"([^\"]+)\"[^>]*>", html)
    assert len(controls) >= 20
    for tag in re.findall(r"<input [^>]*data-option=[^>]*>", html):
        assert not re.search(r"\s(value|min|max|step|checked)\b", tag), tag
    for path in controls:
        opt.get_path(VampOptions(), path)  # every control names a real field
    for name in ("options.js", "masks.js"):
        js = (WEB / name).read_text(encoding="utf-8")
        assert "10.5" not in js and "mask_temperature: " not in js and "periodic_period: 7" not in js, name


@pytest.mark.parametrize("name", sorted(opt.DOC_TABLES))
def test_docs_tables_are_the_table(name: str) -> None:
    text = (ROOT / opt.DOC_TABLES[name]).read_text(encoding="utf-8")
    assert opt.doc_block(name) in text, "regenerate: python -m vampnet_ort.options --update-docs ."
