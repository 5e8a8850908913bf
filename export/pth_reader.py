"""Reading ``torch.save`` files without PyTorch, and without ever running code from them.

A ``.pth`` written by ``torch.save`` (PyTorch >= 1.6) is a zip archive with one top-level folder::

    <name>/data.pkl          the object tree, pickled (protocol 2)
    <name>/data/<key>        the raw bytes of each storage, in the byte order of <name>/byteorder
    <name>/byteorder         "little" or "big" (absent in files from PyTorch < 1.10: little)
    <name>/version, ...      format versions, serialization id, storage alignment

``data.pkl`` refers to storages by persistent id ``("storage", torch.<Dtype>Storage, key, location, numel)``
and builds tensors with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``. Here a
restricted unpickler resolves only the few globals a state-dict checkpoint needs (``collections.OrderedDict``,
the tensor/parameter rebuild functions, the storage types of the dtypes below); every other global is refused
before anything is called, so a pickle that would import a module or call ``os.system`` fails with a
``PthError`` naming the global. Tensors become read-only numpy views of the storage bytes, checked against the
storage bounds; the rest of the tree may hold only dicts, lists, tuples, strings, numbers, booleans and None.

Supported tensor dtypes: float32, float16, bfloat16 (``ml_dtypes.bfloat16``), float64, int8, int16, int32,
int64, uint8, bool. Not supported (refused): the legacy pre-1.6 format, TorchScript archives, complex,
quantized, sparse and meta tensors, the newer unsigned and float8 dtypes.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import Any, Callable

import ml_dtypes
import numpy as np

# torch.<Name>Storage -> numpy dtype of one element (little-endian on disk unless byteorder says "big").
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "DoubleStorage": np.dtype("<f8"),
    "CharStorage": np.dtype("i1"),
    "ShortStorage": np.dtype("<i2"),
    "IntStorage": np.dtype("<i4"),
    "LongStorage": np.dtype("<i8"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
MAX_PICKLE_BYTES = 64 << 20  # a state-dict pickle of the released models is tens of kilobytes
MAX_DEPTH = 64  # nesting of containers in the object tree


class PthError(ValueError):
    """A .pth file that cannot be read safely: not a torch.save zip, unsafe, malformed or unsupported."""


class _StorageType:
    """What the unpickler returns for ``torch.<Name>Storage``: a name and a dtype, nothing callable."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a storage type cannot be given a state")


class _Storage:
    """One storage record of the archive: a flat read-only numpy array of its elements."""

    __slots__ = ("key", "array")

    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key = key
        self.array = array

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a storage cannot be given a state")


