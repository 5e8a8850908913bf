"""Random LAC codec checkpoints (numpy, no torch) for tests and benchmarks.

The keys and shapes follow upstream's state dict for the given config (the same layer tree the exporter reads);
weights are drawn the way the golden data's codec was: weight-norm g ~ U(0.3, 1), v ~ N(0, 1), biases
~ N(0, 0.05^2), Snake alpha ~ U(0.5, 1.5), codebooks ~ N(0, 1).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vampnet_ort.codec_geometry import (
    CodecConfig,
    Conv,
    ConvTranspose,
    Snake,
    decoder_plan,
    encoder_plan,
    iter_layers,
)

from .checkpoint import Checkpoint

RELEASE_LIKE_CONFIG: dict[str, Any] = {
    "sample_rate": 44100,
    "encoder_dim": 64,
    "encoder_rates": [2, 4, 8, 12],
    "decoder_dim": 1536,
    "decoder_rates": [12, 8, 4, 2],
    "n_codebooks": 14,
    "codebook_size": 1024,
    "codebook_dim": 8,
}

GOLDEN_LIKE_CONFIG: dict[str, Any] = {**RELEASE_LIKE_CONFIG, "encoder_dim": 8, "decoder_dim": 32}


def random_codec_state(config: CodecConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}

    def weight_norm(key: str, shape: tuple[int, ...], bias: int) -> None:
        state[f"{key}.weight_g"] = rng.uniform(0.3, 1.0, (shape[0], 1, 1)).astype(np.float32)
        state[f"{key}.weight_v"] = rng.standard_normal(shape, dtype=np.float32)
        state[f"{key}.bias"] = (0.05 * rng.standard_normal(bias)).astype(np.float32)

    for plan in (encoder_plan(config), decoder_plan(config)):
        for leaf in iter_layers(plan):
            if isinstance(leaf, Conv):
                weight_norm(leaf.key, (leaf.out_channels, leaf.in_channels, leaf.kernel), leaf.out_channels)
            elif isinstance(leaf, ConvTranspose):
                weight_norm(leaf.key, (leaf.in_channels, leaf.out_channels, leaf.kernel), leaf.out_channels)
            elif isinstance(leaf, Snake):
                state[f"{leaf.key}.alpha"] = rng.uniform(0.5, 1.5, (1, leaf.channels, 1)).astype(np.float32)
    d, k = config.latent_dim, config.codebook_dim
    for i in range(config.n_codebooks):
        prefix = f"quantizer.quantizers.{i}"
        weight_norm(f"{prefix}.in_proj", (k, d, 1), k)
        weight_norm(f"{prefix}.out_proj", (d, k, 1), d)
        state[f"{prefix}.codebook.weight"] = rng.standard_normal((config.codebook_size, k), dtype=np.float32)
    return state


def random_codec(config: Mapping[str, Any] | None = None, seed: int = 0) -> Checkpoint:
    """A random codec `Checkpoint` (release-like sizes when `config` is None)."""
    kwargs = dict(RELEASE_LIKE_CONFIG if config is None else config)
    kwargs.setdefault("quantizer_dropout", False)
    parsed = CodecConfig.from_kwargs(kwargs)
    state = random_codec_state(parsed, seed)
    digest = hashlib.sha256(f"random-codec seed={seed} {parsed.to_json()}".encode()).hexdigest()
    return Checkpoint(path=Path(f"<random codec seed={seed}>"), sha256=digest, kwargs=kwargs, state=state)
