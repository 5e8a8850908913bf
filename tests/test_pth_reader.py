"""The PyTorch-free .pth reader (export/pth_reader.py) and writer (export/pth_writer.py).

PyTorch is the independent oracle where it is installed (``torch.load(weights_only=True)`` and ``torch.save``);
the tests that need it skip without it, the rest (malicious and malformed files, round trips) run everywhere.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from vampnet_ort.export import CheckpointError, load_checkpoint, load_lora_file, save_checkpoint
from vampnet_ort.export.pth_reader import PthError, read_pth
from vampnet_ort.export.pth_writer import write_pth
from vampnet_ort.export.random_checkpoint import (
    GOLDEN_C2F_KWARGS,
    GOLDEN_COARSE_KWARGS,
    random_lora_state,
    random_vampnet_state,
    vampnet_kwargs,
)

from op_testing import GOLDEN
from pth_testing import float_records, pickle_global, state_dict_pickle, tensor_opcodes, write_archive

SMALL = vampnet_kwargs(n_heads=2, n_layers=2, n_codebooks=4, embedding_dim=16, vocab_size=64)


def _torch():
    return pytest.importorskip("torch")


def _torch_tree_to_numpy(obj):
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        return obj.detach().float().numpy() if obj.dtype == torch.bfloat16 else obj.detach().numpy()
    if isinstance(obj, dict):
        return type(obj)((k, _torch_tree_to_numpy(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_torch_tree_to_numpy(v) for v in obj)
    return obj


def _assert_same_tree(ours, expected, where="") -> None:
    """`ours` (read_pth) equals `expected` (torch.load converted to numpy): same types, keys, order, values, dtypes."""
    if isinstance(expected, np.ndarray):
        assert isinstance(ours, np.ndarray), where
        if ours.dtype == ml_dtypes.bfloat16:
            assert expected.dtype == np.float32, where
            ours = ours.astype(np.float32)
        assert ours.dtype == expected.dtype and ours.shape == expected.shape, (where, ours.dtype, expected.dtype)
        assert np.array_equal(ours, expected, equal_nan=ours.dtype.kind == "f"), where
        return
    assert type(ours) is type(expected), (where, type(ours), type(expected))
    if isinstance(expected, dict):
        assert list(ours) == list(expected), where
        for key in expected:
            _assert_same_tree(ours[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(ours) == len(expected), where
        for i, (a, b) in enumerate(zip(ours, expected)):
            _assert_same_tree(a, b, f"{where}[{i}]")
    else:
        assert ours == expected, where


# ---- equality with torch.load(weights_only=True) ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["codec.pth", "coarse.pth", "c2f.pth"])
def test_golden_checkpoints_equal_torch_load(name: str):
    torch = _torch()
    expected = _torch_tree_to_numpy(torch.load(GOLDEN / name, map_location="cpu", weights_only=True))
    _assert_same_tree(read_pth(GOLDEN / name), expected)


def test_random_release_layout_with_lora_equals_torch_load(tmp_path: Path):
    """Upstream's key layout (every LoRA tensor included) at a small size, written by torch.save."""
    torch = _torch()
    for kwargs, seed in ((GOLDEN_COARSE_KWARGS, 3), (GOLDEN_C2F_KWARGS, 4)):
        state = random_vampnet_state(kwargs, seed=seed, lora_rank=4)
        assert any(k.endswith(".lora_A") for k in state)
        path = tmp_path / f"seed{seed}.pth"
        torch.save({"state_dict": OrderedDict((k, torch.from_numpy(v)) for k, v in state.items()),
                    "metadata": {"kwargs": dict(kwargs)}}, path)
        expected = _torch_tree_to_numpy(torch.load(path, map_location="cpu", weights_only=True))
        _assert_same_tree(read_pth(path), expected)
        loaded = load_checkpoint(path)
        assert loaded.kwargs == kwargs and all(np.array_equal(loaded.state[k], v) for k, v in state.items())
    lora = tmp_path / "lora.pth"
    torch.save(OrderedDict((k, torch.from_numpy(v)) for k, v in random_lora_state(SMALL, rank=4).items()), lora)
    _assert_same_tree(load_lora_file(lora), dict(_torch_tree_to_numpy(torch.load(lora, weights_only=True))))


