"""Python pipeline runs on the demo bundle, for the JS pipeline to reproduce (tests/web/ort_pipeline.test.mjs).

    python tests/web/make_pipeline_vectors.py OUT_DIR

Writes OUT_DIR/pipeline.json: the demo bundle's directory, its browser manifest (vampnet_ort.web_server), and for
each case the 44.1 kHz mono input samples, the options, the Python pipeline's output codes, mask and audio, and
every model call it made (model, inputs, first output), in order: the JS pipeline replays these to prove its
orchestration identical independently of the runtimes' float rounding.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

from vampnet_ort.demo import demo_bundle_path, synthesize_clip
from vampnet_ort.options import options_from_json
from vampnet_ort.pipeline import Pipeline, VampOptions
from vampnet_ort.web_server import browser_manifest

CASES = [
    # exact: every output code must equal Python's (see ort_pipeline.test.mjs for why not every case is)
    # ~12 s: 2 encoder chunks, 2 coarse chunks (575), 4 c2f chunks (173), 2 decoder chunks (512)
    {"seconds": 12.0, "exact": False, "options": {"seed": 1, "variations": 2, "coarse": {"steps": 6},
                                  "mask": {"periodic_period": 5, "dropout": 0.1, "intensity": 0.9}}},
    {"seconds": 3.0, "exact": True, "options": {"seed": -3, "coarse": {"steps": 4, "temperature": 0.8, "top_p": 0.9},
                                 "c2f": {"steps": 2, "typical_mass": 0.15},
                                 "mask": {"prefix_s": 0.5, "suffix_s": 0.5, "periodic_width": 3,
                                          "upper_codebook_mask": 4, "n_conditioning_codebooks": 1},
                                 "feedback_steps": 2, "time_stretch": 2}},
    {"seconds": 2.0, "exact": True, "options": {"seed": 11, "coarse": {"steps": 8}}},
]


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def vamp_options(raw: dict) -> VampOptions:
    """`raw` (a JS options object: partial, nested) over the defaults, as options.js resolves it."""
    return options_from_json(raw)


class Recorder:
    """Wraps a session: records run() feeds and the first output."""

    def __init__(self, name: str, session, calls: list) -> None:
        self.name, self.session, self.calls = name, session, calls

    def __getattr__(self, attr):
        return getattr(self.session, attr)

    def run(self, outputs, feeds):
        result = self.session.run(outputs, feeds)
        self.calls.append({
            "model": self.name,
            "feeds": {k: {"dtype": str(v.dtype), "dims": list(v.shape), "data": b64(v)} for k, v in feeds.items()},
            "out": {"dtype": str(result[0].dtype), "dims": list(result[0].shape), "data": b64(result[0])},
        })
        return result


def recording(pipe: Pipeline, calls: list) -> None:
    original = pipe.bundle.session

    def session(name: str):
        return Recorder(name, original(name), calls)

    pipe.bundle.session = session  # type: ignore[method-assign]


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    bundle = Path(demo_bundle_path())
    pipe = Pipeline(bundle)
    calls: list = []
    recording(pipe, calls)
    cases = []
    for k, case in enumerate(CASES):
        calls.clear()
        stereo = synthesize_clip(case["seconds"], 44100, seed=k)
        mono = stereo.mean(axis=0, dtype=np.float64).astype(np.float32)  # what the page hands over: 44.1 kHz mono
        result = pipe.vamp_samples(mono[None, :], 44100, vamp_options(case["options"]))
        cases.append({
            "options": case["options"], "samples": b64(mono.astype("<f4")),
            "codes": b64(result.codes_out.astype("<i4")), "shape": list(result.codes_out.shape),
            "codes_in": b64(result.codes_in.astype("<i4")), "exact": case["exact"],
            "mask": b64(result.mask.astype(np.uint8)), "audio": b64(result.audio.astype("<f4")),
            "audio_shape": list(result.audio.shape), "calls": list(calls),
        })
    (out / "pipeline.json").write_text(json.dumps({"bundle": str(bundle), "manifest": browser_manifest(bundle),
                                                   "cases": cases}))
    print(out / "pipeline.json")


if __name__ == "__main__":
    main()
