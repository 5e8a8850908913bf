"""Writing state-dict checkpoints in the ``torch.save`` zip format without PyTorch (tests and benchmarks).

The counterpart of ``pth_reader``: the same archive layout (``<name>/data.pkl``, ``<name>/data/<key>``,
``byteorder``, ``version``; storage records aligned to 64 bytes as torch.save aligns them) and a protocol-2 pickle
that uses only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and ``torch.<Dtype>Storage``, so
``torch.load(weights_only=True)`` reads it as well. The pickle is emitted opcode by opcode, because the standard
pickler can only name globals that are importable here (PyTorch's are not).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from .pth_reader import STORAGE_DTYPES

_STORAGE_NAMES = {dtype: name for name, dtype in STORAGE_DTYPES.items()}
ARCHIVE_NAME = "archive"
ALIGNMENT = 64


class _PickleWriter:
    """Protocol-2 pickle opcodes for the tree types a checkpoint holds; arrays become storage references."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: list[np.ndarray] = []

    def _global(self, module: str, name: str) -> None:
        self.out.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def _str(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self.out.write(b"X" + struct.pack("<I", len(data)) + data)

    def _int(self, value: int) -> None:
        if -(2**31) <= value < 2**31:
            self.out.write(b"J" + struct.pack("<i", value))
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            if len(data) > 255:
                raise ValueError(f"integer {value} is too large for a checkpoint")
            self.out.write(b"\x8a" + bytes([len(data)]) + data)

    def _tuple(self, items: tuple[Any, ...]) -> None:
        self.out.write(b"(")
        for item in items:
            self.save(item)
        self.out.write(b"t")

    def _tensor(self, array: np.ndarray) -> None:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        name = _STORAGE_NAMES.get(np.dtype(dtype))
        if name is None:
            raise ValueError(f"arrays of dtype {array.dtype} cannot be stored as a torch tensor here")
        key = str(len(self.storages))
        self.storages.append(np.ascontiguousarray(array, dtype=dtype).reshape(-1))
        shape = tuple(int(n) for n in array.shape)
        strides = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape)))
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out.write(b"(")  # arguments of _rebuild_tensor_v2
        self.out.write(b"(")  # persistent id of the storage
        self._str("storage")
        self._global("torch", name)
        self._str(key)
        self._str("cpu")
        self._int(int(array.size))
        self.out.write(b"tQ")
        self._int(0)
        self._tuple(shape)
        self._tuple(strides)
        self.out.write(b"\x89")  # requires_grad = False
        self._global("collections", "OrderedDict")
        self.out.write(b")R")  # backward_hooks = OrderedDict()
        self.out.write(b"tR")

    def save(self, obj: Any) -> None:
        if obj is None:
            self.out.write(b"N")
        elif obj is True or obj is False:
            self.out.write(b"\x88" if obj else b"\x89")
        elif isinstance(obj, (int, np.integer)):
            self._int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self.out.write(b"G" + struct.pack(">d", float(obj)))
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        elif isinstance(obj, dict):
            if isinstance(obj, OrderedDict):
                self._global("collections", "OrderedDict")
                self.out.write(b")R")
            else:
                self.out.write(b"}")
            if obj:
                self.out.write(b"(")
                for key, value in obj.items():
                    self.save(key)
                    self.save(value)
                self.out.write(b"u")
        elif isinstance(obj, list):
            self.out.write(b"]")
            if obj:
                self.out.write(b"(")
                for item in obj:
                    self.save(item)
                self.out.write(b"e")
        elif isinstance(obj, tuple):
            self._tuple(obj)
        else:
            raise ValueError(f"a {type(obj).__name__} cannot be stored in a checkpoint")

    def finish(self) -> bytes:
        return b"\x80\x02" + self.out.getvalue() + b"."


def _write_record(archive: zipfile.ZipFile, fh: Any, name: str, data: bytes) -> None:
    """One stored record whose data starts at a multiple of ALIGNMENT (padding in the local extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    start = fh.tell() + 30 + len(name.encode())
    pad = (-(start + 4)) % ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    archive.writestr(info, data)


def write_pth(path: str | os.PathLike, tree: Any) -> None:
    """Write `tree` (dicts, OrderedDicts, lists, tuples, strings, numbers, booleans, None, numpy arrays of the
    dtypes in ``pth_reader.STORAGE_DTYPES``) as a ``torch.save``-format file that torch.load and read_pth read."""
    pickler = _PickleWriter()
    pickler.save(tree)
    data_pkl = pickler.finish()
    prefix = ARCHIVE_NAME + "/"
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
        _write_record(archive, fh, prefix + "data.pkl", data_pkl)
        _write_record(archive, fh, prefix + "byteorder", b"little")
        for key, storage in enumerate(pickler.storages):
            _write_record(archive, fh, f"{prefix}data/{key}", storage.tobytes())
        _write_record(archive, fh, prefix + "version", b"3\n")
