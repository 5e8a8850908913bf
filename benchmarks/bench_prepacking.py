"""ORT MatMul weight prepacking on vs off ("session.disable_prepacking" = "1") for the release-size coarse graphs:
session load time, run seconds (T=575, B=1; logits graph: one forward; decode graph: a 2-step decode) and peak
RSS, each variant in fresh processes, alternating.

    python benchmarks/bench_prepacking.py [--model DIR/coarse.onnx] [--threads 2] [--rounds 2] [--repeats 2]

Without --model a random release-size coarse stage is exported into a temporary directory first (~1.3 GB) and
its decode graph is measured.
Timings on a shared machine are noisy; never assert on them in tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import sys, time
import numpy as np
import vampnet_ort
model, threads, prepack, repeats = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on", int(sys.argv[4])
options = vampnet_ort.session_options(intra_op_threads=threads, disable_prepacking=not prepack)
start = time.perf_counter()
session = vampnet_ort.create_session(model, options=options)
loaded = time.perf_counter() - start
codes = np.random.default_rng(0).integers(0, 1024, (1, 4, 575)).astype(np.int64)
feeds = {"codes": codes}
if "mask" in [i.name for i in session.get_inputs()]:  # decode graph: a 2-step decode
    mask = np.zeros_like(codes)
    mask[:, :, 100:400] = 1
    f32 = np.float32
    feeds.update(mask=mask, seed=np.array(0, np.int64), num_steps=np.array(2, np.int64),
                 temperature=np.array(1, f32), mask_temperature=np.array(10.5, f32), top_p=np.array(0, f32),
                 typical_mass=np.array(0, f32), typical_min_tokens=np.array(64, np.int64),
                 sample_cutoff=np.array(1, f32))
else:
    codes[:, :, 100:400] = 1024
session.run(None, feeds)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    session.run(None, feeds)
    times.append(time.perf_counter() - start)
rss = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0] * 1024
print(loaded, min(times), rss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a release-size coarse.onnx or coarse_logits.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per process (min taken)")
    args = parser.parse_args()
    tmp = None
    model = args.model
    if model is None:
        from vampnet_ort.export.random_checkpoint import RELEASE_COARSE_KWARGS, lac_kwargs, random_vampnet_checkpoint
        from vampnet_ort.export.decode_graph import decode_graph
        from vampnet_ort.export.random_codec import random_codec
        from vampnet_ort.export.vampnet_export import export_stage

        tmp = tempfile.TemporaryDirectory(prefix="bench_prepacking_")
        export_stage(Path(tmp.name), "coarse", random_vampnet_checkpoint(RELEASE_COARSE_KWARGS),
                     random_codec(lac_kwargs(), seed=1), graphs={"coarse.onnx": decode_graph})
        model = Path(tmp.name) / "coarse.onnx"
    results: dict[str, list[tuple[float, float, int]]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for prepack in ("on", "off"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(model), str(args.threads), prepack,
                                  str(args.repeats)], check=True, capture_output=True, text=True).stdout.split()
            results[prepack].append((float(out[0]), float(out[1]), int(out[2])))
    weights = sum(p.stat().st_size for p in model.parent.glob("*.data"))
    print(f"release {model.name}, T=575, B=1, {args.threads} intra-op threads, {args.rounds} rounds x "
          f"{args.repeats} forwards; weights {weights / 2**30:.2f} GiB")
    med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in results.items()}
    for prepack in ("on", "off"):
        load_s, fwd_s, rss = med[prepack]
        print(f"  prepacking {prepack:3s}: load {load_s:5.1f} s, run {fwd_s:6.2f} s, peak RSS "
              f"{rss / 2**30:.2f} GiB = {rss / weights:.2f}x weights")
    print(f"  run time off/on: {med['off'][1] / med['on'][1]:.3f}; peak RSS off/on: {med['off'][2] / med['on'][2]:.3f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
