"""Upstream VampNet's Space API, ``/vamp_1``: the endpoint scripts call with ``gradio_client``.

Upstream's ``app.py`` (hugofloresgarcia/vampnet, main) wires ``api_vamp`` to a button with ``api_name="vamp"``;
its UI handler, also called ``vamp``, took that name first, so Gradio named the API endpoint ``/vamp_1``, and that
is what upstream's own clients submit to (``unloop/client.py``). ``api_vamp`` takes the input audio file and 17
controls, in the order of ``ORDER``, each defaulting to the initial value of upstream's UI control, and returns
the two output files (variation 0, variation 1).

Here the same endpoint runs on the app's pipeline: each upstream keyword maps to one of the app's controls
(``options.OPTIONS``' upstream names), every control upstream's API does not have keeps the app's default, and
``model_choice`` picks a bundle by name (``models.ModelRegistry``). Seed 0 draws a random seed, as upstream; any other seed reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from .options import by_upstream

MODEL_CHOICE = "model_choice"
API_NAME = "vamp_1"
INPUT_NAME = "input_audio"
N_OUTPUTS = 2
# upstream api_vamp's parameters after input_audio, in its order; which control each sets is the option table's
# `upstream` column (options.OPTIONS)
ORDER: Tuple[str, ...] = ("sampletemp", "top_p", "periodic_p", "dropout", "stretch_factor", "onset_mask_width",
                          "typical_filtering", "typical_mass", "typical_min_tokens", "seed", MODEL_CHOICE,
                          "n_mask_codebooks", "pitch_shift_amt", "sample_cutoff", "sampling_steps", "beat_mask_ms",
                          "num_feedback_steps")
NAMES: Tuple[str, ...] = (INPUT_NAME, *ORDER)
# where upstream's UI starts elsewhere than the app's control: typical filtering shows on there (and does nothing,
# docs/SAMPLING.md); the model is upstream's name for its base model
UPSTREAM_DEFAULTS: Dict[str, Any] = {"typical_filtering": True, MODEL_CHOICE: "default"}


@dataclass(frozen=True)
class UpstreamParameter:
    name: str  # upstream's keyword
    control: str  # the app's control it sets (MODEL_CHOICE: the model)
    default: Any  # upstream's default: the initial value of its UI control


def parameters(control_defaults: Any) -> Tuple[UpstreamParameter, ...]:
    """Upstream's parameters after the input, in order, each with the app's control it sets and its default: the
    control's default in `control_defaults` (the app's ``Controls()``: upstream's values) or UPSTREAM_DEFAULTS."""
    table = by_upstream()
    out = []
    for name in ORDER:
        control = MODEL_CHOICE if name == MODEL_CHOICE else table[name].control
        assert control is not None, name
        default = UPSTREAM_DEFAULTS[name] if name in UPSTREAM_DEFAULTS else getattr(control_defaults, control)
        out.append(UpstreamParameter(name, control, default))
    return tuple(out)


def controls_of(values: Mapping[str, Any]) -> Tuple[Dict[str, Any], Any]:
    """Upstream keyword values -> (the app's control values by control name, the model choice)."""
    unknown = sorted(set(values) - set(ORDER))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; {API_NAME} takes: {', '.join(NAMES)}")
    table = by_upstream()
    controls = {table[name].control: value for name, value in values.items() if name != MODEL_CHOICE}
    return controls, values.get(MODEL_CHOICE)
