"""End-to-end vamp benchmark: wall time per stage (encode, coarse, c2f, decode) for float32 and int8 bundles.

    python benchmarks/bench_pipeline.py                        # release size, 10 s, app defaults, float32 + int8
    python benchmarks/bench_pipeline.py --precisions int8 --variations 1 --steps 12
    python benchmarks/bench_pipeline.py --size medium --seconds 5 --steps 12   # quick: 6 x 768 models
    python benchmarks/bench_pipeline.py --size demo --seconds 5 --precisions none
    python benchmarks/bench_pipeline.py --bundle DIR            # an existing bundle (e.g. the real release)

Defaults are the app's: 36 coarse steps, 2 variations per click (one batch of 2 through coarse and c2f; decoded
variation by variation, as ``Pipeline.vamp`` does). Each bundle is measured in its own child process, one after
the other in one run (so memory and sessions do not mix), and one table compares them; every row prints the
1-minute load average, and the header the CPU model and the onnxruntime version: figures taken while other work
runs are not evidence.

The random bundles are exported once (in a child process, so their memory does not count) into
``bench-out/bundle-<size>[-int8]`` and reused. Release size follows docs/SPEC.md section 1: coarse 20 layers, width
1280, 20 heads; c2f 16 layers; codec LAC hop 768 (rates 2/4/8/12) with encoder width 64 and decoder width 1536
(the release's codec widths are an assumption; the checkpoint's own kwargs decide for a real bundle). Peak memory
is the child's peak RSS (ru_maxrss) after each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_model  # noqa: E402  (benchmarks/_timing.py)


ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "release": dict(
        codec=dict(encoder_dim=64, encoder_rates=[2, 4, 8, 12], decoder_dim=1536, decoder_rates=[12, 8, 4, 2]),
        coarse=dict(n_heads=20, n_layers=20, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=1280),
        c2f=dict(n_heads=20, n_layers=16, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=1280),
    ),
    "medium": dict(  # a quick check of the whole path (minutes, not the release's tens of minutes)
        codec=dict(encoder_dim=32, encoder_rates=[2, 4, 8, 12], decoder_dim=384, decoder_rates=[12, 8, 4, 2]),
        coarse=dict(n_heads=12, n_layers=6, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=768),
        c2f=dict(n_heads=12, n_layers=4, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=768),
    ),
    "demo": None,  # vampnet_ort.demo's models
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_average() -> float:
    return os.getloadavg()[0]


def build(size: str, out: Path, quantize: str = "none") -> None:
    if size == "demo":
        from vampnet_ort.demo import build_demo_bundle

        if quantize != "none":
            raise SystemExit("the demo bundle is float32 only; use --size release or --bundle")
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
        quantize=quantize,
    )


def measure(bundle_dir: Path, seconds: float, steps: int, variations: int, threads: int | None) -> list[dict]:
    """One vamp, stage by stage (the Pipeline's own stage functions); rows of stage, seconds, RSS, load."""
    from vampnet_ort import audio as audio_io
    from vampnet_ort.bundle import load_bundle
    from vampnet_ort.demo import synthesize_clip
    from vampnet_ort.pipeline import Pipeline, SamplingOptions, VampOptions

    rows: list[dict] = []

    def row(name: str, start: float) -> None:
        rows.append({"stage": name, "seconds": time.perf_counter() - start, "rss_mb": peak_rss_mb(),
                     "load": load_average()})

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir, intra_op_threads=threads)
    for name in ("codec_encoder", "codec_decoder", "coarse", "c2f"):
        if bundle.has(name):
            bundle.session(name)
    row("load + verify + open sessions", t0)
    pipe = Pipeline(bundle)
    opts = VampOptions(seed=0, variations=variations, coarse=SamplingOptions(steps=steps))

    x = synthesize_clip(seconds, bundle.sample_rate, seed=0)
    audio_io.prepare(x[:, : bundle.sample_rate], bundle.sample_rate, bundle.sample_rate, bundle.hop_length)  # warm-up
    t = time.perf_counter()
    prepared = audio_io.prepare(x, bundle.sample_rate, bundle.sample_rate, bundle.hop_length)
    row("preprocess", t)
    t = time.perf_counter()
    codes = pipe.encode(prepared.samples)
    row("encode", t)
    seed = 0
    batch = np.repeat(codes, variations, axis=0)  # item b: seed + b (Pipeline.vamp_samples)
    mask = pipe.build_mask(batch, opts.mask, seed)
    t = time.perf_counter()
    coarse_codes, _ = pipe.coarse_stage(batch, mask, seed, opts.coarse)
    row(f"coarse ({steps} steps, batch {variations})", t)
    if bundle.c2f is not None:
        t = time.perf_counter()
        fine_codes, _ = pipe.c2f_stage(coarse_codes, mask, seed, opts.c2f)
        row(f"c2f ({opts.c2f.steps} steps, batch {variations})", t)
    else:
        fine_codes = coarse_codes
    t = time.perf_counter()
    decoded = [pipe.decode(fine_codes[i: i + 1])[0] for i in range(variations)]
    row(f"decode ({variations} x {seconds:g} s)", t)
    t = time.perf_counter()
    for item in decoded:
        audio_io.finish(item, bundle.sample_rate, prepared.length, prepared.input_loudness)
    row("postprocess", t)
    rows.append({"stage": "frames", "seconds": float(codes.shape[-1]), "rss_mb": 0.0, "load": load_average()})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="release")
    ap.add_argument("--bundle", type=Path, action="append",
                    help="use this bundle instead of a random one (repeat to compare several)")
    ap.add_argument("--precisions", default="none,int8",
                    help="random bundles to export and compare: none (float32), int8, int4 (default none,int8)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=36, help="coarse steps (default 36, the app's)")
    ap.add_argument("--variations", type=int, default=2, help="variations per vamp (default 2, the app's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--quantize", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.build_only:
        build(args.size, args.build_only, args.quantize)
        return 0
    if args.child:
        rows = measure(args.child, args.seconds, args.steps, args.variations, args.threads)
        print("ROWS " + json.dumps(rows), flush=True)
        return 0

    bundles: list[tuple[str, Path]] = []
    if args.bundle:
        bundles = [(f"{i}:{path.name}"[:20], path) for i, path in enumerate(args.bundle)]
    else:
        for precision in args.precisions.split(","):
            suffix = "" if precision == "none" else f"-{precision}"
            bundle_dir = ROOT / "bench-out" / f"bundle-{args.size}{suffix}"
            if not (bundle_dir / "vampnet.json").is_file():
                bundle_dir.parent.mkdir(parents=True, exist_ok=True)
                t = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--size", args.size, "--quantize", precision,
                                "--build-only", str(bundle_dir)], check=True)
                print(f"built {args.size} {precision} bundle in {time.perf_counter() - t:.1f} s -> {bundle_dir}")
            bundles.append(({"none": "float32"}.get(precision, precision), bundle_dir))

    import onnxruntime

    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; onnxruntime {onnxruntime.__version__}; "
          f"threads={args.threads or 'default'}; {args.seconds:g} s of audio, {args.steps} coarse steps, "
          f"{args.variations} variation(s); load average at start {os.getloadavg()}", flush=True)
    results: dict[str, list[dict]] = {}
    for label, bundle_dir in bundles:
        command = [sys.executable, __file__, "--child", str(bundle_dir), "--seconds", str(args.seconds),
                   "--steps", str(args.steps), "--variations", str(args.variations)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("ROWS ")][-1]
        results[label] = json.loads(line[5:])
        print(f"measured {label}: {bundle_dir}", flush=True)

    labels = list(results)
    stages = [r["stage"] for r in results[labels[0]] if r["stage"] != "frames"]
    frames = int(results[labels[0]][-1]["seconds"])
    print(f"\n{frames} frames; seconds per stage (1-minute load average in brackets), peak RSS of each child")
    header = f"{'stage':<34}" + "".join(f"{label:>22}" for label in labels)
    if len(labels) > 1:
        header += "".join(f"{'speed-up ' + label[:10]:>20}" for label in labels[1:])
    print(header)
    totals = {label: 0.0 for label in labels}
    for i, stage in enumerate(stages):
        cells = []
        for label in labels:
            r = results[label][i]
            cells.append(f"{r['seconds']:>12.2f} [{r['load']:4.1f}]    ")
            if i > 0:
                totals[label] += r["seconds"]
        ratios = "".join(f"{results[labels[0]][i]['seconds'] / max(results[label][i]['seconds'], 1e-9):>19.2f}x"
                         for label in labels[1:])
        print(f"{stage:<34}" + "".join(f"{c:>22}" for c in cells) + ratios)
    print(f"{'vamp total (excl. load)':<34}" + "".join(f"{totals[label]:>12.2f}          " for label in labels)
          + "".join(f"{totals[labels[0]] / totals[label]:>19.2f}x" for label in labels[1:]))
    print(f"{'peak RSS MB':<34}" + "".join(f"{max(r['rss_mb'] for r in results[label]):>12.0f}          "
                                          for label in labels))
    print("real-time factor (s of compute per s of audio): "
          + ", ".join(f"{label} {totals[label] / args.seconds:.2f}" for label in labels))
    print(f"load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
