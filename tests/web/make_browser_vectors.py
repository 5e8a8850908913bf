"""The Python pipeline's results for the browser test (tests/web/browser_run.mjs), on the served bundle.

    python tests/web/make_browser_vectors.py BUNDLE_DIR OUT_DIR

Writes OUT_DIR/clip.wav (what the test uploads through the page: 44.1 kHz mono 16-bit, so the browser's decode
gives exactly the samples Python reads) and OUT_DIR/browser_vectors.json.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

from vampnet_ort import audio as audio_io
from vampnet_ort.demo import synthesize_clip
from vampnet_ort.options import options_from_json
from vampnet_ort.pipeline import Pipeline, VampOptions

UI_FIELDS = {"seed": 4, "coarse_steps": 6, "periodic_period": 5, "c2f_steps": 2}
API_CASES = [
    {"seed": 11, "coarse": {"steps": 8}},
    {"seed": -3, "coarse": {"steps": 4, "temperature": 0.8, "top_p": 0.9}, "c2f": {"steps": 2, "typical_mass": 0.15},
     "mask": {"prefix_s": 0.5, "suffix_s": 0.5, "periodic_width": 3, "upper_codebook_mask": 4,
              "n_conditioning_codebooks": 1}, "feedback_steps": 2, "time_stretch": 2},
]


def options(raw: dict) -> VampOptions:
    """`raw` (a JS options object: partial, nested) over the defaults, as options.js resolves it."""
    return options_from_json(raw)


def result_entry(pipe: Pipeline, mono: np.ndarray, raw: dict) -> dict:
    r = pipe.vamp_samples(mono[None, :], 44100, options(raw))
    return {"options": raw, "codes": r.codes_out.astype(int).reshape(-1).tolist(), "shape": list(r.codes_out.shape),
            "mask": r.mask.astype(int).reshape(-1).tolist()}


def main() -> None:
    bundle, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(bundle)
    wav = out / "clip.wav"
    clip = synthesize_clip(2.0, 44100, seed=3).mean(axis=0).astype(np.float32) * 0.8
    audio_io.write_audio(wav, clip, 44100)
    samples, rate = audio_io.read_audio(wav)  # what the browser decodes from the file
    mono = samples[0]
    ui_raw = {"seed": UI_FIELDS["seed"], "coarse": {"steps": UI_FIELDS["coarse_steps"]},
              "c2f": {"steps": UI_FIELDS["c2f_steps"]}, "mask": {"periodic_period": UI_FIELDS["periodic_period"]}}
    ui = {"wav_path": str(wav.resolve()), "fields": {**UI_FIELDS}, **result_entry(pipe, mono, ui_raw)}
    api_mono = synthesize_clip(3.0, 44100, seed=1).mean(axis=0, dtype=np.float64).astype(np.float32)
    api = []
    for raw in API_CASES:
        entry = result_entry(pipe, api_mono, raw)
        entry["samples"] = base64.b64encode(api_mono.astype("<f4").tobytes()).decode("ascii")
        entry["sample_rate"] = 44100
        api.append(entry)
    (out / "browser_vectors.json").write_text(json.dumps({"ui": ui, "api": api}))
    print(out / "browser_vectors.json")


if __name__ == "__main__":
    main()