def test_every_dtype_and_odd_layouts_equal_torch_load(tmp_path: Path):
    """float32/16, bfloat16, float64, int8-64, uint8, bool; views that are non-contiguous, offset, share one
    storage, 0-d and empty; nn.Parameter; plain metadata values of every kind."""
    torch = _torch()
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8) / 7
    tree = {
        "state_dict": OrderedDict([
            ("f32", base.clone()),
            ("f16", (base * 3).half()),
            ("bf16", (base - 2).bfloat16()),
            ("f64", base.double() / 3),
            ("i8", torch.arange(-5, 5, dtype=torch.int8)),
            ("i16", torch.arange(-300, 300, 37, dtype=torch.int16)),
            ("i32", torch.arange(-70000, 70000, 9999, dtype=torch.int32)),
            ("i64", torch.tensor([-(2**40), 0, 2**40], dtype=torch.int64)),
            ("u8", torch.arange(0, 250, 10, dtype=torch.uint8)),
            ("bool", torch.tensor([True, False, True])),
            ("transposed", base.t()),  # shares base's storage
            ("strided", base[1::2, ::3]),  # non-contiguous, offset into the shared storage
            ("row", base[4]),  # offset view
            ("expanded", torch.tensor([1.5, -2.0]).expand(3, 2)),  # stride 0
            ("scalar", torch.tensor(3.25)),
            ("empty", torch.zeros(0, 4)),
            ("param", torch.nn.Parameter(torch.ones(2, 2))),
            ("special", torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0])),
        ]),
        "metadata": {"kwargs": {"n": 3, "big": 2**62, "x": -1.5, "name": "mask", "flag": True, "none": None,
                                "list": [1, 2, [3]], "tuple": (4, "five"), "nested": {"a": {}}}},
    }
    tree["state_dict"]["base"] = base
    path = tmp_path / "dtypes.pth"
    torch.save(tree, path)
    ours = read_pth(path)
    _assert_same_tree(ours, _torch_tree_to_numpy(torch.load(path, map_location="cpu", weights_only=True)))
    assert ours["state_dict"]["bf16"].dtype == ml_dtypes.bfloat16
    assert not ours["state_dict"]["f32"].flags.writeable  # views of the stored bytes, read-only


def test_writer_output_is_what_torch_load_reads(tmp_path: Path):
    """write_pth (used by save_checkpoint without torch) produces files torch.load(weights_only=True) accepts."""
    torch = _torch()
    state = random_vampnet_state(SMALL, seed=9)
    path = tmp_path / "ours.pth"
    save_checkpoint(path, state, SMALL)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    assert loaded["metadata"] == {"kwargs": SMALL}
    assert list(loaded["state_dict"]) == list(state)
    assert all(np.array_equal(loaded["state_dict"][k].numpy(), v) for k, v in state.items())
    tree = {"a": [np.arange(6, dtype=np.int64).reshape(2, 3), np.array([True]), np.float16([1.5]),
                  np.array([1.0, 2.5], dtype=ml_dtypes.bfloat16), np.arange(4, dtype=np.uint8)], "b": (None, 2**45)}
    write_pth(tmp_path / "tree.pth", tree)
    _assert_same_tree(read_pth(tmp_path / "tree.pth"), _torch_tree_to_numpy(torch.load(tmp_path / "tree.pth")))


def test_writer_round_trip_without_torch(tmp_path: Path):
    state = random_vampnet_state(SMALL, seed=2)
    save_checkpoint(tmp_path / "m.pth", state, SMALL)
    tree = read_pth(tmp_path / "m.pth")
    assert tree["metadata"] == {"kwargs": SMALL} and list(tree["state_dict"]) == list(state)
    assert all(np.array_equal(tree["state_dict"][k], v) for k, v in state.items())
    with zipfile.ZipFile(tmp_path / "m.pth") as archive:  # storages aligned to 64 bytes, as torch.save aligns them
        for info in archive.infolist():
            if "/data/" in info.filename:
                start = info.header_offset + 30 + len(info.filename) + len(info.extra)
                assert start % 64 == 0, info.filename


