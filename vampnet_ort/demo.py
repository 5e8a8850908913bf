"""The embedded demo bundle: tiny VampNet + LAC models with seeded random weights, exported once and cached.

It lets ``vampnet-ort vamp IN OUT`` and ``vampnet-ort demo DIR`` run end to end with no download and no PyTorch.
The weights are random: the output is NOT music (the bundle says ``"demo": true`` and the CLI prints a note). For
real results export the released VampNet checkpoints (docs/PIPELINE.md).

The bundle is built deterministically (fixed seeds, numpy only) into
``$VAMPNET_ORT_CACHE`` or ``$XDG_CACHE_HOME/vampnet-ort`` or ``~/.cache/vampnet-ort``, in ``demo-<version>-r<recipe>``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .fileio import rename_no_replace
from .bundle import BundleError, load_bundle
from .version import __version__

DEMO_RECIPE = 3  # bump when the demo models change (2: WebGPU-ready graph forms, docs/WEB.md; 3: FastGelu-fusable Gelu)
DEMO_NOTE = "note: using the built-in DEMO bundle (tiny random-weight models): the output is NOT music. " \
            "Export the real VampNet release for music (see docs/PIPELINE.md)."

# Model sizes: small enough to build in seconds and vamp 10 s of audio quickly, large enough to exercise every op.
DEMO_CODEC = dict(sample_rate=44100, encoder_dim=8, encoder_rates=[2, 4, 8, 12], decoder_dim=32,
                  decoder_rates=[12, 8, 4, 2], n_codebooks=14, codebook_size=1024, codebook_dim=8)
DEMO_COARSE = dict(n_heads=4, n_layers=2, n_codebooks=4, n_conditioning_codebooks=0, embedding_dim=64)
DEMO_C2F = dict(n_heads=4, n_layers=2, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=64)
DEMO_SEEDS = dict(codec=101, coarse=102, c2f=103)


@dataclass(frozen=True)
class DemoShape:
    n_codebooks: int
    sample_rate: int


DEMO_SHAPE = DemoShape(n_codebooks=int(DEMO_CODEC["n_codebooks"]), sample_rate=int(DEMO_CODEC["sample_rate"]))
"""The demo bundle's codebook count and rate, known before it is built (``pipeline.plan_file`` needs them)."""


def cache_root() -> Path:
    override = os.environ.get("VAMPNET_ORT_CACHE")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vampnet-ort"


def demo_dir() -> Path:
    return cache_root() / f"demo-{__version__}-r{DEMO_RECIPE}"


def build_demo_bundle(out_dir: Path) -> Path:
    """Export the demo bundle into `out_dir` (must not exist or be empty)."""
    try:
        from vampnet_ort.export.bundle import export_bundle
        from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
        from vampnet_ort.export.random_codec import random_codec
    except ImportError as exc:
        raise BundleError(f"cannot build the demo bundle: the exporter is not available ({exc})") from None
    codec = random_codec(DEMO_CODEC, seed=DEMO_SEEDS["codec"])
    coarse = random_vampnet_checkpoint(vampnet_kwargs(**DEMO_COARSE), seed=DEMO_SEEDS["coarse"], name="demo coarse")
    c2f = random_vampnet_checkpoint(vampnet_kwargs(**DEMO_C2F), seed=DEMO_SEEDS["c2f"], name="demo c2f")
    return export_bundle(out_dir, codec=codec, coarse=coarse, c2f=c2f, demo=True)


def demo_bundle_path(log: Optional[Callable[[str], None]] = None) -> Path:
    """The cached demo bundle, built on first use (concurrent builders are safe: the first rename wins)."""
    target = demo_dir()
    if target.is_dir():
        try:
            load_bundle(target)
            return target
        except BundleError:
            if log:
                log(f"the cached demo bundle at {target} is damaged; rebuilding it")
            shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if log:
        log(f"building the demo bundle (once) in {target} ...")
    staging = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=str(target.parent)))
    try:
        built = build_demo_bundle(staging / "bundle")
        try:
            rename_no_replace(built, target)  # never replaces a bundle another builder put there meanwhile
        except OSError:
            if not target.is_dir():  # lost a race only if somebody else's build is there now
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def synthesize_clip(seconds: float = 5.0, sample_rate: int = 44100, seed: int = 0) -> np.ndarray:
    """A short stereo test clip: a plucked arpeggio over a kick and hi-hat pattern, float32 [2, frames]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    beat = 0.5  # 120 bpm
    notes = [220.0, 277.18, 329.63, 440.0, 329.63, 277.18]
    for i, start in enumerate(np.arange(0.0, seconds, beat / 2)):
        s = int(start * sample_rate)
        length = min(n - s, int(0.45 * sample_rate))
        tt = np.arange(length) / sample_rate
        f = notes[i % len(notes)]
        out[s: s + length] += 0.25 * np.exp(-tt * 6) * (np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt))
    for start in np.arange(0.0, seconds, beat):
        s = int(start * sample_rate)
        length = min(n - s, int(0.2 * sample_rate))
        tt = np.arange(length) / sample_rate
        out[s: s + length] += 0.5 * np.exp(-tt * 25) * np.sin(2 * np.pi * (50 + 80 * np.exp(-tt * 40)) * tt)
    for start in np.arange(beat / 2, seconds, beat):
        s = int(start * sample_rate)
        length = min(n - s, int(0.05 * sample_rate))
        out[s: s + length] += 0.08 * np.exp(-np.arange(length) / sample_rate * 80) * rng.standard_normal(length)
    pan = 0.15 * np.sin(2 * np.pi * 0.25 * t)
    stereo = np.stack([out * (1 - pan), out * (1 + pan)])
    return (0.8 * stereo / np.max(np.abs(stereo))).astype(np.float32)
