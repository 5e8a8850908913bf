"""Release-size decodes: the Loop decode graph vs the host-driven loop (logits graph + step graph per step).

  - coarse: 20 layers, d=1280, 4 codebooks, T=575 (a 10 s chunk), 12 steps
  - c2f:    16 layers, d=1280, 14 codebooks (4 conditioning), T=173 (a 3 s chunk), 2 steps

Random weights (with LoRA tensors), the upstream app's default sampling settings (temperature 1, mask temperature
10.5, sample_cutoff 1, typical filtering off). Prints seconds, Loop overhead, tokens/s (predicted codes produced
per second), real-time factor (decode seconds per second of audio), the fraction of ORT's MatMul peak measured in
the same run, and the peak RSS (anonymous and file-backed, sampled from /proc/self/status) of a fresh process that
loads the coarse decode graph and runs a 2-step decode, with ORT's MatMul weight prepacking on (default) and off
(session config "session.disable_prepacking" = "1"), against the weights' size.

    python benchmarks/bench_decode.py [--threads 2] [--repeats 1] [--skip-rss] [--workdir DIR]

Timings on a shared machine are noisy; never assert on them in tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_forward import forward_flops, matmul_model  # noqa: E402

from vampnet_ort.export.decode_graph import decode_graph  # noqa: E402
from vampnet_ort.export.random_codec import random_codec
from vampnet_ort.export.random_checkpoint import (  # noqa: E402
    RELEASE_C2F_KWARGS,
    RELEASE_COARSE_KWARGS,
    lac_kwargs,
    random_vampnet_checkpoint,
)
from vampnet_ort.export.vampnet_export import export_stage, logits_graph  # noqa: E402

HOP, SAMPLE_RATE = 768, 44100
STAGES = {"coarse": (RELEASE_COARSE_KWARGS, 575, 12), "c2f": (RELEASE_C2F_KWARGS, 173, 2)}

RSS_CHILD = """
import sys, threading, time, numpy as np, onnxruntime as ort, vampnet_ort
sys.path.insert(0, sys.argv[2])
from bench_decode import decode_feeds
peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
done = False
def sample():
    while not done:
        for line in open("/proc/self/status"):
            key = line.split(":")[0]
            if key in peak:
                peak[key] = max(peak[key], int(line.split()[1]) * 1024)
        time.sleep(0.005)
sampler = threading.Thread(target=sample)
sampler.start()
options = vampnet_ort.session_options(intra_op_threads=int(sys.argv[3]))
if sys.argv[4] == "off":
    options.add_session_config_entry("session.disable_prepacking", "1")
start = time.perf_counter()
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
loaded = time.perf_counter() - start
session.run(None, decode_feeds(4, 575, 0, 2))
done = True
sampler.join()
print(loaded, peak["VmRSS"], peak["RssAnon"], peak["RssFile"])
"""


TIMING_CHILD = """
import os, sys, time, numpy as np
bench_dir, work, threads, mode = sys.argv[1:5]
sys.path.insert(0, bench_dir)
sys.path.insert(0, os.path.join(os.path.dirname(bench_dir), "tests"))  # host_decoder.py: a test helper
import vampnet_ort
from bench_decode import STAGES, decode_feeds
from host_decoder import HostDecoder
from vampnet_ort.export.vampnet_weights import VampNetConfig
if mode == "matmul":
    session = vampnet_ort.create_session(f"{work}/matmul.onnx", with_library=False, intra_op_threads=int(threads))
    x = np.random.default_rng(0).standard_normal((575, 1280), dtype=np.float32)
    session.run(None, {"x": x})
    times = []
    for _ in range(5):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    print(*times)
    sys.exit(0)
name, repeats, out_file = sys.argv[5], int(sys.argv[6]), sys.argv[7]
kwargs, t, steps = STAGES[name]
config = VampNetConfig.from_kwargs(kwargs)
feeds = decode_feeds(config.n_codebooks, t, config.n_conditioning_codebooks, steps)
if mode == "loop":
    session = vampnet_ort.create_session(f"{work}/{name}.onnx", intra_op_threads=int(threads))
    session.run(None, {**feeds, "num_steps": np.array(1, np.int64)})  # warm-up
    run = lambda: session.run(None, feeds)[0]
else:
    host = HostDecoder(f"{work}/{name}_logits.onnx", intra_op_threads=int(threads))
    host.decode(feeds["codes"], feeds["mask"], num_steps=1)  # warm-up
    run = lambda: host.decode(feeds["codes"], feeds["mask"], seed=0, num_steps=steps)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    out = run()
    times.append(time.perf_counter() - start)
