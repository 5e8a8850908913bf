"""HARP endpoints: ``controls``, ``process`` and ``cancel``, so the app can be used from a DAW through HARP.

HARP (TEAMuP-dev/HARP, followed here: v3.0.1) talks to any Gradio server that offers the three endpoints pyharp's
``build_endpoint`` makes (TEAMuP-dev/pyharp, followed here: v0.3.0, ``pyharp/core.py`` and ``pyharp/labels.py``).
pyharp pins gradio 5.28 and is not on PyPI, so this module speaks the same protocol on the app's own Gradio:

- ``controls`` (no inputs) returns one JSON object ``{"card": {name, description, author, tags}, "inputs": [...],
  "outputs": [...]}``; each control a JSON object with ``label``, ``info``, ``type`` and the fields of its type
  (``audio_track``: ``required``; ``slider``: ``minimum``, ``maximum``, ``step``, ``value``; ``toggle``: ``value``;
  ``dropdown``: ``choices``, ``value``; ``text_box``: ``value``; ``number_box``: ``minimum``, ``maximum``,
  ``value``; ``midi_track``: ``required``; output ``json``: no more).
- ``process`` takes the input audio file then every control value, in the order of ``inputs``, and returns the
  output audio file and a label list ``{"meta": {"_type": "pyharp.LabelList"}, "labels": [...]}``.
- ``cancel`` ends a running ``process``.

HARP calls them through Gradio's REST API: ``POST /gradio_api/upload`` (multipart field ``files``; the answer is a
list of server paths), ``POST /gradio_api/call/<name>`` with ``{"data": [...]}`` (a file as ``{"path": <server
path>, "meta": {"_type": "gradio.FileData"}}``; the answer is ``{"event_id": ...}``), then
``GET /gradio_api/call/<name>/<event_id>``, an event stream it reads up to ``event: complete`` (or ``event:
error``), and downloads the ``url`` of every output whose ``meta._type`` is ``gradio.FileData``.

The card and controls are upstream VampNet's HARP card (name "vampnet"; sample temperature, periodic prompt, mask
dropout, compression prompt, model choice, beat mask width), and ``process`` runs what upstream's ``harp_vamp``
runs: 36 sampling steps, no typical filtering or top-p, no onset mask, no stretch or pitch shift, one feedback step,
a fixed seed, one output. Upstream passes seed 0, which its app turns into a random seed; here the seed is fixed
(``HARP_SEED``) so that the same controls give the same audio in the DAW.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

from .gradio_util import with_parameter_names

PYHARP_VERSION = "0.3.0"  # the protocol versions this module follows (module docstring)
HARP_VERSION = "3.0.1"
HARP_SEED = 1
LABEL_LIST_TYPE = "pyharp.LabelList"


@dataclass(frozen=True)
class ModelCard:
    name: str
    description: str
    author: str
    tags: List[str]


@dataclass(frozen=True)
class AudioTrack:
    label: str
    info: str
    required: bool = True
    type: str = "audio_track"


@dataclass(frozen=True)
class Slider:
    label: str
    info: str
    minimum: float
    maximum: float
    step: float
    value: float
    type: str = "slider"


@dataclass(frozen=True)
class Toggle:
    label: str
    info: str
    value: bool
    type: str = "toggle"


@dataclass(frozen=True)
class Dropdown:
    label: str
    info: str
    choices: List[str]
    value: str
    type: str = "dropdown"


@dataclass(frozen=True)
class JsonOutput:
    label: str
    info: str
    type: str = "json"


Control = Union[Slider, Toggle, Dropdown]


@dataclass(frozen=True)
class OutputLabel:
    """pyharp's ``OutputLabel``: a label at time `t` (seconds) lasting `duration`; HARP reads ``label_type``."""

    t: float
    label: str
    duration: float = 0.0
    description: Optional[str] = None
    color: int = 0
    link: Optional[str] = None
    label_type: str = "OutputLabel"


def label_list(labels: Sequence[OutputLabel]) -> Dict[str, Any]:
    """The JSON of pyharp's ``LabelList``, as HARP parses it."""
    return {"meta": {"_type": LABEL_LIST_TYPE}, "labels": [asdict(label) for label in labels]}


CARD = ModelCard(
    name="vampnet",  # upstream's HARP card
    description="generating audio by filling in the blanks. VampNet on ONNX Runtime (vampnet-ort).",
    author="hugo flores garc\u00eda et al. (descript/northwestern); ONNX Runtime port: vampnet-ort",
    tags=["sound", "generation"],
)
# The six controls of upstream's HARP card, in its order: the app's control each sets, upstream's label (the app
# supplies ranges, steps, help and start values).
CONTROLS: Tuple[Tuple[str, str], ...] = (
    ("temperature", "sample temperature"), ("periodic_prompt", "periodic prompt"), ("dropout", "mask dropout"),
    ("compression_prompt", "compression prompt"), ("model_choice", "model choice"),
    ("beat_mask_ms", "beat mask width (ms)"))
