"""Write the shared test vectors of the web app's JS unit tests, computed by the Python implementation.

    python tests/web/make_vectors.py OUT_DIR

Generated at test time (scripts/test_web.sh, tests/test_web_js.py), never committed: each vector is what the
installed vampnet_ort (and pyloudnorm, soundfile) computes now. Arrays are base64 of little-endian bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from vampnet_ort import audio as audio_io
from vampnet_ort import codec, masks
from vampnet_ort.codec_geometry import CodecConfig
from vampnet_ort.demo import DEMO_CODEC
from vampnet_ort.options import options_from_json
from vampnet_ort.pipeline import PipelineError, VampOptions, derive_seed

RELEASE_CODEC = dict(sample_rate=44100, encoder_dim=64, encoder_rates=[2, 4, 8, 8], decoder_dim=1536,
                     decoder_rates=[8, 8, 4, 2], n_codebooks=14, codebook_size=1024, codebook_dim=8)
ODD_CODEC = dict(sample_rate=16000, encoder_dim=4, encoder_rates=[3, 5], decoder_dim=8, decoder_rates=[5, 3],
                 n_codebooks=2, codebook_size=16, codebook_dim=4)


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def philox_vectors() -> dict:
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(40):
        counter = [int(v) for v in rng.integers(0, 2**32, size=4)]
        key = [int(v) for v in rng.integers(0, 2**32, size=2)]
        words = masks.philox4x32_10([np.uint64(v) for v in counter], [np.uint64(v) for v in key])
        cases.append({"counter": counter, "key": key, "words": [int(w) for w in words]})
    seeds = [0, 1, -1, 2**63 - 1, -(2**63), 123456789012345]
    rngs = []
    for seed in seeds:
        r = masks.MaskRng(seed, 3)
        rngs.append({"seed": str(seed), "pass": 3, "shape": [3, 2, 7],
                     "uniform": b64(r.uniform(masks.PURPOSE_INTENSITY, (3, 2, 7)).astype("<f8")),
                     "offsets": [int(v) for v in r.offsets(masks.PURPOSE_ROLL, 3, 13)]})
    return {"philox": cases, "mask_rng": rngs}


MASK_CASES = [
    {},
    {"periodic_period": 5, "periodic_width": 3},
    {"periodic_period": 4, "periodic_width": 2, "periodic_random_roll": False},
    {"intensity": 0.6, "dropout": 0.25, "periodic_period": 9},
    {"intensity": 0.3, "periodic_period": 0, "prefix_s": 0.5, "suffix_s": 0.3},
    {"prefix_s": 100.0, "periodic_period": 3},
    {"suffix_s": 0.05, "dropout": 1.0, "n_conditioning_codebooks": 2, "upper_codebook_mask": 14},
    {"intensity": 0.0, "periodic_period": 1, "dropout": 0.5, "upper_codebook_mask": 0},
    {"periodic_period": 7, "periodic_width": 0, "n_conditioning_codebooks": 4, "upper_codebook_mask": 8},
]


def mask_vectors() -> list:
    out = []
    for k, options in enumerate(MASK_CASES):
        for seed, pass_index, shape in [(0, 0, (1, 14, 100)), (-5 + k, 1, (3, 14, 57)), (2**63 - 2, 0, (2, 4, 33))]:
            opts = masks.MaskOptions(**options)
            try:
                mask = masks.build_mask(opts, shape, masks.MaskRng(seed, pass_index))
            except masks.MaskError:
                continue
            out.append({"options": options, "seed": str(seed), "pass": pass_index, "shape": list(shape),
                        "mask": b64(mask.astype(np.uint8))})
    # stretch: codes and mask
    codes = np.arange(2 * 3 * 5, dtype=np.int32).reshape(2, 3, 5)
    mask = masks.build_mask(masks.MaskOptions(periodic_period=2), (2, 3, 5), masks.MaskRng(1))
    s_codes, s_mask = masks.stretch(codes, mask, 3)
    out.append({"stretch": 3, "codes": b64(codes.astype("<i4")), "mask_in": b64(mask.astype(np.uint8)),
                "shape": [2, 3, 5], "codes_out": b64(s_codes.astype("<i4")), "mask": b64(s_mask.astype(np.uint8))})
    return out


def invalid_option_vectors() -> list:
    cases = [
        {"mask": {"periodic_width": -1}}, {"mask": {"intensity": 1.5}}, {"mask": {"dropout": -0.1}},
        {"mask": {"upper_codebook_mask": 15}}, {"mask": {"n_conditioning_codebooks": 20}},
        {"mask": {"prefix_s": -1.0}}, {"coarse": {"steps": 0}}, {"c2f": {"temperature": -1.0}},
        {"coarse": {"top_p": 2.0}}, {"coarse": {"typical_mass": 1.0}}, {"c2f": {"typical_min_tokens": 0}},
        {"variations": 0}, {"variations": 65}, {"feedback_steps": 0}, {"time_stretch": 17},
        {"coarse": {"mask_temperature": -2.0}},
    ]
    out = []
    for case in cases:
        try:
            options_from_json(case).validate(14)
        except (PipelineError, masks.MaskError) as exc:
            out.append({"options": case, "message": str(exc)})
            continue
        raise AssertionError(f"{case} was accepted by Python")
    return out


def _signal(seconds: float, sr: int, seed: int, level: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = level * (np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
                 + 0.3 * rng.standard_normal(t.size))
    return x.astype(np.float32)


def loudness_vectors() -> list:
    sr, hop = 44100, 768
    signals = [
        _signal(2.0, sr, 0, 0.1), _signal(0.2, sr, 1, 0.5), _signal(3.3, sr, 2, 0.9),
        np.zeros(sr, dtype=np.float32), _signal(1.0, sr, 3, 1e-5),
    ]
    quiet_then_loud = _signal(3.0, sr, 4, 0.3)
    quiet_then_loud[: sr] *= 1e-3  # exercises the relative gate
    signals.append(quiet_then_loud)
    signals.append(_signal(1.7, 16000, 5, 0.2))
    out = []
    for x in signals:
        rate = 16000 if x.size == int(1.7 * 16000) else sr
        prepared = audio_io.prepare(x[None, :], rate, rate, hop)
        decoded = (x[::-1] * 3.0).astype(np.float32)  # any "decoder output"
        finished = audio_io.finish(np.concatenate([decoded, decoded[:100]]), rate, x.size, prepared.input_loudness)
        out.append({"rate": rate, "hop": hop, "samples": b64(x.astype("<f4")), "loudness": audio_io.loudness(x, rate),
                    "prepared": b64(prepared.samples.astype("<f4")), "length": prepared.length,
                    "decoded": b64(np.concatenate([decoded, decoded[:100]]).astype("<f4")),
                    "finished": b64(finished.astype("<f4"))})
    return out


def chunk_vectors() -> list:
    out = []
    for kwargs in (DEMO_CODEC, RELEASE_CODEC, ODD_CODEC):
        config = CodecConfig.from_kwargs(kwargs)
        g = codec.geometry(config)
        hop = config.hop_length
        enc = []
        for chunk in (1, 7, g["encode_chunk_frames"]):
            for n in (1, hop - 1, 5 * hop + 3, 700 * hop, 1500 * hop + 1):
                if codec.num_frames(config, n) >= 1:
                    enc.append({"n": n, "chunk": chunk, "plan": [list(c) for c in codec.encode_chunks(config, n, chunk)]})
        dec = []
        for chunk in (1, 5, g["decode_chunk_frames"]):
            for total in (1, 3, 64, 1100):
                dec.append({"total": total, "chunk": chunk, "samples": codec.num_samples(config, total),
                            "plan": [list(c) for c in codec.decode_chunks(config, total, chunk)]})
        out.append({"geometry": g, "encode": enc, "decode": dec})
    return out


def seed_vectors() -> list:
    out = []
    for seed in (0, 3, -7, 2**63 - 1, -(2**63)):
        for labels in ((0, 0, 0), (1, 1, 3), (2, 0, 17), (99, 1, 1000)):
            out.append({"seed": str(seed), "labels": list(labels), "derived": str(derive_seed(seed, *labels))})
    return out


def wav_vectors() -> list:
    rng = np.random.default_rng(2)
    x = np.concatenate([np.array([0.0, 1.0, -1.0, 0.5, -0.5, 1 / 32768, -1 / 32768, 0.99999, -0.99999,
                                  1.5 / 32768, 2.5 / 32768, -1.5 / 32768, 0.25 / 32767, 32766.5 / 32767,
                                  32766.5 / 32768],
                                 dtype=np.float32), rng.uniform(-1, 1, 2000).astype(np.float32)])
    buffer = io.BytesIO()
    sf.write(buffer, x, 44100, format="WAV", subtype="PCM_16")
    path_bytes = buffer.getvalue()
    return [{"samples": b64(x.astype("<f4")), "rate": 44100, "wav": base64.b64encode(path_bytes).decode("ascii")}]


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    vectors = {
        "philox.json": philox_vectors(),
        "masks.json": {"cases": mask_vectors(), "invalid_options": invalid_option_vectors(),
                       "defaults": dataclasses.asdict(VampOptions())},
        "loudness.json": loudness_vectors(),
        "chunks.json": {"codecs": chunk_vectors(), "seeds": seed_vectors()},
        "wav.json": wav_vectors(),
    }
    for name, data in vectors.items():
        (out / name).write_text(json.dumps(data))
    print(out)


if __name__ == "__main__":
    main()
