"""End-to-end vamp benchmark: wall time per stage (encode, coarse, c2f, decode) and peak memory.

    python benchmarks/bench_pipeline.py                       # release-size random bundle, 10 s of audio
    python benchmarks/bench_pipeline.py --size demo --seconds 5
    python benchmarks/bench_pipeline.py --bundle DIR           # an existing bundle (e.g. the real release)

The random bundle is exported once (in a child process, so its memory does not count) into
``bench-out/bundle-<size>`` and reused. Release size follows SPEC.md section 1: coarse 20 layers, width 1280, 20
heads; c2f 16 layers; codec LAC hop 768 (rates 2/4/8/12) with encoder width 64 and decoder width 1536 (the
release's codec widths are an assumption; the checkpoint's own kwargs decide for a real bundle).
Peak memory is the process's peak RSS (ru_maxrss) after each stage.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "release": dict(
        codec=dict(encoder_dim=64, encoder_rates=[2, 4, 8, 12], decoder_dim=1536, decoder_rates=[12, 8, 4, 2]),
        coarse=dict(n_heads=20, n_layers=20, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=1280),
        c2f=dict(n_heads=20, n_layers=16, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=1280),
    ),
    "demo": None,  # vampnet_ort.demo's models
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(size: str, out: Path) -> None:
    if size == "demo":
        from vampnet_ort.demo import build_demo_bundle

        build_demo_bundle(out)
        return
    from vampnet_ort.export.bundle import export_bundle
    from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec

    spec = SIZES[size]
    assert spec is not None
    export_bundle(
        out,
        codec=random_codec({**RELEASE_LIKE_CONFIG, **spec["codec"]}, seed=1),
        coarse=random_vampnet_checkpoint(vampnet_kwargs(**spec["coarse"]), seed=2, name="bench coarse"),
        c2f=random_vampnet_checkpoint(vampnet_kwargs(**spec["c2f"]), seed=3, name="bench c2f"),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="release")
    ap.add_argument("--bundle", type=Path, help="use this bundle instead of a random one")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=36, help="coarse steps (default 36, the app's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.build_only:
        build(args.size, args.build_only)
        return 0
    bundle_dir = args.bundle
    if bundle_dir is None:
        bundle_dir = ROOT / "bench-out" / f"bundle-{args.size}"
        if not (bundle_dir / "vampnet.json").is_file():
            bundle_dir.parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--size", args.size, "--build-only", str(bundle_dir)], check=True)
            print(f"built {args.size} bundle in {time.perf_counter() - t:.1f} s -> {bundle_dir}")

    from vampnet_ort import audio as audio_io
    from vampnet_ort.bundle import load_bundle
    from vampnet_ort.demo import synthesize_clip
    from vampnet_ort.pipeline import Pipeline, SamplingOptions, VampOptions

    rows = []
    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir, intra_op_threads=args.threads)
    for name in ("codec_encoder", "codec_decoder", "coarse", "c2f"):
        if bundle.has(name):
            bundle.session(name)
    rows.append(("load + verify + open sessions", time.perf_counter() - t0, peak_rss_mb()))
    pipe = Pipeline(bundle)
    opts = VampOptions(seed=0, coarse=SamplingOptions(steps=args.steps))

    x = synthesize_clip(args.seconds, bundle.sample_rate, seed=0)
    audio_io.prepare(x[:, : bundle.sample_rate], bundle.sample_rate, bundle.sample_rate, bundle.hop_length)  # warm-up
    t = time.perf_counter()
    prepared = audio_io.prepare(x, bundle.sample_rate, bundle.sample_rate, bundle.hop_length)
    rows.append(("preprocess", time.perf_counter() - t, peak_rss_mb()))
    t = time.perf_counter()
    codes = pipe.encode(prepared.samples)
    rows.append(("encode", time.perf_counter() - t, peak_rss_mb()))
    seed = 0
    mask = pipe.build_mask(codes, opts.mask, seed)
    t = time.perf_counter()
    coarse_codes, _ = pipe.coarse_stage(codes, mask, seed, opts.coarse)
    rows.append((f"coarse ({args.steps} steps)", time.perf_counter() - t, peak_rss_mb()))
    if bundle.c2f is not None:
        t = time.perf_counter()
        fine_codes, _ = pipe.c2f_stage(coarse_codes, mask, seed, opts.c2f)
        rows.append((f"c2f ({opts.c2f.steps} steps)", time.perf_counter() - t, peak_rss_mb()))
    else:
        fine_codes = coarse_codes
    t = time.perf_counter()
    decoded = pipe.decode(fine_codes)
    rows.append(("decode", time.perf_counter() - t, peak_rss_mb()))
    t = time.perf_counter()
    audio_io.finish(decoded[0], bundle.sample_rate, prepared.length, prepared.input_loudness)
    rows.append(("postprocess", time.perf_counter() - t, peak_rss_mb()))

    vamp_total = sum(r[1] for r in rows[1:])
    print(f"\nbundle {bundle_dir} ({'demo' if bundle.demo else args.size}), {args.seconds:.1f} s of audio "
          f"({codes.shape[-1]} frames), threads={args.threads or 'default'}, {os.cpu_count()} CPUs")
    print(f"{'stage':<32}{'wall s':>10}{'share':>8}{'peak RSS MB':>14}")
    for name, seconds, rss in rows:
        share = f"{100 * seconds / vamp_total:6.1f}%" if name != rows[0][0] else "      -"
        print(f"{name:<32}{seconds:>10.2f}{share:>8}{rss:>14.0f}")
    print(f"{'vamp total (excl. load)':<32}{vamp_total:>10.2f}{'':>8}{peak_rss_mb():>14.0f}")
    print(f"real-time factor: {vamp_total / args.seconds:.2f} s of compute per s of audio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
