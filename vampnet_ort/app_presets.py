"""The app's presets: named settings of the mask controls, as in upstream VampNet's Gradio app (main branch).

A preset sets five controls and leaves every other one as it is. The values are upstream's (``change_preset`` in
upstream ``app.py``); upstream's "unconditional" sets no beat mask width (a bug there: the variable is unbound), here
it turns the beat mask off. docs/APP.md has the table; ``tests/test_app_presets.py`` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict

from .pipeline import VampOptions


@dataclass(frozen=True)
class Preset:
    periodic_prompt: int  # MaskOptions.periodic_period: keep every N-th frame (0: off)
    compression_prompt: int  # MaskOptions.upper_codebook_mask: regenerate codebooks >= N
    onset_mask_width: int  # MaskOptions.onset_width (frames)
    dropout: float  # MaskOptions.dropout
    beat_mask_ms: float  # MaskOptions.beat_width_ms


PRESETS: Dict[str, Preset] = {
    "timbre transfer": Preset(2, 1, 0, 0.0, 0),
    "small variation": Preset(5, 4, 0, 0.0, 0),
    "small variation (follow beat)": Preset(7, 4, 0, 0.0, 50),
    "medium variation": Preset(7, 4, 0, 0.0, 0),
    "medium variation (follow beat)": Preset(13, 4, 0, 0.0, 50),
    "large variation": Preset(13, 4, 0, 0.2, 0),
    "large variation (follow beat)": Preset(0, 4, 0, 0.0, 80),
    "unconditional": Preset(0, 1, 0, 0.0, 0),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def apply_preset(name: str, options: VampOptions) -> VampOptions:
    """`options` with the five mask settings of preset `name` (everything else unchanged)."""
    p = preset(name)
    mask = replace(options.mask, periodic_period=p.periodic_prompt, upper_codebook_mask=p.compression_prompt,
                   onset_width=p.onset_mask_width, dropout=p.dropout, beat_width_ms=float(p.beat_mask_ms))
    return replace(options, mask=mask)
