"""Whole-process start-up of the `vampnet-ort` command, side by side for several installs.

    python benchmarks/bench_startup.py --install before=/path/venv-a --install after=.venv [--runs 7]

For each install it runs, as fresh processes under ``/usr/bin/time``, interleaved round by round so that machine
noise hits every install alike:
  - ``vampnet-ort --help``
  - ``vampnet-ort info DEMO_BUNDLE`` (hashes every file, checks every graph)
  - ``vampnet-ort vamp CLIP.wav OUT.wav`` on the demo bundle, a 5 s clip
and prints the median and best wall time, the median peak RSS, and each install's ratio to the first one. The
1-minute load average and the CPU model are printed with the figures: take them on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_model  # noqa: E402  (benchmarks/_timing.py)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process."""
    with tempfile.NamedTemporaryFile("r") as report:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        wall, rss = report.read().split()[-2:]
    return float(wall), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="append", required=True, metavar="NAME=VENV",
                        help="a virtual environment with vampnet-ort installed (repeatable; the first is the baseline)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each command per install (default 7)")
    args = parser.parse_args()
    installs = dict(item.split("=", 1) for item in args.install)

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    first = Path(next(iter(installs.values())))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    # The demo bundle (built once, cached) and a 5 s clip, made with the baseline install.
    prepare = ("import sys, numpy as np, soundfile as sf\n"
               "from vampnet_ort.demo import demo_bundle_path, synthesize_clip\n"
               "print(demo_bundle_path())\n"
               "clip = np.asarray(synthesize_clip(5.0), np.float32)\n"
               "sf.write(sys.argv[1], clip.T if clip.ndim == 2 else clip, 44100)\n")
    clip = work / "clip.wav"
    bundle = subprocess.run([str(first / "bin" / "python"), "-c", prepare, str(clip)], check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    commands = {
        "--help": ["--help"],
        "info DEMO": ["info", bundle],
        "vamp 5 s (demo bundle)": ["vamp", str(clip), "OUT"],
    }
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for name, venv in installs.items():  # warm the page cache and the bytecode caches
        for command, argv in commands.items():
            out = work / f"warm-{name}.wav"
            timed([str(Path(venv) / "bin" / "vampnet-ort"), *[str(out) if a == "OUT" else a for a in argv]], env)
            out.unlink(missing_ok=True)
    for run in range(args.runs):
        for command, argv in commands.items():
            for name, venv in installs.items():
                out = work / f"out-{name}-{run}.wav"
                full = [str(Path(venv) / "bin" / "vampnet-ort"), *[str(out) if a == "OUT" else a for a in argv]]
                results.setdefault((command, name), []).append(timed(full, env))
                out.unlink(missing_ok=True)

    load1 = os.getloadavg()[0]
    print(f"CPU: {cpu_model()}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
          f"{args.runs} runs each, interleaved; 1-min load average after the runs: {load1:.2f}")
    baseline = next(iter(installs))
    print(f"{'command':26s} {'install':10s} {'median s':>9s} {'best s':>8s} {'RSS MiB':>8s} {'vs ' + baseline:>10s}")
    for command in commands:
        base = statistics.median(w for w, _ in results[(command, baseline)])
        for name in installs:
            samples = results[(command, name)]
            median = statistics.median(w for w, _ in samples)
            best = min(w for w, _ in samples)
            rss = statistics.median(r for _, r in samples) / 1024
            print(f"{command:26s} {name:10s} {median:9.3f} {best:8.3f} {rss:8.1f} {base / median:9.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
