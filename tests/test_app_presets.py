"""The app's presets and defaults: docs/APP.md's presets table = ``app_presets.PRESETS`` = the ``VampOptions`` each
preset gives; the UI's defaults = ``VampOptions()`` (upstream's app defaults). No Gradio needed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vampnet_ort.app import N_OUTPUTS, Controls, options_from_controls, preset_controls
from vampnet_ort.app_presets import PRESETS, apply_preset
from vampnet_ort.pipeline import VampOptions

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "APP.md"
FIELDS = ("periodic_period", "upper_codebook_mask", "onset_width", "dropout", "beat_width_ms")


def _documented(doc: Path = DOC) -> dict:
    text = doc.read_text()
    table = text.split("<!-- presets-table -->")[1].split("<!-- /presets-table -->")[0]
    rows = [line.strip().strip("|").split("|") for line in table.strip().splitlines()[2:]]
    return {cells[0].strip(): tuple(float(c) for c in cells[1:]) for cells in rows}


def test_documented_presets_are_the_presets() -> None:
    documented = _documented()
    assert list(documented) == list(PRESETS)
    assert len(documented) == 8
    assert _documented(ROOT / "README.md") == documented  # the README's copy of the table


@pytest.mark.parametrize("name", list(_documented()))
def test_preset_gives_the_documented_vamp_options(name: str) -> None:
    values = dict(zip(FIELDS, _documented()[name]))
    base = VampOptions(seed=4, variations=2)
    options = apply_preset(name, base)
    expected = replace(base, mask=replace(base.mask, **{k: type(getattr(base.mask, k))(v) for k, v in values.items()}))
    assert options == expected
    # through the UI: the preset sets five controls, the click builds the same VampOptions
    controls = preset_controls(name, Controls(seed=4))
    assert options_from_controls(controls, 4) == expected
    # everything but those five controls is left as it was
    changed = replace(Controls(), prefix_s=1.5, sampling_steps=12, seed=9)
    after = preset_controls(name, changed)
    assert (after.prefix_s, after.sampling_steps, after.seed) == (1.5, 12, 9)


def test_upstream_preset_values() -> None:  # spot checks against upstream app.py (main), read by hand
    assert PRESETS["timbre transfer"].periodic_prompt == 2 and PRESETS["timbre transfer"].compression_prompt == 1
    assert PRESETS["large variation"].dropout == 0.2
    assert PRESETS["large variation (follow beat)"].beat_mask_ms == 80


def test_ui_defaults_are_the_pipeline_defaults() -> None:
    options = options_from_controls(Controls(), 123)
    assert options == VampOptions(seed=123, variations=N_OUTPUTS)


def test_controls_map_to_their_fields() -> None:
    c = Controls(periodic_prompt=13, periodic_width=3, onset_mask_width=2, beat_mask_ms=40, downbeats_only=True,
                 compression_prompt=5, dropout=0.1, random_mask_intensity=0.9, prefix_s=0.5, suffix_s=0.25,
                 conditioning_codebooks=1, feedback_steps=2, time_stretch=3, sampling_steps=12, temperature=0.8,
                 mask_temperature=5.0, top_p=0.9, typical_filtering=True, typical_mass=0.2, typical_min_tokens=10,
                 sample_cutoff=0.5, use_c2f=False)
    o = options_from_controls(c, 7)
    m = o.mask
    assert (m.periodic_period, m.periodic_width, m.onset_width, m.beat_width_ms, m.beat_downbeats_only) == (13, 3, 2, 40, True)
    assert (m.upper_codebook_mask, m.dropout, m.intensity, m.prefix_s, m.suffix_s) == (5, 0.1, 0.9, 0.5, 0.25)
    assert m.n_conditioning_codebooks == 1 and m.periodic_random_roll
    assert (o.feedback_steps, o.time_stretch, o.use_c2f, o.seed, o.variations) == (2, 3, False, 7, 2)
    k = o.coarse
    assert (k.steps, k.temperature, k.mask_temperature, k.top_p, k.typical_mass, k.typical_min_tokens,
            k.sample_cutoff) == (12, 0.8, 5.0, 0.9, 0.2, 10, 0.5)
    f = o.c2f
    assert (f.steps, f.top_p, f.typical_mass, f.typical_min_tokens) == (2, 0.9, 0.2, 10)
    assert options_from_controls(replace(c, typical_filtering=False), 7).coarse.typical_mass == 0.0


@pytest.mark.parametrize("field", ["periodic_prompt", "sampling_steps", "time_stretch", "feedback_steps"])
def test_fractional_integers_are_errors(field: str) -> None:
    with pytest.raises(ValueError, match="whole number"):
        options_from_controls(replace(Controls(), **{field: 2.5}), 1)


def test_unknown_preset_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset("loud", VampOptions())