np.save(f"{work}/{out_file}", out)
print(*times)
"""


def decode_feeds(n_codebooks: int, t: int, n_conditioning: int, steps: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, size=(1, n_codebooks, t))
    mask = np.ones_like(codes)
    mask[:, :n_conditioning] = 0
    if n_conditioning == 0:  # the upstream app's periodic prompt: keep every 7th frame of the coarse codebooks
        mask[:, :, ::7] = 0
    f32 = np.float32
    return {"codes": codes, "mask": mask, "seed": np.array(0, np.int64), "num_steps": np.array(steps, np.int64),
            "temperature": np.array(1.0, f32), "mask_temperature": np.array(10.5, f32), "top_p": np.array(0.0, f32),
            "typical_mass": np.array(0.0, f32), "typical_min_tokens": np.array(64, np.int64),
            "sample_cutoff": np.array(1.0, f32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="decodes per process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating Loop/host rounds")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench_decode_", dir=args.workdir)
    work = Path(tmp.name)
    codec = random_codec(lac_kwargs(), seed=1)
    weights_bytes = {}
    for name, (kwargs, _, _) in STAGES.items():
        t0 = time.perf_counter()
        ckpt = random_vampnet_checkpoint(kwargs, seed=0, lora_rank=8, name=f"release {name}")
        weights_bytes[name] = sum(v.nbytes for v in ckpt.state.values())
        export_stage(work, name, ckpt, codec, graphs={f"{name}.onnx": decode_graph,
                                                      f"{name}_logits.onnx": logits_graph})
        del ckpt
        print(f"{name}: random checkpoint + export {time.perf_counter() - t0:.1f} s, "
              f"weights {weights_bytes[name] / 2**30:.2f} GiB")

    onnx.save_model(matmul_model(575, 1280, 5120), str(work / "matmul.onnx"))
    bench_dir = str(Path(__file__).resolve().parent)

    def child(*argv: str) -> list[str]:
        return subprocess.run([sys.executable, "-c", TIMING_CHILD, bench_dir, str(work), str(args.threads), *argv],
                              check=True, capture_output=True, text=True).stdout.split()

    from vampnet_ort.export.vampnet_weights import VampNetConfig

    # One process per measurement (several large sessions in one process disturbed each other's timings here),
    # Loop and host runs alternating, so machine load hits both alike.
    peak_samples: list[float] = []
    rows = []
    for name, (kwargs, t, steps) in STAGES.items():
        config = VampNetConfig.from_kwargs(kwargs)
        times: dict[str, list[float]] = {"loop": [], "host": []}
        for round_index in range(args.rounds):
            peak_samples += [float(v) for v in child("matmul")]
            for mode in ("loop", "host"):
                times[mode] += [float(v) for v in child(mode, name, str(args.repeats), f"{name}_{mode}.npy")]
        same = np.array_equal(np.load(work / f"{name}_loop.npy"), np.load(work / f"{name}_host.npy"))
        rows.append((name, config, t, steps, statistics.median(times["loop"]), statistics.median(times["host"]), same))
    peak = 2.0 * 575 * 1280 * 5120 / statistics.median(peak_samples)
    print(f"\nORT MatMul peak in this run: {peak / 1e9:.1f} GFLOP/s; {args.threads} intra-op threads; B=1; "
          f"medians of {args.rounds} x {args.repeats} decodes")
    print(f"  {'decode':28s} {'s':>8s} {'tokens/s':>9s} {'RTF':>7s} {'of peak':>8s}")
    for name, config, t, steps, loop_s, host_s, same in rows:
        audio_s = t * HOP / SAMPLE_RATE
        tokens = config.n_predict_codebooks * t
        flops = steps * forward_flops(config, t)
        for label, sec in (("Loop graph", loop_s), ("host-driven loop", host_s)):
            print(f"  {name + ' ' + label:28s} {sec:8.2f} {tokens / sec:9.1f} {sec / audio_s:7.3f} "
                  f"{flops / sec / peak:8.1%}")
        print(f"  {name}: T={t}, {steps} steps, {audio_s:.2f} s of audio; Loop vs host: {loop_s / host_s - 1:+.1%} "
              f"(Loop overhead); identical tokens: {same}")

    if not args.skip_rss:
        w = weights_bytes["coarse"]
        print(f"\ncoarse decode (T=575, 2 steps) in a fresh process; weights {w / 2**30:.2f} GiB; target: peak RSS < 2x")
        for prepack in ("on", "off"):
            out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(work / "coarse.onnx"),
                                  str(Path(__file__).resolve().parent), str(args.threads), prepack],
                                 check=True, capture_output=True, text=True).stdout.split()
            loaded_s, rss, anon, file_backed = float(out[0]), int(out[1]), int(out[2]), int(out[3])
            print(f"  MatMul prepacking {prepack:3s}: session load {loaded_s:5.1f} s, peak RSS {rss / 2**30:.2f} GiB = "
                  f"{rss / w:.2f}x (anonymous {anon / w:.2f}x, file-backed mmap of the .data file {file_backed / w:.2f}x)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
