"""The web app in headless chromium vs native ONNX Runtime, in the same run (docs/WEB.md).

    python benchmarks/bench_web.py --size demo            # the demo bundle
    python benchmarks/bench_web.py --size medium          # a medium random bundle (built once in bench-out/)
    python benchmarks/bench_web.py --bundle DIR           # any bundle (e.g. bench-out/bundle-release)

For 1 and 2 threads: load time, memory per worker (browser), seconds per coarse step at T = 575 (10 s of audio;
(t(5 steps) - t(1 step)) / 4 over whole vamps without c2f, the same way on both sides), and a whole 10 s vamp with
--e2e-steps coarse steps. Needs `npm ci` (puppeteer-core) and Debian's chromium. Random weights: timings only.

    python benchmarks/bench_web.py --release-rows [--dry-run]    # docs/WEB.md's release-size rows (wasm backend)

Release rows: the release-size random float32, int8 and w8 bundles (built once under bench-out/web-release/, or
taken from bench-out/quantize/ when bench_quantize.py built them) in headless chromium with the wasm backend:
  steps  for 1, 2 and 4 threads: a page with only the coarse model (?only=coarse): load time, ONE coarse step at
         T = 575 (window.vampnet.timeCoarseStep: the step-window graph, every position masked), worker memory;
  vamp   at 2 threads (the page's default): the whole page's load time, a 10 s vamp with 1 coarse step and the
         default c2f, worker memory after it (the peak: a wasm heap never shrinks) and whether it fit; the 36-step
         vamp is estimated as that + 35 x the 2-thread step.
Left out to stay near 10 minutes: repeated steps (one step each, no best-of), whole 36-step vamps, vamps at 1 and
4 threads, WebGPU (SwiftShader here is CPU-emulated: correctness only). --dry-run prints the plan and estimate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_pipeline  # noqa: E402  (its bundle builder)

bench_pipeline.SIZES.setdefault("medium", dict(
    codec=dict(encoder_dim=32, encoder_rates=[2, 4, 8, 12], decoder_dim=512, decoder_rates=[12, 8, 4, 2]),
    coarse=dict(n_heads=8, n_layers=6, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=512),
    c2f=dict(n_heads=8, n_layers=4, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=512),
))


def clip(seconds: float) -> np.ndarray:
    i = np.arange(int(round(seconds * 44100)))
    return (0.3 * np.sin(i * 0.05) * np.sin(i * 0.0003) + 0.05 * np.sin(i * 1.7)).astype(np.float32)


def native(bundle_dir: Path, threads: int, seconds: float, e2e_steps: int) -> dict:
    from vampnet_ort.bundle import load_bundle
    from vampnet_ort.pipeline import Pipeline, SamplingOptions, VampOptions

    t = time.perf_counter()
    bundle = load_bundle(bundle_dir, intra_op_threads=threads)
    for name in ("codec_encoder", "codec_decoder", "coarse", "c2f"):
        if bundle.has(name):
            bundle.session(name)
    load = time.perf_counter() - t
    pipe = Pipeline(bundle)
    x = clip(seconds)

    def timed(opts: VampOptions) -> float:
        t0 = time.perf_counter()
        pipe.vamp_samples(x, 44100, opts)
        return time.perf_counter() - t0

    timed(VampOptions(use_c2f=False, coarse=SamplingOptions(steps=1)))  # warm-up
    one = five = float("inf")
    for _ in range(2):  # interleaved, best of 2 (as bench_web.mjs)
        one = min(one, timed(VampOptions(use_c2f=False, coarse=SamplingOptions(steps=1))))
        five = min(five, timed(VampOptions(use_c2f=False, coarse=SamplingOptions(steps=5))))
    e2e = timed(VampOptions(coarse=SamplingOptions(steps=e2e_steps)))
    return {"threads": threads, "load_s": load, "coarse_step_s": (five - one) / 4, "e2e_s": e2e}


# ---- release-size rows (docs/WEB.md) ----------------------------------------------------------------------------

RELEASE_PRECISIONS = ("none", "int8", "w8")
RELEASE_THREADS = (1, 2, 4)
VAMP_THREADS = 2
# Seconds per item on a quiet 2-core-class machine, from the 27.5 s float32 step at 1 thread (docs/WEB.md) and the
# wasm ratios measured so far; only for --dry-run's estimate.
ESTIMATE = {
    "none": {"load_coarse": 20, "step": {1: 27.5, 2: 17, 4: 11}, "load_all": 60, "vamp": 110, "build": 150},
    "int8": {"load_coarse": 8, "step": {1: 14, 2: 9, 4: 6}, "load_all": 35, "vamp": 80, "build": 120},
    "w8": {"load_coarse": 10, "step": {1: 30, 2: 18, 4: 12}, "load_all": 40, "vamp": 110, "build": 120},
}
BUILD_RELEASE = """
import sys
from pathlib import Path
from vampnet_ort.export.bundle import export_bundle
from vampnet_ort.export.random_checkpoint import RELEASE_C2F_KWARGS, RELEASE_COARSE_KWARGS, random_vampnet_checkpoint
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec
out, quantize = Path(sys.argv[1]), sys.argv[2]
codec = random_codec({**RELEASE_LIKE_CONFIG, "encoder_dim": 64, "decoder_dim": 1536}, seed=1)
export_bundle(out, codec=codec, coarse=random_vampnet_checkpoint(RELEASE_COARSE_KWARGS, seed=2, name="bench coarse"),
              c2f=random_vampnet_checkpoint(RELEASE_C2F_KWARGS, seed=3, name="bench c2f"), quantize=quantize)
