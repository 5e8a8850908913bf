"""Hand-made torch.save archives for the .pth reader tests: a pickle built opcode by opcode (so a test can make a
storage size lie, a view run past its storage, or a global be anything) and the zip around it."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np


def pickle_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def pickle_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def pickle_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def pickle_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tensor_opcodes(key: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...], offset: int = 0,
                   storage: str = "FloatStorage") -> bytes:
    """_rebuild_tensor_v2(<storage key numel>, offset, size, stride, False, OrderedDict()) as torch.save writes it."""
    pid = pickle_tuple(pickle_str("storage"), pickle_global("torch", storage), pickle_str(key), pickle_str("cpu"),
                       pickle_int(numel)) + b"Q"
    return (pickle_global("torch._utils", "_rebuild_tensor_v2")
            + pickle_tuple(pid, pickle_int(offset), pickle_tuple(*map(pickle_int, size)),
                           pickle_tuple(*map(pickle_int, stride)), b"\x89",
                           pickle_global("collections", "OrderedDict") + b")R")
            + b"R")


def state_dict_pickle(entries: dict[str, bytes]) -> bytes:
    """{"state_dict": {name: <opcodes>}, "metadata": {"kwargs": {}}} around hand-made value opcodes."""
    items = b"".join(pickle_str(k) + v for k, v in entries.items())
    state = b"}(" + items + b"u" if entries else b"}"
    return (b"\x80\x02}(" + pickle_str("state_dict") + state + pickle_str("metadata") + b"}(" + pickle_str("kwargs")
            + b"}u" + b"u.")


def write_archive(path: Path, data_pkl: bytes, records: dict[str, bytes], byteorder: bytes | None = b"little",
                  prefix: str = "archive/") -> Path:
    """A zip laid out as torch.save lays it out: prefix/data.pkl, prefix/byteorder, prefix/data/<key>, version."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(prefix + "data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr(prefix + "byteorder", byteorder)
        for key, data in records.items():
            archive.writestr(f"{prefix}data/{key}", data)
        archive.writestr(prefix + "version", b"3\n")
    return path


def float_records(*arrays: np.ndarray) -> dict[str, bytes]:
    return {str(i): np.ascontiguousarray(a, dtype="<f4").tobytes() for i, a in enumerate(arrays)}
