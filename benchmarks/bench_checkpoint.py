"""Reading .pth checkpoints: the PyTorch-free reader (export/pth_reader.py) against torch.load(weights_only=True).

Writes a random checkpoint set in the release layout (coarse: 20 layers, d=1280, LoRA rank 8; c2f: 16 layers;
a release-like LAC codec) with ``save_checkpoint``, then, each in a fresh child process so peak RSS is its own:
  - load: ``load_checkpoint`` (the reader) vs what the exporter did before (``torch.load(weights_only=True)``,
    every tensor ``.to(float32).contiguous().numpy()``), per file, in alternating rounds;
  - export: ``export_bundle`` of the whole set through each reader (the torch one patched in for the run).
Prints median wall seconds and peak RSS per variant, plus the load average and CPU model before and after (the
figures are only worth publishing from a quiet machine). Without torch only the reader is timed.

    python benchmarks/bench_checkpoint.py [--small] [--rounds 3] [--skip-export] [--workdir DIR] [--keep]

--small uses the golden-size models (a quick check that the script runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from vampnet_ort.export import save_checkpoint
from vampnet_ort.export.random_checkpoint import (
    GOLDEN_C2F_KWARGS,
    GOLDEN_COARSE_KWARGS,
    RELEASE_C2F_KWARGS,
    RELEASE_COARSE_KWARGS,
    random_vampnet_state,
)
from vampnet_ort.export.random_codec import GOLDEN_LIKE_CONFIG, RELEASE_LIKE_CONFIG, random_codec

# One child process = one measurement: prints "<seconds> <peak RSS KiB>".
LOAD_CHILD = """
import resource, sys, time
variant, path = sys.argv[1:3]
if variant == "torch":
    import torch
else:
    from vampnet_ort.export.checkpoint import load_checkpoint
start = time.perf_counter()  # imports are not timed (each variant's own imports are in its RSS)
if variant == "reader":
    state = load_checkpoint(path).state
else:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.detach().to(torch.float32).contiguous().numpy() for k, v in raw["state_dict"].items()}
# VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's peak across fork + exec)
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{time.perf_counter() - start:.4f} {hwm}")
"""

EXPORT_CHILD = """
import resource, sys, time
variant, work, out = sys.argv[1:4]
from vampnet_ort.export import checkpoint
from vampnet_ort.export.bundle import export_bundle
if variant == "torch":
    import torch

    def torch_read(path):
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
        convert = lambda t: t.detach().to(torch.float32).contiguous().numpy()
        return {"state_dict": {k: convert(v) for k, v in raw["state_dict"].items()}, "metadata": raw["metadata"]}

    checkpoint.read_pth = torch_read
start = time.perf_counter()
export_bundle(out, codec=f"{work}/codec.pth", coarse=f"{work}/coarse.pth", c2f=f"{work}/c2f.pth")
# VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's peak across fork + exec)
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{time.perf_counter() - start:.4f} {hwm}")
"""


def machine_state(when: str) -> None:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"[{when}] load average {load}; {os.cpu_count()} CPUs: {cpu}")


def child(code: str, *args: str) -> tuple[float, int]:
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    seconds, rss_kib = done.stdout.split()[-2:]
    return float(seconds), int(rss_kib) * 1024


def write_set(work: Path, small: bool) -> dict[str, Path]:
    coarse_kwargs, c2f_kwargs = (GOLDEN_COARSE_KWARGS, GOLDEN_C2F_KWARGS) if small else (
        RELEASE_COARSE_KWARGS, RELEASE_C2F_KWARGS)
    codec = random_codec(GOLDEN_LIKE_CONFIG if small else RELEASE_LIKE_CONFIG, seed=0)
    save_checkpoint(work / "codec.pth", codec.state, codec.kwargs)
    del codec
    for name, kwargs, seed in (("coarse", coarse_kwargs, 1), ("c2f", c2f_kwargs, 2)):
        save_checkpoint(work / f"{name}.pth", random_vampnet_state(kwargs, seed=seed, lora_rank=8), kwargs)
    return {name: work / f"{name}.pth" for name in ("codec", "coarse", "c2f")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="golden-size models (checks that the script runs)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant (default 3)")
    parser.add_argument("--skip-export", action="store_true", help="time loading only")
    parser.add_argument("--workdir", type=Path, help="where the checkpoints and bundles go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    variants = ["reader"] + (["torch"] if importlib.util.find_spec("torch") else [])
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_checkpoint-"))
    work.mkdir(parents=True, exist_ok=True)
    machine_state("start")
    try:
        files = write_set(work, args.small)
        sizes = {name: path.stat().st_size for name, path in files.items()}
        print(f"checkpoints ({'golden' if args.small else 'release'} size): "
              + ", ".join(f"{n} {s / 2**20:.1f} MiB" for n, s in sizes.items()))
        if "torch" not in variants:
            print("torch is not installed: timing the reader only")
        results: dict[str, dict[str, list[tuple[float, int]]]] = {}
        for name, path in files.items():
            runs: dict[str, list[tuple[float, int]]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for variant in variants:
                    runs[variant].append(child(LOAD_CHILD, variant, str(path)))
            results[name] = runs
        print(f"\nload (median of {args.rounds}, child processes; RSS includes the interpreter and imports)")
        print(f"  {'file':8s} {'variant':8s} {'seconds':>9s} {'peak RSS MiB':>13s} {'RSS / file':>11s}")
        for name, runs in results.items():
            for variant, samples in runs.items():
                seconds = statistics.median(s for s, _ in samples)
                rss = statistics.median(r for _, r in samples)
                print(f"  {name:8s} {variant:8s} {seconds:9.3f} {rss / 2**20:13.1f} {rss / sizes[name]:11.2f}")
        if not args.skip_export:
            print(f"\nexport_bundle of the set (median of {args.rounds}, child processes)")
            samples_by: dict[str, list[tuple[float, int]]] = {v: [] for v in variants}
            for round_index in range(args.rounds):
                for variant in variants:
                    out = work / f"bundle-{variant}-{round_index}"
                    samples_by[variant].append(child(EXPORT_CHILD, variant, str(work), str(out)))
            for variant, samples in samples_by.items():
                seconds = statistics.median(s for s, _ in samples)
                rss = statistics.median(r for _, r in samples)
                print(f"  {variant:8s} {seconds:9.3f} s   peak RSS {rss / 2**20:9.1f} MiB "
                      f"({rss / sizes['coarse']:.2f}x coarse.pth)")
            if len(variants) == 2:
                manifests = [json.loads((work / f"bundle-{v}-0" / "vampnet.json").read_text())["files"]
                             for v in variants]
                print(f"  bundles identical (sha256 of every file): {manifests[0] == manifests[1]}")
    finally:
        machine_state("end")
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
