"""Shared helpers for the benchmarks: median wall time of interleaved runs, printed as ratios; the CPU model."""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable, Mapping


def median_seconds(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def compare(candidates: Mapping[str, Callable[[], object]], repeats: int = 20, warmup: int = 3,
            rounds: int = 3) -> dict[str, float]:
    """Median seconds per candidate, measured in interleaved rounds so machine noise hits all alike."""
    per_round: dict[str, list[float]] = {name: [] for name in candidates}
    for name, fn in candidates.items():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in candidates.items():
            per_round[name].append(median_seconds(fn, repeats=max(1, repeats // rounds), warmup=0))
    return {name: statistics.median(v) for name, v in per_round.items()}


def print_table(title: str, seconds: Mapping[str, float], baseline: str) -> None:
    base = seconds[baseline]
    print(f"\n{title}")
    print(f"  {'variant':44s} {'ms':>10s} {'speed-up vs ' + baseline:>28s}")
    for name, s in seconds.items():
        print(f"  {name:44s} {s * 1e3:10.3f} {base / s:27.2f}x")


def cpu_model() -> str:
    """The CPU's model name (every benchmark prints it: figures of different CPUs are never compared)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
