"""Batch throughput: files per minute and audio seconds per second for one set of clips, vamped by

1. N serial ``vampnet-ort vamp`` calls (each loads the bundle again; all cores per call),
2. ``vampnet-ort batch`` on the local engine with 1 worker (all cores) and 2 workers (cores / 2 each),
3. ``vampnet-ort batch --engine ray`` with 2 actors (a local Ray instance started and stopped by the command),

all with the same seed and options, wall time of the whole command (start-up, bundle loading, Ray start-up
included), since that is what a user waits for. Ray's overhead is reported against the local engine with the same
number of workers. Outputs of the local and Ray runs are compared byte for byte.

    python benchmarks/bench_batch.py                          # demo and medium bundles, 20 clips of 5 s
    python benchmarks/bench_batch.py --sizes demo --clips 8 --seconds 3 --steps 6

The medium random bundle (coarse 8 layers x 512, c2f 6 layers x 512, codec decoder width 384) is exported once into
``bench-out/bundle-batch-medium``; the demo bundle into ``bench-out/bundle-batch-demo``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"
MEDIUM = dict(
    codec=dict(encoder_dim=32, encoder_rates=[2, 4, 8, 12], decoder_dim=384, decoder_rates=[12, 8, 4, 2]),
    coarse=dict(n_heads=8, n_layers=8, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=512),
    c2f=dict(n_heads=8, n_layers=6, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=512),
)


def build(size: str, out: Path) -> None:
    if size == "demo":
        from vampnet_ort.demo import build_demo_bundle

        build_demo_bundle(out)
        return
    from vampnet_ort.export.bundle import export_bundle
    from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec

    export_bundle(
        out,
        codec=random_codec({**RELEASE_LIKE_CONFIG, **MEDIUM["codec"]}, seed=11),
        coarse=random_vampnet_checkpoint(vampnet_kwargs(**MEDIUM["coarse"]), seed=12, name="batch bench coarse"),
        c2f=random_vampnet_checkpoint(vampnet_kwargs(**MEDIUM["c2f"]), seed=13, name="batch bench c2f"),
    )


def bundle_dir(size: str) -> Path:
    path = OUT / f"bundle-batch-{size}"
    if not (path / "vampnet.json").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        build(size, path)
    return path


def make_clips(folder: Path, count: int, seconds: float) -> List[Path]:
    import soundfile as sf

    from vampnet_ort.demo import synthesize_clip

    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(count):
        path = folder / f"set{i % 4}" / f"clip{i:03d}.wav"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), synthesize_clip(seconds, 44100, seed=i).T, 44100)
        clips.append(path)
    return clips


def cli() -> List[str]:
    script = Path(sys.executable).parent / "vampnet-ort"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vampnet_ort.cli"]


def timed(command: List[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=str(OUT))
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*.wav"))
    return names == sorted(p.relative_to(b) for p in b.rglob("*.wav")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def bench(size: str, clips: List[Path], clip_folder: Path, seconds: float, options: List[str]) -> Dict[str, float]:
    bundle = bundle_dir(size)
    work = OUT / f"batch-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cores = os.cpu_count() or 1
    walls: Dict[str, float] = {}
    serial = work / "serial"
    start = time.perf_counter()
    for clip in clips:
        target = serial / clip.relative_to(clip_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        timed([*cli(), "vamp", str(clip), str(target), "--models", str(bundle), "-q", *options])
    walls[f"{len(clips)} x vampnet-ort vamp ({cores} threads)"] = time.perf_counter() - start
    runs = [("local, 1 worker", "local-1", ["--workers", "1"]),
            ("local, 2 workers", "local-2", ["--workers", "2"]),
            ("ray, 2 actors", "ray-2", ["--workers", "2", "--engine", "ray"])]
    for label, name, extra in runs:
        threads = max(1, cores // int(extra[1]))
        walls[f"batch {label} x {threads} threads"] = timed(
            [*cli(), "batch", str(clip_folder), "--out", str(work / name), "--models", str(bundle), "-q",
             *extra, *options])
    audio = len(clips) * seconds
    print(f"\n{size} bundle, {len(clips)} clips x {seconds:g} s, options {' '.join(options)}, {cores} CPUs")
    print(f"  {'run':44s} {'wall s':>8s} {'files/min':>10s} {'audio-s/s':>10s} {'vs serial':>10s}")
    base = next(iter(walls.values()))
    for label, wall in walls.items():
        print(f"  {label:44s} {wall:8.1f} {60 * len(clips) / wall:10.2f} {audio / wall:10.3f} {base / wall:9.2f}x")
    local2 = walls[next(k for k in walls if "local, 2" in k)]
    ray2 = walls[next(k for k in walls if "ray, 2" in k)]
    print(f"  Ray overhead vs local with 2 workers: {ray2 - local2:+.1f} s ({ray2 / local2:.2f}x the wall time)")
    print(f"  local (1 thread per worker) == ray outputs byte for byte: {same_files(work / 'local-2', work / 'ray-2')}")
    print(f"  serial vamp (all threads) == local 1 worker (all threads): {same_files(serial, work / 'local-1')}")
    return walls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="demo,medium", help="comma-separated: demo, medium (default both)")
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=12, help="coarse steps (default 12, the library's default)")
    args = ap.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark needs Ray: pip install 'vampnet-ort[ray]'") from None
    folder = OUT / f"batch-clips-{args.clips}x{args.seconds:g}s"
    clips = make_clips(folder, args.clips, args.seconds)
    options = ["--seed", "3", "--steps", str(args.steps)]
    for size in args.sizes.split(","):
        bench(size.strip(), clips, folder, args.seconds, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
