"""Upstream VampNet's Space API, ``/vamp_1``: the endpoint scripts call with ``gradio_client``.

Upstream's ``app.py`` (hugofloresgarcia/vampnet, main) wires ``api_vamp`` to a button with ``api_name="vamp"``;
its UI handler, also called ``vamp``, took that name first, so Gradio named the API endpoint ``/vamp_1``, and that
is what upstream's own clients submit to (``unloop/client.py``). ``api_vamp`` takes the input audio file and 17
controls, in the order of ``PARAMETERS``, each defaulting to the initial value of upstream's UI control, and returns
the two output files (variation 0, variation 1).

Here the same endpoint runs on the app's pipeline: each upstream keyword maps to one of the app's controls
(``PARAMETERS``), every control upstream's API does not have keeps the app's default, and ``model_choice`` picks a
bundle by name (``"default"``: the first). Seed 0 draws a random seed, as upstream; any other seed reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

MODEL_CHOICE = "model_choice"


@dataclass(frozen=True)
class UpstreamParameter:
    name: str  # upstream's keyword
    control: str  # the app's control it sets (MODEL_CHOICE: the model)
    default: Any  # upstream's default: the initial value of its UI control


# upstream api_vamp's parameters after input_audio, in its order, with its defaults
PARAMETERS: Tuple[UpstreamParameter, ...] = (
    UpstreamParameter("sampletemp", "temperature", 1.0),
    UpstreamParameter("top_p", "top_p", 0.0),
    UpstreamParameter("periodic_p", "periodic_prompt", 7),
    UpstreamParameter("dropout", "dropout", 0.0),
    UpstreamParameter("stretch_factor", "time_stretch", 1),
    UpstreamParameter("onset_mask_width", "onset_mask_width", 0),
    UpstreamParameter("typical_filtering", "typical_filtering", True),
    UpstreamParameter("typical_mass", "typical_mass", 0.15),
    UpstreamParameter("typical_min_tokens", "typical_min_tokens", 64),
    UpstreamParameter("seed", "seed", 0),
    UpstreamParameter("model_choice", MODEL_CHOICE, "default"),
    UpstreamParameter("n_mask_codebooks", "compression_prompt", 3),
    UpstreamParameter("pitch_shift_amt", "pitch_shift", 0),
    UpstreamParameter("sample_cutoff", "sample_cutoff", 1.0),
    UpstreamParameter("sampling_steps", "sampling_steps", 36),
    UpstreamParameter("beat_mask_ms", "beat_mask_ms", 0),
    UpstreamParameter("num_feedback_steps", "feedback_steps", 1),
)
API_NAME = "vamp_1"
INPUT_NAME = "input_audio"
N_OUTPUTS = 2
NAMES: Tuple[str, ...] = (INPUT_NAME, *(p.name for p in PARAMETERS))


def controls_of(values: Mapping[str, Any]) -> Tuple[Dict[str, Any], Any]:
    """Upstream keyword values -> (the app's control values by control name, the model choice)."""
    unknown = sorted(set(values) - {p.name for p in PARAMETERS})
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; {API_NAME} takes: {', '.join(NAMES)}")
    controls = {p.control: values[p.name] for p in PARAMETERS if p.name in values and p.control != MODEL_CHOICE}
    return controls, values.get("model_choice")
