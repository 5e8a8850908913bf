"""The int8 codec decoder against the float32 one: SNR, multi-resolution STFT distance and decode time.

    python benchmarks/bench_codec_quality.py [--seconds 3] [--codecs golden,release] [--threads 2] [--rounds 2]
        [--stock]

For each codec (the golden codec of tests/golden, the release-size random codec of bench_pipeline.py) and each
test signal, the float32 encoder makes the codes (the encoder is never quantized, so they are the codes of either
bundle); then the float32 and the ``--quantize int8`` decoders decode them. Prints SNR (dB) of the int8 audio
against the float32 audio, the multi-resolution STFT distance (export/quantize.py), the int8 convs in the graph,
and the best decode time of each over interleaved rounds with the 1-minute load average (ratios only: absolute times
on a shared machine are not evidence).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import vampnet_ort
from vampnet_ort import codec as runtime
from vampnet_ort.export.checkpoint import Checkpoint, load_checkpoint
from vampnet_ort.export.codec import decoder_model, encoder_model
from vampnet_ort.export import quantize
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from quality_metrics import audio_snr_db, multi_resolution_stft_distance  # noqa: E402  (the tests' metrics)


def test_signals(seconds: float, sr: int) -> dict[str, np.ndarray]:
    """Three signals: tones with vibrato and noise (tests/test_codec.py's), a log chirp, a decaying pluck train."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    tones = sum(0.2 * np.sin(2 * np.pi * f * t * (1 + 0.02 * np.sin(0.3 * t))) for f in (110.0, 277.0, 1460.0))
    tones = tones * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)) + 0.03 * rng.standard_normal(n)
    chirp = 0.5 * np.sin(2 * np.pi * 50.0 * seconds / np.log(200.0) * (np.power(200.0, t / seconds) - 1.0))
    plucks = np.zeros(n)
    for start in range(0, n, sr // 4):
        m = n - start
        tt = np.arange(m) / sr
        plucks[start:] += 0.4 * np.exp(-6.0 * tt) * np.sin(2 * np.pi * rng.uniform(80, 900) * tt)
    return {name: np.asarray(x, np.float32)[None, None] for name, x in
            (("tones", tones), ("chirp", chirp), ("plucks", plucks))}


def codecs(names: list[str]) -> dict[str, Checkpoint]:
    out = {}
    for name in names:
        if name == "golden":
            out[name] = load_checkpoint(ROOT / "tests" / "golden" / "codec.pth")
        elif name == "release":
            out[name] = random_codec(RELEASE_LIKE_CONFIG, seed=1)  # bench_pipeline.py's codec
        else:
            raise SystemExit(f"unknown codec {name!r} (golden, release)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--codecs", default="golden,release")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds per signal (0: no timing)")
    parser.add_argument("--signals", default="tones,chirp,plucks")
    parser.add_argument("--stock", action="store_true",
                        help="also time both decoders on stock ONNX Runtime (no op library: reference functions)")
    parser.add_argument("--min-channels", type=int, default=0,
                        help="try another int8 channel threshold (default: the exporter's CODEC_INT8_MIN_CHANNELS)")
    args = parser.parse_args()
    if args.min_channels:
        quantize.CODEC_INT8_MIN_CHANNELS = args.min_channels  # read by codec_conv_form at export time
    print(f"load average {os.getloadavg()}; {args.threads} threads; {args.seconds} s signals")
    for name, ckpt in codecs(args.codecs.split(",")).items():
        sr = int(ckpt.kwargs["sample_rate"])
        enc = vampnet_ort.create_session(encoder_model(ckpt).SerializeToString(), intra_op_threads=args.threads)
        fp32_model = decoder_model(ckpt)
        int8_model = decoder_model(ckpt, quantize="int8")
        n_int8 = dict((p.key, p.value) for p in int8_model.metadata_props)["int8_convs"]
        sessions = {"float32": vampnet_ort.create_session(fp32_model.SerializeToString(), intra_op_threads=args.threads),
                    "int8": vampnet_ort.create_session(int8_model.SerializeToString(), intra_op_threads=args.threads)}
        if args.stock:
            for key, model in (("float32 stock", fp32_model), ("int8 stock", int8_model)):
                sessions[key] = vampnet_ort.create_session(model.SerializeToString(), intra_op_threads=args.threads,
                                                           with_library=False)
        del fp32_model, int8_model
        for signal_name, audio in test_signals(args.seconds, sr).items():
            if signal_name not in args.signals.split(","):
                continue
            codes = runtime.encode(enc, audio)
            audio_out = {k: runtime.decode(s, codes) for k, s in sessions.items()}
            times: dict[str, list[float]] = {k: [] for k in sessions}
            for r in range(args.rounds):
                for k in (list(sessions) if r % 2 == 0 else list(sessions)[::-1]):
                    start = time.perf_counter()
                    runtime.decode(sessions[k], codes)
                    times[k].append(time.perf_counter() - start)
            timing = ""
            if args.rounds:
                best = {k: min(v) for k, v in times.items()}
                timing = (f" | float32 {best['float32']:.2f} s, int8 {best['int8']:.2f} s, "
                          f"{best['float32'] / best['int8']:.2f}x")
                if args.stock:
                    timing += (f" | stock ORT: float32 {best['float32 stock']:.2f} s, int8 {best['int8 stock']:.2f} s, "
                               f"{best['float32 stock'] / best['int8 stock']:.2f}x")
                timing += f" (load {os.getloadavg()[0]:.1f})"
            print(f"{name:8s} {signal_name:7s} int8 convs {n_int8:>3s} | SNR {audio_snr_db(audio_out['float32'], audio_out['int8']):5.1f} dB"
                  f" | MR-STFT {multi_resolution_stft_distance(audio_out['float32'], audio_out['int8']):.4f}{timing}",
                  flush=True)


if __name__ == "__main__":
    main()
