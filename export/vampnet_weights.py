"""VampNet checkpoint -> the folded float32 weights the ONNX graphs use.

Reads the upstream layout (tests/golden/README.md "VampNet keys") through ``StateReader`` so that every tensor of the
checkpoint is used exactly once (missing, unexpected and mis-shaped keys are errors), and folds at export time:

- weight norm (classifier) and LoRA (``W + lora_B @ lora_A * alpha / r``, alpha = 1),
- the embedding: codec codebook rows (+ the model's MASK row) times the 1x1 ``out_proj`` conv become one table
  per codebook, ``tables [C, V + 1, D]`` (the ``vampnet.CodebookEmbedding`` contract),
- Q, K, V packed as one ``[D, 3D]`` MatMul weight; every linear transposed to ``[in, out]`` for ``x @ W``,
- the classifier columns permuted so that column ``p * V + v`` is token ``v`` of predicted codebook ``p``
  (upstream channel ``v * P + p``): the logits reshape to ``[B, T, P, V]`` without a gather.

Weights are produced one block at a time (``embedding()``, ``layer(i)``, ...), so an exporter can stream them to
disk and never hold a second full copy of the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from vampnet_ort.ops.contract import RELATIVE_POSITION_ATTENTION, RMS_NORM

from .checkpoint import Checkpoint, CheckpointError, StateReader

# Constructor arguments that only matter for training; accepted and ignored.
_TRAINING_ONLY_KWARGS = {"dropout", "cfg_dropout_prob"}
_ARCH_KWARGS = {
    "n_heads", "n_layers", "n_codebooks", "n_conditioning_codebooks", "latent_dim", "embedding_dim", "vocab_size",
}
_OPTION_KWARGS = {"r_cond_dim", "flash_attn", "noise_mode", "ctrl_dims", "cond_dim"}

# The T5 relative-position bucketing of upstream's MultiHeadRelativeAttention (fixed there, not a kwarg) and its
# RMSNorm epsilon: upstream's values are the ops' attribute defaults (ops/contract.py, the one place they are stated).
NUM_BUCKETS = int(RELATIVE_POSITION_ATTENTION.default("num_buckets"))
MAX_DISTANCE = int(RELATIVE_POSITION_ATTENTION.default("max_distance"))
RMS_EPSILON = float(RMS_NORM.default("epsilon"))


@dataclass(frozen=True)
class VampNetConfig:
    """The architecture of one VampNet model, from its checkpoint's ``metadata.kwargs``."""

    n_heads: int
    n_layers: int
    n_codebooks: int
    n_conditioning_codebooks: int
    latent_dim: int
    embedding_dim: int
    vocab_size: int
    num_buckets: int = NUM_BUCKETS
    max_distance: int = MAX_DISTANCE

    @property
    def n_predict_codebooks(self) -> int:
        return self.n_codebooks - self.n_conditioning_codebooks

    @property
    def mask_token(self) -> int:
        return self.vocab_size

    @property
    def head_dim(self) -> int:
        return self.embedding_dim // self.n_heads

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], source: str = "checkpoint") -> "VampNetConfig":
        """Validate upstream ``VampNet(**kwargs)`` arguments; unsupported options raise ``CheckpointError``."""
        unknown = sorted(set(kwargs) - _ARCH_KWARGS - _OPTION_KWARGS - _TRAINING_ONLY_KWARGS)
        if unknown:
            raise CheckpointError(
                f"{source}: unknown VampNet constructor argument(s) {unknown}; this exporter knows the upstream "
                "arguments " + str(sorted(_ARCH_KWARGS | _OPTION_KWARGS | _TRAINING_ONLY_KWARGS))
            )
        missing = sorted(_ARCH_KWARGS - set(kwargs))
        if missing:
            raise CheckpointError(f"{source}: metadata.kwargs lacks {missing} (needed to rebuild the architecture)")
        values: dict[str, int] = {}
        for key in sorted(_ARCH_KWARGS):
            value = kwargs[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise CheckpointError(f"{source}: kwargs['{key}'] = {value!r} is not an integer")
            values[key] = int(value)
        for key in ("n_heads", "n_layers", "n_codebooks", "latent_dim", "embedding_dim", "vocab_size"):
            if values[key] < 1:
                raise CheckpointError(f"{source}: kwargs['{key}'] = {values[key]} must be >= 1")
        if not 0 <= values["n_conditioning_codebooks"] < values["n_codebooks"]:
            raise CheckpointError(
                f"{source}: n_conditioning_codebooks = {values['n_conditioning_codebooks']} must be in "
                f"[0, n_codebooks = {values['n_codebooks']})"
            )
        if values["embedding_dim"] % values["n_heads"]:
            raise CheckpointError(
                f"{source}: embedding_dim {values['embedding_dim']} is not divisible by n_heads {values['n_heads']}"
            )
        r_cond_dim = kwargs.get("r_cond_dim", 0) or 0
        if r_cond_dim:
            raise CheckpointError(
                f"{source}: r_cond_dim = {r_cond_dim} is not supported: FiLM conditioning needs a conditioning "
                "vector that upstream VampNet.forward never passes (it calls the transformer with cond=None), "
                "so such a model has no defined forward; released models use r_cond_dim = 0"
            )
        noise_mode = kwargs.get("noise_mode", "mask")
        if noise_mode != "mask":
            raise CheckpointError(f"{source}: noise_mode = {noise_mode!r} is not supported (only 'mask')")
        ctrl_dims = kwargs.get("ctrl_dims")
        if ctrl_dims:
            raise CheckpointError(
                f"{source}: ctrl_dims = {ctrl_dims!r} (control-signal encoders) is not supported; only models "
                "without control inputs can be exported"
            )
        cond_dim = kwargs.get("cond_dim", 0) or 0
        if cond_dim:
            raise CheckpointError(f"{source}: cond_dim = {cond_dim} (external conditioning) is not supported")
        return cls(**values)


@dataclass
class LayerWeights:
    """One transformer layer, laid out for ``x [B, T, D] @ W``."""

    norm_1: np.ndarray  # [D]
    w_qkv: np.ndarray  # [D, 3D]  columns [Q | K | V]
    w_out: np.ndarray  # [D, D]
    norm_3: np.ndarray  # [D]
    w_1: np.ndarray  # [D, 4D]  columns [a | b] of GEGLU a * gelu_tanh(b)
    w_2: np.ndarray  # [2D, D]


def codec_codebooks(codec: Checkpoint | Mapping[str, np.ndarray], count: int, source: str = "codec") -> np.ndarray:
    """The first `count` codec codebooks, [count, codebook_size, codebook_dim] float32."""
    state = codec.state if isinstance(codec, Checkpoint) else codec
    if isinstance(codec, Checkpoint):
        source = str(codec.path)
    books = []
    for i in range(count):
        key = f"quantizer.quantizers.{i}.codebook.weight"
        if key not in state:
            raise CheckpointError(
                f"{source}: missing '{key}': the VampNet model embeds {count} codebooks but the codec has fewer"
            )
        value = np.asarray(state[key], dtype=np.float32)
        if value.ndim != 2 or (books and value.shape != books[0].shape):
            raise CheckpointError(f"{source}: '{key}' has shape {list(value.shape)}, expected [codebook_size, dim]")
        books.append(value)
    return np.stack(books)


class VampNetWeights:
    """Folds one VampNet checkpoint (+ optional separate LoRA file) block by block.

    Call ``embedding()``, ``relative_bias()``, ``layer(i)`` for every layer, ``final_norm()`` and ``classifier()``
    (in any order, each once), then ``finish()`` to fail on any checkpoint tensor that was never used.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        codec: Checkpoint | Mapping[str, np.ndarray],
        lora: Mapping[str, np.ndarray] | None = None,
        lora_source: str = "LoRA file",
    ) -> None:
        self.source = str(checkpoint.path)
        self.sha256 = checkpoint.sha256
        self.config = VampNetConfig.from_kwargs(checkpoint.kwargs, self.source)
        self.reader = StateReader(checkpoint.state, self.source)
        if lora:
            self.reader.apply_lora_file(lora, lora_source)
        c = self.config
        if checkpoint.kwargs.get("flash_attn") and not self.reader.has("transformer.layers.0.self_attn.w_qs.weight"):
            raise CheckpointError(
                f"{self.source}: flash_attn = True checkpoints (FlashMHA layers) are not supported; export a model "
                "built with flash_attn = False (relative-position attention)"
            )
        books = codec_codebooks(codec, c.n_codebooks)
        if books.shape[1] != c.vocab_size or books.shape[2] != c.latent_dim:
            raise CheckpointError(
                f"{self.source}: the codec codebooks are {list(books.shape[1:])} but the model expects "
                f"[vocab_size {c.vocab_size}, latent_dim {c.latent_dim}]: wrong codec for this model"
            )
        self._codebooks = books

    # -- blocks ---------------------------------------------------------------------------------------------
    def embedding(self) -> tuple[np.ndarray, np.ndarray]:
        """(tables [C, V + 1, D], bias [D]) for ``vampnet.CodebookEmbedding``."""
        c = self.config
        r = self.reader
        mask_rows = r.take("embedding.special.MASK", (c.n_codebooks, c.latent_dim))
        proj = r.take("embedding.out_proj.weight", (c.embedding_dim, c.n_codebooks * c.latent_dim, 1))[:, :, 0]
        bias = r.take("embedding.out_proj.bias", (c.embedding_dim,))
        proj64 = proj.astype(np.float64)
        tables = np.empty((c.n_codebooks, c.vocab_size + 1, c.embedding_dim), dtype=np.float32)
        for i in range(c.n_codebooks):
            rows = np.concatenate([self._codebooks[i], mask_rows[i : i + 1]], axis=0).astype(np.float64)
            tables[i] = rows @ proj64[:, i * c.latent_dim : (i + 1) * c.latent_dim].T
        return tables, np.ascontiguousarray(bias, dtype=np.float32)

    def relative_bias(self) -> np.ndarray:
        """Layer 0's T5 bias table [num_buckets, H] (reused by every layer)."""
        c = self.config
        return np.ascontiguousarray(
            self.reader.take(
                "transformer.layers.0.self_attn.relative_attention_bias.weight", (c.num_buckets, c.n_heads)
            ),
            dtype=np.float32,
        )

    def layer(self, index: int) -> LayerWeights:
        c = self.config
        d = c.embedding_dim
        r = self.reader
        p = f"transformer.layers.{index}"
        wq = r.linear(f"{p}.self_attn.w_qs", d, d)
        wk = r.linear(f"{p}.self_attn.w_ks", d, d)
        wv = r.linear(f"{p}.self_attn.w_vs", d, d)
        w_qkv = np.concatenate([wq.T, wk.T, wv.T], axis=1)
        del wq, wk, wv
        return LayerWeights(
            norm_1=np.ascontiguousarray(r.take(f"{p}.norm_1.weight", (d,)), dtype=np.float32),
            w_qkv=np.ascontiguousarray(w_qkv, dtype=np.float32),
            w_out=np.ascontiguousarray(r.linear(f"{p}.self_attn.fc", d, d).T, dtype=np.float32),
            norm_3=np.ascontiguousarray(r.take(f"{p}.norm_3.weight", (d,)), dtype=np.float32),
            w_1=np.ascontiguousarray(r.linear(f"{p}.feed_forward.w_1", 4 * d, d).T, dtype=np.float32),
            w_2=np.ascontiguousarray(r.linear(f"{p}.feed_forward.w_2", d, 2 * d).T, dtype=np.float32),
        )

    def final_norm(self) -> np.ndarray:
        return np.ascontiguousarray(
            self.reader.take("transformer.norm.weight", (self.config.embedding_dim,)), dtype=np.float32
        )

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight [D, P * V], bias [P * V]) with column p * V + v = upstream channel v * P + p."""
        c = self.config
        pv = c.n_predict_codebooks * c.vocab_size
        w = self.reader.weight_norm("classifier.layers.0", (pv, c.embedding_dim, 1))[:, :, 0]  # [V * P, D]
        b = self.reader.take("classifier.layers.0.bias", (pv,))
        w = w.reshape(c.vocab_size, c.n_predict_codebooks, c.embedding_dim).transpose(1, 0, 2).reshape(pv, -1)
        b = b.reshape(c.vocab_size, c.n_predict_codebooks).T.reshape(pv)
        return np.ascontiguousarray(w.T, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)

    def finish(self) -> None:
        """Fail if any checkpoint tensor was never used (e.g. FiLM or control weights of an unknown variant)."""
        self.reader.finish()
