"""An independent float64 numpy forward of upstream VampNet, straight from a raw checkpoint state dict.

Written from docs/SPEC.md section 1 and tests/golden/README.md, sharing no code with the exporter: it folds weight norm
itself, evaluates LoRA *unmerged* (x A^T B^T / r next to x W^T), builds the embedding by lookup + concat + 1x1
conv, materialises the full [H, T, T] position bias, and returns logits in upstream's layout
[B, V, T * P] (flat index t * P + codebook). It is checked against golden/forward.npz before it is used as the
reference for random configurations.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def rms_norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def linear(state: Mapping[str, np.ndarray], prefix: str, x: np.ndarray) -> np.ndarray:
    w = state[f"{prefix}.weight"].astype(np.float64)
    y = x @ w.T
    if f"{prefix}.lora_A" in state:
        a = state[f"{prefix}.lora_A"].astype(np.float64)
        b = state[f"{prefix}.lora_B"].astype(np.float64)
        y = y + (x @ a.T) @ b.T * (1.0 / a.shape[0])
    return y


def weight_norm(state: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    v = state[f"{prefix}.weight_v"].astype(np.float64)
    g = state[f"{prefix}.weight_g"].astype(np.float64)
    return g * v / np.sqrt((v**2).sum(axis=tuple(range(1, v.ndim)), keepdims=True))


def position_buckets(t: int, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """[T, T] bucket of key - query (T5 bidirectional rule; the log in float32 as upstream)."""
    rel = np.arange(t)[None, :] - np.arange(t)[:, None]
    half = num_buckets // 2
    out = (rel > 0).astype(np.int64) * half
    n = np.abs(rel)
    exact = half // 2
    with np.errstate(divide="ignore"):
        scaled = (
            np.log(n.astype(np.float32) / np.float32(exact))
            / np.float32(math.log(max_distance / exact))
            * np.float32(half - exact)
        )
    large = exact + np.where(n >= exact, scaled, 0).astype(np.int64)
    large = np.minimum(large, half - 1)
    return out + np.where(n < exact, n, large)


def embed(
    state: Mapping[str, np.ndarray], codebooks: np.ndarray, codes: np.ndarray, latent_dim: int
) -> np.ndarray:
    """codes [B, C, T] -> [B, T, D]: per-codebook lookup (row V = MASK), concat, 1x1 conv with bias."""
    b, c, t = codes.shape
    latents = np.empty((b, c * latent_dim, t))
    for i in range(c):
        rows = np.concatenate([codebooks[i], state["embedding.special.MASK"][i : i + 1]], axis=0)
        latents[:, i * latent_dim : (i + 1) * latent_dim, :] = rows[codes[:, i, :]].transpose(0, 2, 1)
    w = state["embedding.out_proj.weight"].astype(np.float64)[:, :, 0]
    out = np.einsum("dk,bkt->bdt", w, latents) + state["embedding.out_proj.bias"].astype(np.float64)[None, :, None]
    return out.transpose(0, 2, 1)


def forward(
    state: Mapping[str, np.ndarray], kwargs: Mapping[str, Any], codebooks: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(logits [B, V, T * P] upstream layout, activations [L, B, T, D]) in float64."""
    heads = int(kwargs["n_heads"])
    d = int(kwargs["embedding_dim"])
    vocab = int(kwargs["vocab_size"])
    n_pred = int(kwargs["n_codebooks"]) - int(kwargs["n_conditioning_codebooks"])
    b, _, t = codes.shape
    dh = d // heads
    x = embed(state, codebooks, codes, int(kwargs["latent_dim"]))
    table = state["transformer.layers.0.self_attn.relative_attention_bias.weight"].astype(np.float64)
    bias = table[position_buckets(t)].transpose(2, 0, 1)  # [H, T, T]
    acts = []
    for i in range(int(kwargs["n_layers"])):
        pre = f"transformer.layers.{i}"
        y = rms_norm(x, state[f"{pre}.norm_1.weight"].astype(np.float64))

        def split_heads(z: np.ndarray) -> np.ndarray:
            return z.reshape(b, t, heads, dh).transpose(0, 2, 1, 3)

        q = split_heads(linear(state, f"{pre}.self_attn.w_qs", y))
        k = split_heads(linear(state, f"{pre}.self_attn.w_ks", y))
        v = split_heads(linear(state, f"{pre}.self_attn.w_vs", y))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias[None]
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        att = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        x = x + linear(state, f"{pre}.self_attn.fc", att)
        y = rms_norm(x, state[f"{pre}.norm_3.weight"].astype(np.float64))
        h = linear(state, f"{pre}.feed_forward.w_1", y)
        x = x + linear(state, f"{pre}.feed_forward.w_2", h[..., : 2 * d] * gelu_tanh(h[..., 2 * d :]))
        acts.append(x)
    y = rms_norm(x, state["transformer.norm.weight"].astype(np.float64))
    w = weight_norm(state, "classifier.layers.0")[:, :, 0]  # [V * P, D]
    out = np.einsum("cd,btd->bct", w, y) + state["classifier.layers.0.bias"].astype(np.float64)[None, :, None]
    # channel = token * P + codebook  ->  [B, V, T * P] with flat index t * P + codebook
    logits = out.reshape(b, vocab, n_pred, t).transpose(0, 1, 3, 2).reshape(b, vocab, t * n_pred)
    return logits, np.stack(acts)


def upstream_to_bptv(logits: np.ndarray, n_pred: int) -> np.ndarray:
    """[B, V, T * P] (upstream) -> [B, P, T, V] (vampnet-ort)."""
    b, vocab, tp = logits.shape
    return logits.reshape(b, vocab, tp // n_pred, n_pred).transpose(0, 3, 2, 1)


def codec_codebooks(codec_state: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    return np.stack([codec_state[f"quantizer.quantizers.{i}.codebook.weight"] for i in range(count)]).astype(
        np.float64
    )
