"""Exporters (installed as ``vampnet_ort.export``): upstream checkpoints -> ONNX graphs.

Needs PyTorch only to read ``.pth`` files; graph building works on numpy arrays.
"""

from __future__ import annotations

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    StateReader,
    load_checkpoint,
    load_lora_file,
    save_checkpoint,
    save_lora_file,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "StateReader",
    "load_checkpoint",
    "load_lora_file",
    "save_checkpoint",
    "save_lora_file",
]