"""


def release_bundle(quantize: str) -> Path:
    """bench_quantize.py's bundle when it exists (the same recipe), else one built here (a child process)."""
    shared = ROOT / "bench-out" / "quantize" / f"bundle-{quantize}"
    if (shared / "vampnet.json").is_file():
        return shared
    out = ROOT / "bench-out" / "web-release" / f"bundle-{quantize}"
    if not (out / "vampnet.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        # cwd away from the repository root: `python -c` puts the cwd first on sys.path, where the root's
        # vampnet_ort/ (no export subpackage) would shadow the installed package
        subprocess.run([sys.executable, "-c", BUILD_RELEASE, str(out), quantize], check=True, cwd=out.parent)
        print(f"  built {out} in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def _page(mode: str, url: str, threads: int, amount: float) -> dict:
    out = subprocess.run(["node", str(ROOT / "benchmarks" / "bench_web.mjs"), mode, url, str(threads), str(amount)],
                         capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"ok": False, "error": (out.stderr.strip().splitlines() or ["bench_web.mjs failed"])[-1]}
    return json.loads(lines[-1])


def _workers_mib(result: dict) -> list[float]:
    return [m["bytes"] / 2**20 for m in (result.get("memory") or []) if "Worker" in m["scope"]]


def release_rows(dry_run: bool, frames: int, seconds: float) -> int:
    total = 0.0
    for q in RELEASE_PRECISIONS:
        e = ESTIMATE[q]
        built = any((p / "vampnet.json").is_file() for p in (ROOT / "bench-out" / "quantize" / f"bundle-{q}",
                                                              ROOT / "bench-out" / "web-release" / f"bundle-{q}"))
        total += (0 if built else e["build"]) + sum(e["load_coarse"] + e["step"][t] for t in RELEASE_THREADS)
        total += e["load_all"] + e["vamp"]
    print(f"plan: bundles {', '.join(RELEASE_PRECISIONS)}; steps at {RELEASE_THREADS} threads (coarse-only page, one "
          f"step at T={frames}); a {seconds:g} s vamp (1 coarse step) at {VAMP_THREADS} threads; estimated "
          f"{total / 60:.0f} min on a quiet machine (bundles already built are reused)")
    if dry_run:
        return 0
    from vampnet_ort import web_server

    print(f"| bundle | threads | load coarse s | s / coarse step T={frames} | load all s | {seconds:g} s vamp s (1 step) "
          "| 36-step vamp s (est.) | peak MiB per worker | fits a tab |")
    print("|---|---|---|---|---|---|---|---|---|")
    for q in RELEASE_PRECISIONS:
        bundle_dir = release_bundle(q)
        server = web_server.create_server(bundle_dir, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = web_server.server_url(server)
        name = {"none": "float32"}.get(q, q)
        try:
            steps = {t: _page("steps", url, t, frames) for t in RELEASE_THREADS}
            vamp = _page("vamp", url, VAMP_THREADS, seconds)
        finally:
            server.shutdown()
            server.server_close()
        for t in RELEASE_THREADS:
            r = steps[t]
            step = f"{r['coarse_step_s']:.1f}" if r.get("ok") else f"failed: {r.get('error')}"
            mem = ", ".join(f"{m:.0f}" for m in _workers_mib(r)) or "n/a"
            if t == VAMP_THREADS:
                fits = "yes" if vamp.get("ok") else f"no: {vamp.get('error')}"
                vamp_s = f"{vamp['vamp_s']:.1f}" if vamp.get("ok") else "-"
                est = (f"{vamp['vamp_s'] + 35 * r['coarse_step_s']:.0f}" if vamp.get("ok") and r.get("ok") else "-")
                mem = ", ".join(f"{m:.0f}" for m in _workers_mib(vamp)) or mem
                print(f"| {name} | {t} | {r.get('load_s', 0):.1f} | {step} | {vamp.get('load_s', 0):.1f} | {vamp_s} | "
                      f"{est} | {mem} | {fits} |", flush=True)
            else:
                print(f"| {name} | {t} | {r.get('load_s', 0):.1f} | {step} | | | | {mem} (coarse) | |", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release-rows", action="store_true", help="docs/WEB.md's release-size rows (see above)")
    ap.add_argument("--dry-run", action="store_true", help="with --release-rows: print the plan and estimate only")
    ap.add_argument("--frames", type=int, default=575, help="T of the timed coarse step (release rows; default 575)")
    ap.add_argument("--size", choices=sorted(bench_pipeline.SIZES), default="demo")
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--e2e-steps", type=int, default=12, help="coarse steps of the end-to-end vamp (default 12)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if args.release_rows:
        return release_rows(args.dry_run, args.frames, args.seconds)
    bundle_dir = args.bundle
    if bundle_dir is None:
        if args.size == "demo":
            from vampnet_ort.demo import demo_bundle_path

            bundle_dir = Path(demo_bundle_path())
        else:
            bundle_dir = ROOT / "bench-out" / f"bundle-{args.size}"
            if not (bundle_dir / "vampnet.json").is_file():
                bundle_dir.parent.mkdir(parents=True, exist_ok=True)
                bench_pipeline.build(args.size, bundle_dir)
    from vampnet_ort import web_server

    size_mb = sum(p.stat().st_size for p in bundle_dir.iterdir() if p.is_file()) / 1e6
    server = web_server.create_server(bundle_dir, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = web_server.server_url(server)
    print(f"bundle {bundle_dir} ({size_mb:.0f} MB), {args.seconds:g} s of audio, e2e with {args.e2e_steps} coarse steps")
    rows = []
    try:
        for threads in args.threads:
            nat = native(bundle_dir, threads, args.seconds, args.e2e_steps)
            out = subprocess.run(["node", str(ROOT / "benchmarks" / "bench_web.mjs"), url, str(threads),
                                  str(args.seconds), str(args.e2e_steps)], capture_output=True, text=True, check=True)
            web = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((threads, nat, web))
            workers = [m for m in (web["memory"] or []) if "Worker" in m["scope"]]
            heap = ", ".join(f"{m['bytes'] / 2**20:.0f}" for m in workers) if workers else "n/a"
            step_ratio = (f"{web['coarse_step_s'] / nat['coarse_step_s']:.1f}x" if nat["coarse_step_s"] > 0.01
                          else "native step below the timing noise")
            print(f"threads {threads} (web got {web['threads']}): load native {nat['load_s']:.2f} s / web {web['load_s']:.2f} s; "
                  f"coarse step native {nat['coarse_step_s']:.3f} s / web {web['coarse_step_s']:.3f} s ({step_ratio}); "
                  f"e2e native {nat['e2e_s']:.1f} s / web {web['e2e_s']:.1f} s ({web['e2e_s'] / nat['e2e_s']:.1f}x); "
                  f"memory per worker MiB: {heap}", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
