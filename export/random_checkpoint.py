"""Random VampNet and LAC checkpoints in the upstream format, at any size (tests and benchmarks).

The key layout and the weight scales follow tests/golden/README.md ("Checkpoint format", "How the weights were
randomised"), so a generated checkpoint exercises every fold the exporter performs (weight norm, LoRA, the MASK
rows) with values of realistic magnitude. Results are ``Checkpoint`` objects holding numpy arrays; write them with
``save_checkpoint`` (and ``save_lora_file``) when a ``.pth`` is needed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .checkpoint import Checkpoint

# Upstream LoRA targets (loralib Linear): every transformer linear but w_ks.
LORA_TARGETS = ("self_attn.w_qs", "self_attn.w_vs", "self_attn.fc", "feed_forward.w_1", "feed_forward.w_2")


def vampnet_kwargs(
    *,
    n_heads: int,
    n_layers: int,
    n_codebooks: int,
    n_conditioning_codebooks: int = 0,
    embedding_dim: int,
    latent_dim: int = 8,
    vocab_size: int = 1024,
) -> dict[str, Any]:
    """Every ``VampNet.__init__`` argument, as audiotools stores them in ``metadata.kwargs``."""
    return {
        "n_heads": n_heads,
        "n_layers": n_layers,
        "r_cond_dim": 0,
        "n_codebooks": n_codebooks,
        "n_conditioning_codebooks": n_conditioning_codebooks,
        "latent_dim": latent_dim,
        "embedding_dim": embedding_dim,
        "vocab_size": vocab_size,
        "flash_attn": False,
        "noise_mode": "mask",
        "dropout": 0.1,
        "ctrl_dims": None,
        "cfg_dropout_prob": 0.2,
        "cond_dim": 0,
    }


# The released VampNet models (docs/SPEC.md section 1).
RELEASE_COARSE_KWARGS = vampnet_kwargs(n_heads=20, n_layers=20, n_codebooks=4, embedding_dim=1280)
RELEASE_C2F_KWARGS = vampnet_kwargs(
    n_heads=20, n_layers=16, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=1280
)
# The golden tiny models (tests/golden/README.md "Configs").
GOLDEN_COARSE_KWARGS = vampnet_kwargs(n_heads=4, n_layers=3, n_codebooks=4, embedding_dim=64)
GOLDEN_C2F_KWARGS = vampnet_kwargs(n_heads=4, n_layers=2, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=64)


def lac_kwargs(
    *,
    encoder_dim: int = 8,
    encoder_rates: Iterable[int] = (2, 4, 8, 12),
    decoder_dim: int = 32,
    decoder_rates: Iterable[int] = (12, 8, 4, 2),
    n_codebooks: int = 14,
    codebook_size: int = 1024,
    codebook_dim: int = 8,
    sample_rate: int = 44100,
) -> dict[str, Any]:
    """``LAC.__init__`` arguments (defaults: the golden tiny codec)."""
    return {
        "encoder_dim": encoder_dim,
        "encoder_rates": list(encoder_rates),
        "decoder_dim": decoder_dim,
        "decoder_rates": list(decoder_rates),
        "n_codebooks": n_codebooks,
        "codebook_size": codebook_size,
        "codebook_dim": codebook_dim,
        "quantizer_dropout": False,
        "sample_rate": sample_rate,
    }


def _state_sha256(state: Mapping[str, np.ndarray], kwargs: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(repr(sorted(kwargs.items())).encode())
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key]).data)
    return digest.hexdigest()


class _Random:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def normal(self, shape: tuple[int, ...], std: float, mean: float = 0.0) -> np.ndarray:
        out = self.rng.standard_normal(shape, dtype=np.float32)
        if std != 1.0:
            out *= np.float32(std)
        if mean:
            out += np.float32(mean)
        return out

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, shape).astype(np.float32)


def random_vampnet_state(kwargs: Mapping[str, Any], seed: int = 0, lora_rank: int = 8) -> dict[str, np.ndarray]:
    """A VampNet state dict with the upstream keys; ``lora_rank=0`` leaves out every lora_A / lora_B."""
    r = _Random(seed)
    d = int(kwargs["embedding_dim"])
    c = int(kwargs["n_codebooks"])
    p = c - int(kwargs["n_conditioning_codebooks"])
    latent = int(kwargs["latent_dim"])
    vocab = int(kwargs["vocab_size"])
    heads = int(kwargs["n_heads"])
    state: dict[str, np.ndarray] = {
        "embedding.special.MASK": r.normal((c, latent), 1.0),
        "embedding.out_proj.weight": r.normal((d, c * latent, 1), (c * latent) ** -0.5),
        "embedding.out_proj.bias": r.normal((d,), 0.05),
    }
    shapes = {
        "self_attn.w_qs": (d, d),
        "self_attn.w_ks": (d, d),
        "self_attn.w_vs": (d, d),
        "self_attn.fc": (d, d),
        "feed_forward.w_1": (4 * d, d),
        "feed_forward.w_2": (d, 2 * d),
    }
    for i in range(int(kwargs["n_layers"])):
        pre = f"transformer.layers.{i}"
        state[f"{pre}.norm_1.weight"] = r.normal((d,), 0.1, mean=1.0)
        for name, (fan_out, fan_in) in shapes.items():
            state[f"{pre}.{name}.weight"] = r.normal((fan_out, fan_in), fan_in**-0.5)
            if lora_rank and name in LORA_TARGETS:
                state[f"{pre}.{name}.lora_A"] = r.normal((lora_rank, fan_in), 2.0 * fan_in**-0.5)
                state[f"{pre}.{name}.lora_B"] = r.normal((fan_out, lora_rank), 0.5)
            if i == 0 and name == "self_attn.w_qs":
                state[f"{pre}.self_attn.relative_attention_bias.weight"] = r.normal((32, heads), 0.5)
        state[f"{pre}.norm_3.weight"] = r.normal((d,), 0.1, mean=1.0)
    state["transformer.norm.weight"] = r.normal((d,), 0.1, mean=1.0)
    state["classifier.layers.0.weight_g"] = r.uniform((vocab * p, 1, 1), 1.5, 3.0)
    state["classifier.layers.0.weight_v"] = r.normal((vocab * p, d, 1), 1.0)
    state["classifier.layers.0.bias"] = r.normal((vocab * p,), 0.05)
    return state


def random_lora_state(kwargs: Mapping[str, Any], seed: int = 1, rank: int = 8) -> dict[str, np.ndarray]:
    """Only the lora_A / lora_B tensors of a VampNet model (what a separate LoRA file holds)."""
    full = random_vampnet_state(kwargs, seed=seed, lora_rank=rank)
    return {k: v for k, v in full.items() if k.endswith((".lora_A", ".lora_B"))}


def random_vampnet_checkpoint(
    kwargs: Mapping[str, Any], seed: int = 0, lora_rank: int = 8, name: str = "vampnet"
) -> Checkpoint:
    state = random_vampnet_state(kwargs, seed, lora_rank)
    return Checkpoint(
        path=Path(f"<random {name} seed={seed}>"), sha256=_state_sha256(state, kwargs), kwargs=dict(kwargs), state=state
    )
