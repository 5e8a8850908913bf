"""Where graph initializers go: inline in the model, or streamed to one external-data file.

``ExternalWeights`` writes each tensor to ``<dir>/<file name>`` as soon as it is added (offsets aligned to 64 KiB
so ONNX Runtime can memory-map them) and keeps only a ``TensorProto`` that points at the bytes. An exporter can
therefore fold a checkpoint block by block and never hold the converted model in memory twice. Several models
may share one store's file (the decode and logits graphs of a stage use the same weights).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

# Offsets of external tensors are multiples of this (the allocation granularity ORT and onnx use for mmap).
ALIGNMENT = 1 << 16
# Tensors smaller than this stay inline in the model (norm scales, biases, the relative-position table).
INLINE_LIMIT_BYTES = 4096


class WeightStore:
    """Collects initializers (in memory). Subclasses decide where the bytes live."""

    def __init__(self) -> None:
        self.initializers: list[TensorProto] = []
        self._names: set[str] = set()
        self.total_bytes = 0

    def add(self, name: str, array: np.ndarray) -> str:
        if name in self._names:
            raise ValueError(f"initializer '{name}' added twice")
        array = np.ascontiguousarray(array)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"weight '{name}' holds NaN or infinite values; refusing to export it")
        self._names.add(name)
        self.total_bytes += array.nbytes
        self.initializers.append(self._tensor(name, array))
        return name

    def _tensor(self, name: str, array: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(array, name)

    def close(self) -> None:
        """Flush and close any file the store writes (no-op in memory)."""


class InlineWeights(WeightStore):
    """Every initializer inline in the model (small models, tests)."""


class ExternalWeights(WeightStore):
    """Initializers of at least ``INLINE_LIMIT_BYTES`` go to ``directory / file_name`` (one file, aligned)."""

    def __init__(self, directory: str | os.PathLike, file_name: str) -> None:
        super().__init__()
        if os.sep in file_name or (os.altsep and os.altsep in file_name):
            raise ValueError(f"external data file name must be a plain name, got {file_name!r}")
        self.directory = Path(directory)
        self.file_name = file_name
        self.path = self.directory / file_name
        self._fh: BinaryIO | None = open(self.path, "xb")
        self._offset = 0

    def _tensor(self, name: str, array: np.ndarray) -> TensorProto:
        if array.nbytes < INLINE_LIMIT_BYTES:
            return numpy_helper.from_array(array, name)
        if self._fh is None:
            raise ValueError(f"{self.path}: store already closed")
        pad = (-self._offset) % ALIGNMENT
        if pad:
            self._fh.write(b"\0" * pad)
            self._offset += pad
        offset = self._offset
        self._fh.write(memoryview(array).cast("B"))
        self._offset += array.nbytes
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.file_name), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    @property
    def file_bytes(self) -> int:
        return self._offset

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