# What upstream's ``harp_vamp`` fixes, by the app's control names (the seed: see the module's docstring).
FIXED_CONTROLS: Dict[str, Any] = dict(sampling_steps=36, typical_filtering=False, typical_min_tokens=1, top_p=0.0,
                                      sample_cutoff=1.0, onset_mask_width=0, time_stretch=1, feedback_steps=1,
                                      pitch_shift=0, seed=HARP_SEED)


@dataclass(frozen=True)
class Endpoint:
    """What ``controls`` returns: the card, the input track, the named controls (``process``'s order), the outputs."""

    input_track: AudioTrack
    controls: Tuple[Tuple[str, Control], ...]
    outputs: Tuple[Union[AudioTrack, JsonOutput], ...]
    card: ModelCard = CARD

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.controls)

    def describe(self) -> Dict[str, Any]:
        return {"card": asdict(self.card),
                "inputs": [asdict(self.input_track), *(asdict(control) for _, control in self.controls)],
                "outputs": [asdict(output) for output in self.outputs]}


class Cancelled(ValueError):
    """A ``process`` ended by ``cancel``."""


class CancelBoard:
    """The running ``process`` calls; ``cancel()`` asks each to stop at its next progress report (a chunk)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Set[Any] = set()  # the CancelToken of each running call

    @contextmanager
    def job(self) -> Iterator[Callable[[], None]]:
        """Registers one call; yields `check()`, which raises ``Cancelled`` once the call was cancelled. The call runs
        inside ``pipeline.cancellable``: ``cancel()`` also stops the model run in flight (the CPU is freed at once,
        not at the next chunk)."""
        from .pipeline import CancelToken, cancellable

        token = CancelToken()
        with self._lock:
            self._running.add(token)

        def check() -> None:
            if token.cancelled:
                raise Cancelled("cancelled by the client (HARP)")

        try:
            with cancellable(token):
                yield check
        finally:
            with self._lock:
                self._running.discard(token)

    def cancel(self) -> int:
        """Cancel every running call; returns how many there were."""
        with self._lock:
            for token in self._running:
                token.cancel()
            return len(self._running)


# process(input file, control values by name, check) -> (output file, labels); `check()` raises Cancelled.
Runner = Callable[[Optional[str], Dict[str, Any], Callable[[], None]], Tuple[str, List[OutputLabel]]]


def _hidden_input(control: Control):
    """The hidden Gradio component a control's value arrives through. Numbers come as ``gr.Number`` without
    bounds and the model name as text: the app checks them and answers a bad value with one clear message
    (Gradio's own bound and choice checks would also print a traceback on the server console)."""
    import gradio as gr

    if isinstance(control, Slider):
        return gr.Number(value=control.value, label=control.label)
    if isinstance(control, Toggle):
        return gr.Checkbox(value=control.value, label=control.label)
    return gr.Textbox(value=control.value, label=control.label)


def add_endpoints(endpoint: Endpoint, run: Runner, *, concurrency_id: str) -> CancelBoard:
    """Add ``controls``, ``process`` and ``cancel`` to the Gradio Blocks being built (inside its ``with``).
    ``process`` shares the concurrency group `concurrency_id` (one job at a time with the UI); ``controls`` and
    ``cancel`` never wait behind a job."""
    import gradio as gr

    board = CancelBoard()
    names = endpoint.names
    description = endpoint.describe()

    def controls() -> Dict[str, Any]:
        return description

    def process(input_audio: Optional[str], *values: Any) -> Tuple[str, Dict[str, Any]]:
        with board.job() as check:
            output, labels = run(input_audio, dict(zip(names, values)), check)
        return output, label_list(labels)

    def cancel() -> None:
        board.cancel()

    with gr.Column(visible=False):
        input_audio = gr.Audio(type="filepath", label=endpoint.input_track.label)
        inputs = [input_audio, *(_hidden_input(control) for _, control in endpoint.controls)]
        description_out = gr.JSON(label="controls")
        output_audio = gr.Audio(type="filepath", label=endpoint.outputs[0].label)
        output_labels = gr.JSON(label="output labels")
        gr.Button("controls", visible=False).click(controls, inputs=[], outputs=[description_out],
                                                   api_name="controls", concurrency_limit=None)
        gr.Button("process", visible=False).click(with_parameter_names(process, ("input_audio", *names)), inputs=inputs, outputs=[output_audio, output_labels],
                                                  api_name="process", concurrency_id=concurrency_id,
                                                  concurrency_limit=1)
        gr.Button("cancel", visible=False).click(cancel, inputs=[], outputs=[], api_name="cancel",
                                                 concurrency_limit=None)
    return board
