"""Reading upstream VampNet / LAC checkpoints safely, and folding weight norm and LoRA.

A checkpoint is one ``torch.save`` of ``{"state_dict": {name: Tensor}, "metadata": {"kwargs": {...}}}``
(audiotools ``BaseModel.save(package=False)``). It is read without PyTorch by ``pth_reader.read_pth``, a
restricted unpickler that accepts only what such a state dict holds: a file that needs arbitrary unpickling
(pickled classes or code) is refused, never executed. Everything downstream works on numpy arrays.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import ml_dtypes
import numpy as np

from vampnet_ort.fileio import file_sha256

from .pth_reader import PthError, read_pth
from .pth_writer import write_pth

# Tensor dtypes a checkpoint's weights may have; each is converted to float32 exactly.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float64))


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, unsafe, or not matching the expected architecture."""


def _read(path: Path) -> Any:
    try:
        return read_pth(path)
    except PthError as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _to_numpy(name: str, value: Any, path: Path) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise CheckpointError(f"{path}: state_dict entry '{name}' is a {type(value).__name__}, not a tensor")
    if value.dtype not in FLOAT_DTYPES:
        raise CheckpointError(f"{path}: state_dict entry '{name}' has dtype {value.dtype}, expected a float tensor")
    # float32 storage stays the read-only view of the bytes read (no second copy of a release-size checkpoint)
    return np.ascontiguousarray(value, dtype=np.float32)


@dataclass
class Checkpoint:
    """A loaded checkpoint: float32 numpy weights, constructor kwargs, and where it came from."""

    path: Path
    sha256: str
    kwargs: dict[str, Any]
    state: dict[str, np.ndarray] = field(repr=False)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load an upstream VampNet or LAC checkpoint into float32 numpy arrays (no PyTorch, nothing executed)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    raw = _read(p)
    if not isinstance(raw, Mapping) or "state_dict" not in raw:
        raise CheckpointError(f"{p}: expected a dict with 'state_dict' and 'metadata' (audiotools BaseModel.save format)")
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("kwargs"), Mapping):
        raise CheckpointError(f"{p}: missing metadata['kwargs'] (the model's constructor arguments)")
    state_raw = raw["state_dict"]
    if not isinstance(state_raw, Mapping):
        raise CheckpointError(f"{p}: 'state_dict' is not a mapping")
    state = {str(k): _to_numpy(str(k), v, p) for k, v in state_raw.items()}
    return Checkpoint(path=p, sha256=file_sha256(p), kwargs=dict(metadata["kwargs"]), state=state)


