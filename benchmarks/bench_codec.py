"""LAC codec encode/decode at a release-like size (random weights): real-time factor per graph variant.

    python benchmarks/bench_codec.py [--seconds 10] [--threads 2] [--repeats 1] [--small]

Variants, measured side by side in one run:
  snake_kernel    graphs with vampnet.Snake, op library registered (what vampnet-ort runs)
  snake_function  the same graphs on a stock ONNX Runtime (Snake's reference function inlined)
  plain_onnx      the codec exported with standard ONNX ops only (Snake as Mul/Sin/Mul/Mul/Add)
RTF = processing time / audio duration (lower is faster; < 1 is faster than real time). ``--small`` uses the
golden-sized codec for a quick check. Timings on a shared, loaded machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds  # noqa: E402

import vampnet_ort  # noqa: E402
from vampnet_ort import codec as runtime  # noqa: E402
from vampnet_ort import ops
from vampnet_ort.codec_geometry import CodecConfig, Snake, decoder_plan, encoder_plan, iter_layers, output_length
from vampnet_ort.export.checkpoint import StateReader
from vampnet_ort.export.codec import _GraphBuilder, decoder_model, encoder_model
from vampnet_ort.export.random_codec import GOLDEN_LIKE_CONFIG, RELEASE_LIKE_CONFIG, random_codec

VARIANTS = {"snake_kernel": (True, True), "snake_function": (True, False), "plain_onnx": (False, False)}


def timed(fn: Callable[[], object], repeats: int) -> float:
    return median_seconds(fn, repeats=repeats, warmup=0)


def snake_element_count(config: CodecConfig, frames: int) -> dict[str, int]:
    """Snake evaluations (channels x length, batch 1) in one encode / decode of `frames` frames."""
    counts = {}
    for part, plan, length in (("encode", encoder_plan(config), frames * config.hop_length),
                               ("decode", decoder_plan(config), frames)):
        total = 0
        for layer in plan.layers:  # top level: lengths change only at strided layers
            total += sum(leaf.channels * length for leaf in iter_layers(layer) if isinstance(leaf, Snake))
            length = output_length(layer, length)
        counts[part] = total
    return counts


def snake_only(channels: int, length: int, threads: int, repeats: int) -> dict[str, float]:
    """Seconds per Snake on [1, channels, length]: kernel, inlined reference function, plain ONNX ops."""
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.5, 1.5, (1, channels, 1)).astype(np.float32)
    x = (3 * rng.standard_normal((1, channels, length))).astype(np.float32)
    out = {}
    for name, (use_op, with_lib) in VARIANTS.items():
        b = _GraphBuilder(use_op)
        y = b.snake("x", Snake("s", channels), StateReader({"s.alpha": alpha}, "bench"))
        b.nodes.append(helper.make_node("Identity", [y], ["y"]))
        graph = helper.make_graph(b.nodes, "snake", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "L"])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, "L"])],
                                  initializer=b.initializers)
        model = ops.make_model(graph)
        onnx.checker.check_model(model, full_check=True)
        session = vampnet_ort.create_session(model.SerializeToString(), with_library=with_lib,
                                             intra_op_threads=threads)
        session.run(None, {"x": x})
        out[name] = session
    samples: dict[str, list[float]] = {name: [] for name in out}
    for _ in range(repeats):
        for name, session in out.items():
            samples[name].append(timed(lambda: session.run(None, {"x": x}), 3))
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (median)")
    parser.add_argument("--small", action="store_true", help="golden-sized codec instead of release-like")
    parser.add_argument("--snake-only", action="store_true", help="only the isolated Snake measurement")
    args = parser.parse_args()

    config = GOLDEN_LIKE_CONFIG if args.small else RELEASE_LIKE_CONFIG
    parsed = CodecConfig.from_kwargs(config)
    frames = int(args.seconds * parsed.sample_rate) // parsed.hop_length
    counts = snake_element_count(parsed, frames)
    per_op = snake_only(192, 220500, args.threads, max(3, args.repeats))
    print("Snake alone on [1, 192, 220500] (decoder level 3 of 10 s), interleaved medians:")
    for name, sec in per_op.items():
        print(f"  {name:15s} {sec * 1e3:8.1f} ms  {sec / (192 * 220500) * 1e9:5.2f} ns/element  "
              f"{per_op['plain_onnx'] / sec:5.2f}x vs plain_onnx")
    for part, count in counts.items():
        est = {name: count * sec / (192 * 220500) for name, sec in per_op.items()}
        print(f"  {part}: {count / 1e9:.2f} G Snake elements per {args.seconds:g} s of audio -> estimated Snake time "
              + ", ".join(f"{name} {v:.2f} s" for name, v in est.items()))
    if args.snake_only:
        return
    start = time.perf_counter()
    codec = random_codec(config, seed=0)
    print(f"codec config: {config}")
    print(f"random weights: {sum(v.size for v in codec.state.values()) / 1e6:.1f} M parameters "
          f"({time.perf_counter() - start:.1f} s)")

    sr = config["sample_rate"]
    n = int(args.seconds * sr)
    t = np.arange(n) / sr
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.random.default_rng(0).standard_normal(n))
    audio = audio.astype(np.float32)[None, None]

    sessions = {}
    for name, (use_op, with_lib) in VARIANTS.items():
        start = time.perf_counter()
        enc = encoder_model(codec, use_snake_op=use_op).SerializeToString()
        dec = decoder_model(codec, use_snake_op=use_op).SerializeToString()
        sessions[name] = (
            vampnet_ort.create_session(enc, with_library=with_lib, intra_op_threads=args.threads),
            vampnet_ort.create_session(dec, with_library=with_lib, intra_op_threads=args.threads),
        )
        print(f"built + loaded {name}: {time.perf_counter() - start:.1f} s")

    # Warm-up at full size (arena growth, first-run allocations), then interleaved rounds so that machine load
    # hits every variant alike.
    codes_by_variant = {}
    for name, (enc, dec) in sessions.items():
        codes_by_variant[name] = runtime.encode(enc, audio, chunk_seconds=None)
        runtime.decode(dec, codes_by_variant[name], chunk_frames=None)
    samples: dict[str, dict[str, list[float]]] = {name: {"encode": [], "decode": []} for name in sessions}
    for round_index in range(args.repeats):
        for name, (enc, dec) in sessions.items():
            codes = codes_by_variant[name]
            samples[name]["encode"].append(timed(lambda: runtime.encode(enc, audio, chunk_seconds=None), 1))
            samples[name]["decode"].append(timed(lambda: runtime.decode(dec, codes, chunk_frames=None), 1))
            print(f"  round {round_index + 1} {name:15s} encode {samples[name]['encode'][-1]:7.2f} s  "
                  f"decode {samples[name]['decode'][-1]:7.2f} s", flush=True)
    results = {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}
    reference = codes_by_variant["snake_kernel"]
    for name, codes in codes_by_variant.items():
        print(f"  codes of {name} == snake_kernel: {float(np.mean(codes == reference)):.4f}")

    enc, dec = sessions["snake_kernel"]
    codes = runtime.encode(enc, audio, chunk_seconds=None)
    chunk_enc = timed(lambda: runtime.encode(enc, audio, chunk_seconds=runtime.DEFAULT_ENCODE_CHUNK_SECONDS / 4),
                      args.repeats)
    chunk_dec = timed(lambda: runtime.decode(dec, codes, chunk_frames=runtime.DEFAULT_DECODE_CHUNK_FRAMES // 4),
                      args.repeats)

    base = results["plain_onnx"]
    print(f"\n{args.seconds:g} s of audio, {args.threads} threads; RTF = seconds per second of audio")
    print(f"  {'variant':16s} {'encode RTF':>11s} {'decode RTF':>11s} {'enc speed-up':>13s} {'dec speed-up':>13s}"
          "   (speed-up vs plain_onnx)")
    for name, r in results.items():
        print(f"  {name:16s} {r['encode'] / args.seconds:11.3f} {r['decode'] / args.seconds:11.3f} "
              f"{base['encode'] / r['encode']:12.2f}x {base['decode'] / r['decode']:12.2f}x")
    print(f"\nchunked (snake_kernel): encode in {runtime.DEFAULT_ENCODE_CHUNK_SECONDS / 4:g} s chunks RTF "
          f"{chunk_enc / args.seconds:.3f}; decode in {runtime.DEFAULT_DECODE_CHUNK_FRAMES // 4}-frame chunks RTF "
          f"{chunk_dec / args.seconds:.3f}")


if __name__ == "__main__":
    main()