def test_big_endian_archive(tmp_path: Path):
    """byteorder "big": every dtype is swapped to native order on reading."""
    values = {
        "FloatStorage": np.array([1.5, -2.25, 3e-8], np.float32),
        "HalfStorage": np.array([0.5, -65504.0], np.float16),
        "DoubleStorage": np.array([np.pi, -1e300], np.float64),
        "LongStorage": np.array([-(2**50), 7], np.int64),
        "IntStorage": np.array([-(2**30), 5], np.int32),
        "ShortStorage": np.array([-300, 299], np.int16),
        "BFloat16Storage": np.array([1.0, -3.5, 1e20], ml_dtypes.bfloat16),
        "ByteStorage": np.array([1, 255], np.uint8),
    }
    entries, records = {}, {}
    for key, (storage, array) in enumerate(values.items()):
        entries[storage] = tensor_opcodes(str(key), array.size, (array.size,), (1,), storage=storage)
        records[str(key)] = array.view(f"u{array.itemsize}").astype(f">u{array.itemsize}").tobytes()
    path = write_archive(tmp_path / "big.pth", state_dict_pickle(entries), records, byteorder=b"big")
    state = read_pth(path)["state_dict"]
    for storage, array in values.items():
        assert state[storage].dtype == array.dtype and np.array_equal(state[storage], array), storage


# ---- malicious files: refused, never executed ---------------------------------------------------------------------

class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_os_system_pickle_is_refused_and_never_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": {}, "metadata": {"kwargs": {"x": _RunsShell(f"touch {marker}")}}},
                           protocol=2)
    # the payload is real: a plain unpickler would run the command
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=payload, check=True)
    assert marker.exists()
    marker.unlink()
    path = write_archive(tmp_path / "evil.pth", payload, {})
    with pytest.raises(PthError, match=r"evil.pth: refused: .*global '(posix|os)\.system'.*nothing was executed"):
        read_pth(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_lora_file(path)
    assert not marker.exists(), "reading must never execute pickled code"


def test_os_system_in_torch_saved_file_is_refused(tmp_path: Path):
    """The same payload inside a file torch.save wrote (real tensors around it)."""
    torch = _torch()
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "metadata": {"kwargs": {}, "x": _RunsShell(f"touch {marker}")}},
               path)
    with pytest.raises(CheckpointError, match=r"refused: .*system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_arbitrary_class_import_is_refused(tmp_path: Path):
    """A global of a module not yet imported: refused before the module is imported (``this`` prints on import)."""
    assert "this" not in sys.modules
    data = b"\x80\x02" + pickle_global("this", "s") + b"."
    with pytest.raises(PthError, match=r"refused: .*global 'this\.s'"):
        read_pth(write_archive(tmp_path / "import.pth", data, {}))
    assert "this" not in sys.modules
    for module, name in (("collections", "Counter"), ("builtins", "eval"), ("torch", "load"),
                         ("vampnet_ort.export.checkpoint", "Checkpoint"), ("numpy", "ndarray"),
                         ("torch._utils", "_rebuild_qtensor"), ("torch", "ComplexFloatStorage")):
        data = b"\x80\x02" + pickle_global(module, name) + b")R."
        with pytest.raises(PthError, match=rf"refused: .*global '{module}\.{name}'"):
            read_pth(write_archive(tmp_path / "cls.pth", data, {}))


def test_plain_pickle_and_legacy_format_are_not_unpickled(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"x": _RunsShell(f"touch {marker}")}, protocol=2))
    with pytest.raises(PthError, match="plain pickle or the legacy"):
        read_pth(path)
    assert not marker.exists()


def test_legacy_torch_format_is_refused(tmp_path: Path):
    torch = _torch()
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        load_checkpoint(path)


# ---- malformed files -----------------------------------------------------------------------------------------------

def _one_tensor(tmp_path: Path, numel: int, size, stride, offset: int = 0, record: bytes | None = None,
                name: str = "bad.pth", **archive) -> Path:
    data = state_dict_pickle({"w": tensor_opcodes("0", numel, size, stride, offset)})
    records = {"0": record if record is not None else np.arange(numel, dtype="<f4").tobytes()}
    return write_archive(tmp_path / name, data, records, **archive)