def load_lora_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A separate LoRA file: a plain state_dict holding only ``*.lora_A`` / ``*.lora_B`` tensors."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such LoRA file")
    raw = _read(p)
    if isinstance(raw, Mapping) and "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{p}: a LoRA file must be a state_dict (name -> tensor)")
    out = {str(k): _to_numpy(str(k), v, p) for k, v in raw.items()}
    bad = [k for k in out if not (k.endswith(".lora_A") or k.endswith(".lora_B"))]
    if bad:
        raise CheckpointError(f"{p}: a LoRA file may hold only lora_A/lora_B tensors; found {bad[:3]}")
    if not out:
        raise CheckpointError(f"{p}: the LoRA file holds no tensors")
    return out


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, np.ndarray], kwargs: Mapping[str, Any]) -> None:
    """Write a checkpoint in the upstream format (torch.save's zip; used by the random-checkpoint generator)."""
    sd = OrderedDict((k, np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items())
    write_pth(path, {"state_dict": sd, "metadata": {"kwargs": dict(kwargs)}})


def save_lora_file(path: str | os.PathLike, lora: Mapping[str, np.ndarray]) -> None:
    """Write a separate LoRA file (a plain state_dict of ``*.lora_A`` / ``*.lora_B``), as fine-tuning saves it."""
    bad = [k for k in lora if not (k.endswith(".lora_A") or k.endswith(".lora_B"))]
    if bad:
        raise CheckpointError(f"a LoRA file may hold only lora_A/lora_B tensors; got {bad[:3]}")
    write_pth(path, OrderedDict((k, np.ascontiguousarray(v, dtype=np.float32)) for k, v in lora.items()))


def check_finite(array: np.ndarray, name: str, source: str) -> np.ndarray:
    """`array` when every value is finite; CheckpointError naming the tensor otherwise (a NaN or Inf weight
    would export fine and then give garbage or all-zero codes with no error)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise CheckpointError(f"{source}: '{name}' holds {bad} NaN or infinite value(s); refusing to export it")
    return array


class StateReader:
    """Takes tensors out of a state dict with shape checks, and reports missing and unexpected keys.

    Every tensor a converter uses goes through ``take`` (or the folding helpers); ``finish()`` then fails on any
    key that was never used, so no weight of a checkpoint is silently dropped.
    """

    def __init__(self, state: Mapping[str, np.ndarray], source: str, lora_alpha: float = 1.0) -> None:
        self.state = dict(state)
        self.source = source
        self.lora_alpha = float(lora_alpha)
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str, shape: Iterable[int] | None = None) -> np.ndarray:
        if key not in self.state:
            raise CheckpointError(f"{self.source}: missing key '{key}'")
        value = self.state[key]
        if shape is not None:
            expected = tuple(int(s) for s in shape)
            if tuple(value.shape) != expected:
                raise CheckpointError(
                    f"{self.source}: '{key}' has shape {list(value.shape)}, expected {list(expected)}"
                )
        check_finite(value, key, self.source)
        self.used.add(key)
        return value

    def weight_norm(self, prefix: str, shape: Iterable[int]) -> np.ndarray:
        """W = g * v / ||v|| (norm over every dim but 0) from ``prefix.weight_g`` / ``prefix.weight_v``.

        Works for Conv1d (v [out, in, k]) and ConvTranspose1d (v [in, out, k]) alike: the norm is over all dims
        of the stored tensor except dim 0, as old-style ``torch.nn.utils.weight_norm`` does.
        """
        shape = tuple(int(s) for s in shape)
        v = self.take(f"{prefix}.weight_v", shape).astype(np.float64)
        g = self.take(f"{prefix}.weight_g", (shape[0],) + (1,) * (len(shape) - 1)).astype(np.float64)
        norm = np.sqrt(np.sum(v * v, axis=tuple(range(1, v.ndim)), keepdims=True))
        if not (norm > 0).all():
            raise CheckpointError(f"{self.source}: '{prefix}.weight_v' has a row of zeros (weight norm divides by 0)")
        return check_finite((g * v / norm).astype(np.float32), f"{prefix}.weight (weight-norm folded)", self.source)

    def linear(self, prefix: str, out_features: int, in_features: int) -> np.ndarray:
        """``prefix.weight`` [out, in] with LoRA merged when ``prefix.lora_A`` / ``lora_B`` are present.

        W_eff = W + (lora_B @ lora_A) * alpha / r (loralib, r = lora_A.shape[0]).
        """
        w = self.take(f"{prefix}.weight", (out_features, in_features))
        has_a, has_b = self.has(f"{prefix}.lora_A"), self.has(f"{prefix}.lora_B")
        if has_a != has_b:
            raise CheckpointError(f"{self.source}: '{prefix}' has only one of lora_A / lora_B")
        if not has_a:
            return w
        a = self.state[f"{prefix}.lora_A"]
        if a.ndim != 2 or a.shape[1] != in_features or a.shape[0] < 1:
            raise CheckpointError(
                f"{self.source}: '{prefix}.lora_A' has shape {list(a.shape)}, expected [r, {in_features}]"
            )
        rank = a.shape[0]
        a = self.take(f"{prefix}.lora_A", (rank, in_features)).astype(np.float64)
        b = self.take(f"{prefix}.lora_B", (out_features, rank)).astype(np.float64)
        with np.errstate(over="ignore"):  # a merge past float32's range is refused by name just below
            merged = (w.astype(np.float64) + (b @ a) * (self.lora_alpha / rank)).astype(np.float32)
        return check_finite(merged, f"{prefix}.weight (LoRA merged)", self.source)

    def apply_lora_file(self, lora: Mapping[str, np.ndarray], lora_source: str) -> None:
        """Replace/add LoRA tensors from a separate LoRA file; each must belong to an existing base weight."""
        for key, value in lora.items():
            base = key.rsplit(".", 1)[0] + ".weight"
            if base not in self.state:
                raise CheckpointError(f"{lora_source}: '{key}' has no base weight '{base}' in {self.source}")
            self.state[key] = value

    def finish(self) -> None:
        unexpected = sorted(set(self.state) - self.used)
        if unexpected:
            more = f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else ""
            raise CheckpointError(f"{self.source}: unexpected keys {unexpected[:5]}{more}")