class _Tensor:
    """A tensor rebuilt from a storage: a numpy view. ``__setstate__`` refuses BUILD on it."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a tensor cannot be given a state")


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise pickle.UnpicklingError(f"tensor {what} {value!r} is not a tuple of non-negative integers")
    return value


def _view(storage: Any, offset: Any, size: Any, stride: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage is a {type(storage).__name__}, not a stored storage")
    if type(offset) is not int or offset < 0:
        raise pickle.UnpicklingError(f"storage '{storage.key}': offset {offset!r} is not a non-negative integer")
    shape = _int_tuple(size, "size")
    strides = _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise pickle.UnpicklingError(f"storage '{storage.key}': size {shape} and stride {strides} differ in rank")
    numel = storage.array.size
    if 0 in shape:
        last = offset - 1  # an empty tensor reads nothing (torch only requires offset <= numel)
        if offset > numel:
            raise pickle.UnpicklingError(f"storage '{storage.key}': offset {offset} past its {numel} elements")
    else:
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
        if last >= numel:
            raise pickle.UnpicklingError(
                f"storage '{storage.key}': tensor of size {list(shape)}, stride {list(strides)} at offset {offset} "
                f"reaches element {last}, past the storage's {numel} elements"
            )
    item = storage.array.itemsize
    base = storage.array[offset:last + 1] if last >= offset else storage.array[:0]
    view = np.lib.stride_tricks.as_strided(base, shape=shape, strides=tuple(s * item for s in strides),
                                           writeable=False)
    return _Tensor(view)


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _Tensor:
    if not (backward_hooks is None or (isinstance(backward_hooks, dict) and not backward_hooks)):
        raise pickle.UnpicklingError("a tensor with backward hooks is not a plain weight")
    return _view(storage, offset, size, stride)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> _Tensor:
    return _view(storage, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError(f"a parameter wraps a {type(data).__name__}, not a tensor")
    return data


class _Function:
    """An allowed global function as the unpickler hands it out: callable, but with no attributes a pickle's
    BUILD could change (so one file cannot alter how the next one is read)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., _Tensor]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> _Tensor:
        return self.function(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a function cannot be given a state")


_ALLOWED_FUNCTIONS: dict[tuple[str, str], Callable[..., _Tensor]] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals above and the storages of this archive; refuses every other global."""

    def __init__(self, data: bytes, load_storage: Callable[[str, _StorageType, int], _Storage]) -> None:
        super().__init__(io.BytesIO(data))
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict  # BUILD on an instance only sets attributes of that instance, dropped by _convert
        function = _ALLOWED_FUNCTIONS.get((module, name))
        if function is None:
            raise _Refused(f"{module}.{name}")
        return _Function(function)

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage type {storage_type!r:.60} is not a supported torch storage")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError(f"malformed storage reference {pid!r:.80}")
        return self._load_storage(key, storage_type, numel)


class _Refused(pickle.UnpicklingError):
    """A global outside the allow-list (carries its dotted name)."""


def _archive_prefix(names: list[str], where: str) -> str:
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or not all("/" in n for n in names):
        raise PthError(f"{where}: not a torch.save archive (expected every record under one top-level folder)")
    prefix = tops.pop() + "/"
    if prefix + "constants.pkl" in names:
        raise PthError(f"{where}: a TorchScript archive (torch.jit.save), not a state-dict checkpoint")
    if prefix + "data.pkl" not in names:
        raise PthError(f"{where}: not a torch.save archive (no {prefix}data.pkl)")
    return prefix


def _byteorder(archive: zipfile.ZipFile, prefix: str, where: str) -> str:
    try:
        raw = archive.read(prefix + "byteorder")
    except KeyError:
        return "little"  # written only since PyTorch 1.10; earlier files are little-endian
    order = raw.decode("ascii", "replace").strip()
    if order not in ("little", "big"):
        raise PthError(f"{where}: unsupported byte order {order!r:.40} in {prefix}byteorder")
    return order


def _convert(obj: Any, where: str, depth: int = 0) -> Any:
    """The unpickled tree with tensors as numpy arrays; anything but plain containers and scalars is refused."""
    if depth > MAX_DEPTH:
        raise PthError(f"{where}: the object tree is nested more than {MAX_DEPTH} levels deep")
    if isinstance(obj, _Tensor):
        return obj.array
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if type(obj) in (dict, OrderedDict):
        out = type(obj)()
        for key, value in obj.items():
            if key is not None and type(key) not in (str, int, float, bool):
                raise PthError(f"{where}: a dict key of type {type(key).__name__} (only str/int/float/bool keys)")
            out[key] = _convert(value, where, depth + 1)
        return out
    if type(obj) in (list, tuple):
        return type(obj)(_convert(v, where, depth + 1) for v in obj)
    raise PthError(f"{where}: holds a {type(obj).__name__} object; only tensors, dicts, lists, tuples, strings, "
                   "numbers, booleans and None are accepted")


def read_pth(path: str | os.PathLike) -> Any:
    """The object tree stored in the ``torch.save`` file `path`, with tensors as read-only numpy arrays.

    Nothing in the file is executed; see the module docstring for what is accepted. Raises PthError (a one-line
    message starting with the path) for anything else, and OSError when the file cannot be opened.
    """
    where = str(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head[:2] != b"PK":
            if head[:1] == b"\x80":
                raise PthError(f"{where}: a plain pickle or the legacy (PyTorch < 1.6) format, which can run code "
                               "and is not read; re-save it with torch.save from PyTorch >= 1.6")
            raise PthError(f"{where}: not a readable PyTorch checkpoint (not a zip archive)")
        fh.seek(0)
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise PthError(f"{where}: not a readable PyTorch checkpoint (truncated or corrupt zip: {exc})") from None
        with archive:
            return _read_archive(archive, where)


def _read_archive(archive: zipfile.ZipFile, where: str) -> Any:
    infos = {info.filename: info for info in archive.infolist()}
    prefix = _archive_prefix(list(infos), where)
    order = _byteorder(archive, prefix, where)
    pickle_info = infos[prefix + "data.pkl"]
    if pickle_info.file_size > MAX_PICKLE_BYTES:
        raise PthError(f"{where}: {prefix}data.pkl is {pickle_info.file_size} bytes, more than a state dict needs")
    storages: dict[str, _Storage] = {}

    def load_storage(key: str, storage_type: _StorageType, numel: int) -> _Storage:
        known = storages.get(key)
        if known is not None:
            if known.array.dtype != storage_type.dtype or known.array.size != numel:
                raise pickle.UnpicklingError(
                    f"storage '{key}' is referenced as {numel} x {storage_type.name} and as "
                    f"{known.array.size} x {known.array.dtype}"
                )
            return known
        record = f"{prefix}data/{key}"
        info = infos.get(record)
        if info is None:
            raise pickle.UnpicklingError(f"storage '{key}' has no data record {record} in the archive")
        nbytes = numel * storage_type.dtype.itemsize
        if info.file_size != nbytes:
            raise pickle.UnpicklingError(
                f"storage '{key}' claims {numel} x {storage_type.name} = {nbytes} bytes but its record {record} "
                f"holds {info.file_size}"
            )
        raw = archive.read(info)
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"record {record} holds {len(raw)} bytes, not {nbytes}")
        array = _storage_array(raw, storage_type.dtype, order)
        storages[key] = _Storage(key, array)
        return storages[key]

    try:
        data = archive.read(pickle_info)
        tree = _RestrictedUnpickler(data, load_storage).load()
    except _Refused as exc:
        raise PthError(f"{where}: refused: the pickle asks for global '{exc}', which a weights-only checkpoint "
                       "never needs (it may try to run code); nothing was executed") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        # zipfile raises BadZipFile on a CRC mismatch or a truncated record
        raise PthError(f"{where}: not a readable PyTorch checkpoint ({_first_line(exc)})") from None
    except (pickle.UnpicklingError, TypeError, AttributeError, IndexError, KeyError, RecursionError,
            MemoryError) as exc:
        # TypeError/AttributeError/...: a malformed pickle (calling a non-callable, BUILD on a bad object, ...)
        raise PthError(f"{where}: malformed checkpoint pickle ({type(exc).__name__}: {_first_line(exc)})") from None
    return _convert(tree, where)


def _storage_array(raw: bytes, dtype: np.dtype, order: str) -> np.ndarray:
    """The elements of one storage record as a read-only array of `dtype` in native (little-endian) order."""
    if order == "little" or dtype.itemsize == 1:
        return np.frombuffer(raw, dtype=dtype)
    # big-endian: read as big-endian unsigned words of the element size, swap, reinterpret (bfloat16 has no
    # byte-order variant of its own, so every dtype goes the same way)
    words = np.frombuffer(raw, dtype=np.dtype(f">u{dtype.itemsize}"))
    array = words.astype(np.dtype(f"<u{dtype.itemsize}")).view(dtype)
    array.flags.writeable = False
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