def test_well_formed_hand_made_archive_reads(tmp_path: Path):
    """The hand-made archives below differ from this one in one thing each."""
    state = read_pth(_one_tensor(tmp_path, 12, (3, 4), (4, 1)))["state_dict"]
    assert np.array_equal(state["w"], np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("change, message", [
    (dict(numel=12, size=(3, 4), stride=(4, 1), record=np.zeros(11, "<f4").tobytes()),
     r"storage '0' claims 12 x FloatStorage = 48 bytes but its record archive/data/0 holds 44"),
    (dict(numel=12, size=(3, 4), stride=(4, 1), record=np.zeros(13, "<f4").tobytes()),
     r"claims 12 x FloatStorage = 48 bytes but its record archive/data/0 holds 52"),
    (dict(numel=12, size=(3, 5), stride=(5, 1)), r"storage '0': tensor of size \[3, 5\].*past the storage's 12"),
    (dict(numel=12, size=(3, 4), stride=(4, 1), offset=1), r"at offset 1 reaches element 12"),
    (dict(numel=12, size=(4,), stride=(4,)), r"reaches element 12, past"),
    (dict(numel=12, size=(2, 2), stride=(2,)), r"differ in rank"),
    (dict(numel=12, size=(-1,), stride=(1,)), r"not a tuple of non-negative integers"),
])
def test_lying_sizes_and_views_are_refused(tmp_path: Path, change: dict, message: str):
    path = _one_tensor(tmp_path, **change)
    with pytest.raises(PthError, match=message):
        read_pth(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_data_member(tmp_path: Path):
    data = state_dict_pickle({"w": tensor_opcodes("0", 4, (4,), (1,)), "v": tensor_opcodes("1", 4, (4,), (1,))})
    path = write_archive(tmp_path / "missing.pth", data, float_records(np.zeros(4)))
    with pytest.raises(PthError, match=r"missing.pth: .*storage '1' has no data record archive/data/1"):
        read_pth(path)


def test_truncated_and_corrupt_archives(tmp_path: Path):
    good = _one_tensor(tmp_path, 12, (3, 4), (4, 1), name="good.pth").read_bytes()
    for cut in (len(good) // 2, len(good) - 10, 30):
        (tmp_path / "cut.pth").write_bytes(good[:cut])
        with pytest.raises(PthError, match=r"cut.pth: not a readable PyTorch checkpoint"):
            read_pth(tmp_path / "cut.pth")
    corrupt = bytearray(good)
    at = good.index(np.arange(12, dtype="<f4").tobytes()) + 5  # inside the storage record: CRC mismatch
    corrupt[at] ^= 0xFF
    (tmp_path / "crc.pth").write_bytes(bytes(corrupt))
    with pytest.raises(PthError, match=r"crc.pth: not a readable PyTorch checkpoint \(Bad CRC"):
        read_pth(tmp_path / "crc.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(PthError, match="not a zip archive"):
        read_pth(tmp_path / "empty.pth")


def test_archive_layout_errors(tmp_path: Path):
    with pytest.raises(PthError, match=r"unsupported byte order 'middle'"):
        read_pth(_one_tensor(tmp_path, 4, (4,), (1,), byteorder=b"middle"))
    no_byteorder = read_pth(_one_tensor(tmp_path, 4, (4,), (1,), byteorder=None))  # PyTorch < 1.10: little
    assert np.array_equal(no_byteorder["state_dict"]["w"], np.arange(4, dtype=np.float32))
    with zipfile.ZipFile(tmp_path / "script.pth", "w") as archive:
        archive.writestr("m/data.pkl", b"\x80\x02N.")
        archive.writestr("m/constants.pkl", b"\x80\x02N.")
    with pytest.raises(PthError, match="TorchScript archive"):
        read_pth(tmp_path / "script.pth")
    with zipfile.ZipFile(tmp_path / "two.pth", "w") as archive:
        archive.writestr("a/data.pkl", b"\x80\x02N.")
        archive.writestr("b/data.pkl", b"\x80\x02N.")
    with pytest.raises(PthError, match="one top-level folder"):
        read_pth(tmp_path / "two.pth")
    with zipfile.ZipFile(tmp_path / "nopkl.pth", "w") as archive:
        archive.writestr("a/version", b"3\n")
    with pytest.raises(PthError, match="no a/data.pkl"):
        read_pth(tmp_path / "nopkl.pth")


@pytest.mark.parametrize("data_pkl, message", [
    (b"\x80\x02(X\x07\x00\x00\x00storageNX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ.", "not a supported torch storage"),
    (b"\x80\x02X\x03\x00\x00\x00abcQ.", "unsupported persistent id"),
    (b"\x80\x02]q\x00h\x00a.", "nested more than"),  # a list that contains itself
    (b"\x80\x02K\x01)R.", "malformed checkpoint pickle"),  # calling an int
    (b"\x80\x02\xff.", "malformed checkpoint pickle"),  # not an opcode
    (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00))\x89ccollections\nOrderedDict\n)RtR.",
     "storage is a int"),
    (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x01\x00\x00\x00aK\x01sb.", "cannot be given a state"),
    (b"\x80\x02}(K\x01K\x02)K\x03u.", "a dict key of type tuple"),
    (b"\x80\x02(K\x01K\x02\x91.", "holds a frozenset"),
    # BUILD on an OrderedDict only sets that instance's attributes, which the reader drops
    (b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01sb.", "."),
])
def test_malformed_pickles_are_refused(tmp_path: Path, data_pkl: bytes, message: str):
    path = write_archive(tmp_path / "m.pth", data_pkl, {})
    if message == ".":  # accepted shapes that a reader must still turn into plain data
        assert isinstance(read_pth(path), (dict, OrderedDict))
        return
    with pytest.raises(PthError, match=message):
        read_pth(path)


def test_non_float_weights_are_refused_by_the_checkpoint_loader(tmp_path: Path):
    write_pth(tmp_path / "int.pth", {"state_dict": {"w": np.arange(3)}, "metadata": {"kwargs": {}}})
    with pytest.raises(CheckpointError, match="'w' has dtype int64, expected a float tensor"):
        load_checkpoint(tmp_path / "int.pth")
    write_pth(tmp_path / "half.pth", {"state_dict": {"w": np.float16([1.5]), "b": np.array([2.5], ml_dtypes.bfloat16),
                                                     "d": np.float64([1 / 3])}, "metadata": {"kwargs": {}}})
    state = load_checkpoint(tmp_path / "half.pth").state
    assert all(v.dtype == np.float32 for v in state.values())
    assert state["w"][0] == 1.5 and state["b"][0] == 2.5 and state["d"][0] == np.float32(1 / 3)


# ---- exports: byte-identical to the torch.load path ----------------------------------------------------------------

def _torch_reader(path):
    """What export/checkpoint.py did before this reader: torch.load(weights_only=True), every tensor
    ``.detach().to(torch.float32).contiguous().numpy()``."""
    torch = _torch()

    def convert(obj):
        if isinstance(obj, torch.Tensor):
            return obj.detach().to(torch.float32).contiguous().numpy()
        if isinstance(obj, dict):
            return type(obj)((k, convert(v)) for k, v in obj.items())
        return obj

    return convert(torch.load(str(path), map_location="cpu", weights_only=True))


def _bundle_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.slow
def test_exports_are_byte_identical_to_the_torch_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The golden checkpoints (+ a LoRA file, logits graphs, int8) and a bfloat16/float16 checkpoint written by
    torch.save export to the very same bytes through read_pth as through torch.load."""
    torch = _torch()
    from vampnet_ort.export import checkpoint as checkpoint_module
    from vampnet_ort.export.bundle import export_bundle

    lora = tmp_path / "lora.pth"
    torch.save(OrderedDict((k, torch.from_numpy(v)) for k, v in random_lora_state(GOLDEN_COARSE_KWARGS).items()), lora)
    half = tmp_path / "c2f_half.pth"
    state = random_vampnet_state(GOLDEN_C2F_KWARGS, seed=5)
    torch.save({"state_dict": OrderedDict((k, torch.from_numpy(v).to(torch.bfloat16 if i % 2 else torch.float16))
                                          for i, (k, v) in enumerate(state.items())),
                "metadata": {"kwargs": dict(GOLDEN_C2F_KWARGS)}}, half)
    cases = {
        "golden": dict(codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth", c2f=GOLDEN / "c2f.pth",
                       lora_coarse=lora, logits=True),
        "int8": dict(codec=GOLDEN / "codec.pth", coarse=GOLDEN / "coarse.pth", c2f=half, quantize="int8"),
    }
    torch_reads: list[Path] = []

    def torch_reader(path):
        torch_reads.append(Path(path))
        return _torch_reader(path)

    for name, options in cases.items():
        ours = export_bundle(tmp_path / f"{name}_reader", **options)
        with monkeypatch.context() as patch:
            patch.setattr(checkpoint_module, "read_pth", torch_reader)
            theirs = export_bundle(tmp_path / f"{name}_torch", **options)
        assert _bundle_bytes(ours) == _bundle_bytes(theirs), name
    assert half in torch_reads and lora in torch_reads and GOLDEN / "codec.pth" in torch_reads
