"""The web app in headless chromium vs native ONNX Runtime, in the same run (docs/WEB.md).

    python benchmarks/bench_web.py --size demo            # the demo bundle
    python benchmarks/bench_web.py --size medium          # a medium random bundle (built once in bench-out/)
    python benchmarks/bench_web.py --bundle DIR           # any bundle (e.g. bench-out/bundle-release)

For 1 and 2 threads: load time, memory per worker (browser), seconds per coarse step at T = 575 (10 s of audio;
(t(5 steps) - t(1 step)) / 4 over whole vamps without c2f, the same way on both sides), and a whole 10 s vamp with
--e2e-steps coarse steps. Needs `npm ci` (puppeteer-core) and Debian's chromium. Random weights: timings only.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(bench_pipeline.SIZES), default="demo")
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--e2e-steps", type=int, default=12, help="coarse steps of the end-to-end vamp (default 12)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
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
