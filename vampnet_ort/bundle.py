"""Loading and verifying a model bundle (a directory written by ``vampnet-ort export``).

``vampnet.json`` names every file of the bundle with its size and sha256; ``load_bundle`` checks the format, the
format version, and every file (missing, truncated, tampered) before any session is opened. Sessions open lazily,
with the vampnet op library registered, the first time a model is used.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from . import graph_check
from .fileio import file_sha256
from .paths import is_within

if TYPE_CHECKING:  # onnxruntime is imported when the first session is made: reading a manifest stays light
    import onnxruntime as ort

BUNDLE_FORMAT = "vampnet-ort-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_NAME = "vampnet.json"
MODEL_FILES = {
    "codec_encoder": "codec_encoder.onnx",
    "codec_decoder": "codec_decoder.onnx",
    "coarse": "coarse.onnx",
    "c2f": "c2f.onnx",
    "coarse_logits": "coarse_logits.onnx",
    "c2f_logits": "c2f_logits.onnx",
}
REQUIRED_MODELS = ("codec_encoder", "codec_decoder", "coarse")
TRANSFORMER_MODELS = ("coarse", "c2f", "coarse_logits", "c2f_logits")

PathLike = Union[str, os.PathLike]



def _ort_load_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ONNX Runtime raises for a model it cannot load."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.Fail, state.InvalidGraph, state.InvalidProtobuf, state.NoSuchFile, state.InvalidArgument,
            state.RuntimeException, state.NotImplemented)


class BundleError(ValueError):
    """A bundle directory that cannot be used: missing, incomplete, corrupted or of an unknown format."""


def _require(mapping: Mapping[str, Any], key: str, kind: type | tuple, where: str) -> Any:
    if key not in mapping:
        raise BundleError(f"{where}: missing field '{key}'")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _optional_object(mapping: Mapping[str, Any], key: str, where: str) -> Dict[str, Any]:
    value = mapping.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BundleError(f"{where}: field '{key}' must be an object, got {type(value).__name__}")
    return dict(value)


def _in_range(value: int, name: str, low: int, high: int, where: str) -> int:
    if not low <= value <= high:
        raise BundleError(f"{where}: field '{name}' must be between {low} and {high}, got {value}")
    return value


# Plausibility bounds of vampnet.json's numbers (beyond them nothing works; the graphs are cross-checked too).
MAX_SAMPLE_RATE = 768_000
MAX_HOP_LENGTH = 1 << 20
MAX_CODEBOOKS = 1024
MAX_VOCAB_SIZE = 1 << 24
MAX_CHUNK_FRAMES = 1 << 20


@dataclass(frozen=True)
class StageInfo:
    """One generation stage (coarse or c2f) as described by vampnet.json."""

    n_codebooks: int
    n_conditioning_codebooks: int
    n_predict_codebooks: int
    chunk_frames: int
    config: Mapping[str, Any]

    @staticmethod
    def parse(raw: Any, where: str) -> "StageInfo":
        if not isinstance(raw, Mapping):
            raise BundleError(f"{where}: expected an object")
        info = StageInfo(
            n_codebooks=_require(raw, "n_codebooks", int, where),
            n_conditioning_codebooks=_require(raw, "n_conditioning_codebooks", int, where),
            n_predict_codebooks=_require(raw, "n_predict_codebooks", int, where),
            chunk_frames=_require(raw, "chunk_frames", int, where),
            config=_optional_object(raw, "config", where),
        )
        _in_range(info.n_codebooks, "n_codebooks", 1, MAX_CODEBOOKS, where)
        _in_range(info.n_conditioning_codebooks, "n_conditioning_codebooks", 0, info.n_codebooks - 1, where)
        _in_range(info.n_predict_codebooks, "n_predict_codebooks", 1, info.n_codebooks, where)
        _in_range(info.chunk_frames, "chunk_frames", 1, MAX_CHUNK_FRAMES, where)
        if info.n_conditioning_codebooks + info.n_predict_codebooks != info.n_codebooks:
            raise BundleError(
                f"{where}: n_conditioning_codebooks {info.n_conditioning_codebooks} + n_predict_codebooks "
                f"{info.n_predict_codebooks} != n_codebooks {info.n_codebooks}"
            )
        return info


@dataclass
class Bundle:
    """A verified bundle directory; ``session(name)`` opens (once) and returns an ORT session."""

    path: Path
    manifest: Dict[str, Any]
    sample_rate: int
    hop_length: int
    n_codebooks: int
    vocab_size: int
    mask_token: int
    demo: bool
    coarse: StageInfo
    c2f: Optional[StageInfo]
    intra_op_threads: Optional[int] = None
    _sessions: Dict[str, "ort.InferenceSession"] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def has(self, name: str) -> bool:
        return MODEL_FILES[name] in self.manifest["files"]

    def session(self, name: str) -> "ort.InferenceSession":
        from .library import create_session

        if name not in MODEL_FILES:
            raise BundleError(f"unknown model '{name}' (known: {', '.join(MODEL_FILES)})")
        with self._lock:
            if name not in self._sessions:
                if not self.has(name):
                    raise BundleError(f"{self.path}: the bundle has no {MODEL_FILES[name]}")
                try:
                    self._sessions[name] = create_session(
                        self.path / MODEL_FILES[name],
                        intra_op_threads=self.intra_op_threads,
                        # The transformer graphs hold the weights: without prepacking ORT keeps one copy
                        # (peak RSS ~1.1x instead of ~2x the weights, same speed; docs/EXPORT.md). int4 graphs
                        # keep it: MatMulNBits is 1.8x faster prepacked (docs/QUANTIZATION.md, "Prepacking").
                        disable_prepacking=name in TRANSFORMER_MODELS and self.precision(name) != "int4",
                    )
                except _ort_load_errors() as exc:
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise BundleError(f"{self.path / MODEL_FILES[name]}: ONNX Runtime cannot load it ({first})") from None
            return self._sessions[name]

    def precision(self, name: str) -> str:
        """Precision of model `name` as recorded in vampnet.json (``float32`` for bundles that predate it)."""
        entry = self.manifest["files"].get(MODEL_FILES[name], {})
        value = entry.get("precision", "float32") if isinstance(entry, Mapping) else "float32"
        return value if isinstance(value, str) else "float32"

    def describe(self) -> str:
        """A human-readable summary (``vampnet-ort info``)."""
        m = self.manifest
        lines = [
            f"bundle:        {self.path}",
            f"format:        {m['format']} v{m['format_version']} (written by vampnet-ort {m.get('vampnet_ort_version', '?')})",
        ]
        if self.demo:
            lines.append("demo:          yes - random weights, the output is NOT music")
        lines += [
            f"sample rate:   {self.sample_rate} Hz, hop {self.hop_length} samples "
            f"({self.sample_rate / self.hop_length:.2f} frames/s)",
            f"codebooks:     {self.n_codebooks} x {self.vocab_size} codes (MASK = {self.mask_token})",
        ]
        for label, stage in (("coarse", self.coarse), ("c2f", self.c2f)):
            if stage is None:
                lines.append(f"{label + ':':<15}absent (the fine codebooks are kept from the input)")
                continue
            cfg = stage.config
            size = ""
            if cfg:
                size = (f", {cfg.get('n_layers', '?')} layers, width {cfg.get('embedding_dim', '?')}, "
                        f"{cfg.get('n_heads', '?')} heads")
            lines.append(
                f"{label + ':':<15}{stage.n_codebooks} codebooks ({stage.n_conditioning_codebooks} conditioning, "
                f"{stage.n_predict_codebooks} predicted){size}, chunks of {stage.chunk_frames} frames"
            )
        codec_cfg = (m.get("codec") or {}).get("config") or {}
        if codec_cfg:
            lines.append(
                f"codec:         LAC, encoder width {codec_cfg.get('encoder_dim', '?')} rates "
                f"{codec_cfg.get('encoder_rates', '?')}, decoder width {codec_cfg.get('decoder_dim', '?')} rates "
                f"{codec_cfg.get('decoder_rates', '?')}"
            )
        precisions = sorted({p for p in (self.precision(n) for n in MODEL_FILES if self.has(n)) if p})
        lines.append(f"precision:     {', '.join(precisions) or 'float32'} "
                     f"(per graph below; docs/QUANTIZATION.md)")
        total = 0
        lines.append("files:")
        for name, entry in sorted(m["files"].items()):
            total += int(entry["bytes"])
            precision = f"  {entry['precision']:<8}" if isinstance(entry.get("precision"), str) else " " * 10
            lines.append(f"  {name:<32}{int(entry['bytes']) / 1e6:10.2f} MB{precision}"
                         f"sha256 {entry['sha256'][:16]}...")
        lines.append(f"  {'total':<32}{total / 1e6:10.2f} MB")
        return "\n".join(lines)


def read_manifest(path: PathLike) -> Dict[str, Any]:
    """Parse and check ``vampnet.json`` of bundle directory `path` (no file hashing)."""
    directory = Path(path)
    if not directory.exists():
        raise BundleError(f"{directory}: no such bundle directory")
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a directory (a bundle is a directory written by 'vampnet-ort export')")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise BundleError(f"{directory}: not a model bundle (no {MANIFEST_NAME}); create one with 'vampnet-ort export'")
    check_bundle_member(directory, MANIFEST_NAME)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except RecursionError:
        raise BundleError(f"{manifest_path}: not a usable vampnet.json (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, over-long integers
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BundleError(f"{manifest_path}: unreadable or not valid JSON ({first})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{manifest_path}: not a vampnet-ort bundle (format is {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{manifest_path}: invalid format_version {version!r}")
    if version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: bundle format version {version} is newer than this vampnet-ort supports "
            f"({BUNDLE_FORMAT_VERSION}); upgrade vampnet-ort or re-export the bundle with this version"
        )
    files = _require(manifest, "files", dict, str(manifest_path))
    for name, entry in files.items():
        where = f"{manifest_path}: files['{name}']"
        if not isinstance(entry, dict):
            raise BundleError(f"{where}: expected an object")
        _require(entry, "sha256", str, where)
        if _require(entry, "bytes", int, where) < 0:
            raise BundleError(f"{where}: field 'bytes' must be >= 0")
        if not name or Path(name).name != name or name in (".", "..", MANIFEST_NAME):
            raise BundleError(f"{where}: file names must be plain names inside the bundle")
    for model in REQUIRED_MODELS:
        if MODEL_FILES[model] not in files:
            raise BundleError(f"{manifest_path}: the bundle lists no {MODEL_FILES[model]} (incomplete export)")
    if not isinstance(manifest.get("demo", False), bool):
        raise BundleError(f"{manifest_path}: field 'demo' must be true or false")
    _optional_object(manifest, "codec", str(manifest_path))
    _optional_object(manifest.get("codec") or {}, "config", f"{manifest_path}: codec")
    return manifest


def check_bundle_member(directory: Path, name: str) -> Path:
    """`directory / name` when it is a regular file that resolves inside the bundle directory (a symlink may
    point only to another file of the bundle, never out of it: what is verified is what is loaded)."""
    path = directory / name
    try:
        st = os.stat(path)  # follows symlinks; never opens (a FIFO cannot block)
    except FileNotFoundError:
        if path.is_symlink():
            raise BundleError(f"{directory}: {name} is a dangling symlink") from None
        raise BundleError(f"{directory}: incomplete bundle: {name} is missing") from None
    except OSError as exc:
        raise BundleError(f"{directory}: cannot access {name} ({exc.strerror or exc})") from None
    if path.is_symlink() and not is_within(path, directory):
        raise BundleError(f"{directory}: {name} is a symlink to {path.resolve()}, outside the bundle; refused")
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{directory}: {name} is not a regular file")
    return path


def verify_files(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Every listed file is present, has the listed size and sha256."""
    for name, entry in sorted(manifest["files"].items()):
        path = check_bundle_member(directory, name)
        size = path.stat().st_size
        if size != entry["bytes"]:
            what = "truncated" if size < entry["bytes"] else "larger than recorded"
            raise BundleError(
                f"{directory}: {name} is {what} ({size} bytes, vampnet.json says {entry['bytes']}); re-export the bundle"
            )
        if file_sha256(path) != entry["sha256"]:
            raise BundleError(f"{directory}: {name} does not match its sha256 in vampnet.json (modified or corrupted); re-export the bundle")


@dataclass(frozen=True)
class ManifestInfo:
    """The typed header of a bundle's ``vampnet.json`` (what a front end needs before loading anything: the
    codebook count, the rates, the stages), checked without hashing a file."""

    path: Path
    manifest: Mapping[str, Any]
    sample_rate: int
    hop_length: int
    n_codebooks: int
    vocab_size: int
    mask_token: int
    demo: bool
    coarse: StageInfo
    c2f: Optional[StageInfo]


def parse_manifest(directory: Path, manifest: Mapping[str, Any]) -> ManifestInfo:
    """The checked ``ManifestInfo`` of `manifest` (as ``read_manifest`` returned it) of bundle `directory`."""
    where = str(directory / MANIFEST_NAME)
    coarse = StageInfo.parse(_require(manifest, "coarse", dict, where), f"{where}: coarse")
    c2f_raw = manifest.get("c2f")
    c2f = StageInfo.parse(c2f_raw, f"{where}: c2f") if c2f_raw else None
    if c2f is not None and MODEL_FILES["c2f"] not in manifest["files"]:
        raise BundleError(f"{where}: describes a c2f model but lists no c2f.onnx (incomplete export)")
    info = ManifestInfo(
        path=directory,
        manifest=manifest,
        sample_rate=_require(manifest, "sample_rate", int, where),
        hop_length=_require(manifest, "hop_length", int, where),
        n_codebooks=_require(manifest, "n_codebooks", int, where),
        vocab_size=_require(manifest, "vocab_size", int, where),
        mask_token=_require(manifest, "mask_token", int, where),
        demo=manifest.get("demo", False),
        coarse=coarse,
        c2f=c2f,
    )
    _in_range(info.sample_rate, "sample_rate", 1, MAX_SAMPLE_RATE, where)
    _in_range(info.hop_length, "hop_length", 2, MAX_HOP_LENGTH, where)
    _in_range(info.n_codebooks, "n_codebooks", 1, MAX_CODEBOOKS, where)
    _in_range(info.vocab_size, "vocab_size", 2, MAX_VOCAB_SIZE, where)
    if info.mask_token != info.vocab_size:
        raise BundleError(f"{where}: mask_token must equal vocab_size ({info.vocab_size}), got {info.mask_token}")
    if coarse.n_codebooks > info.n_codebooks or (c2f is not None and c2f.n_codebooks > info.n_codebooks):
        raise BundleError(f"{where}: a model uses more codebooks than the codec has")
    if c2f is not None and c2f.n_conditioning_codebooks != coarse.n_codebooks:
        raise BundleError(
            f"{where}: c2f conditions on {c2f.n_conditioning_codebooks} codebooks but the coarse model produces "
            f"{coarse.n_codebooks}"
        )
    return info


def file_entry(path: PathLike) -> Dict[str, Any]:
    """The ``files`` entry of one bundle file: its sha256 and size."""
    return {"sha256": file_sha256(path), "bytes": Path(path).stat().st_size}


def stage_entry(*, n_codebooks: int, n_conditioning_codebooks: int, chunk_frames: int,
                config: Optional[Mapping[str, Any]] = None, source_sha256: str = "") -> Dict[str, Any]:
    """The ``coarse`` / ``c2f`` object of a manifest (``StageInfo`` as written)."""
    return {"n_codebooks": int(n_codebooks), "n_conditioning_codebooks": int(n_conditioning_codebooks),
            "n_predict_codebooks": int(n_codebooks) - int(n_conditioning_codebooks),
            "chunk_frames": int(chunk_frames), "config": dict(config or {}), "source_sha256": source_sha256}


def new_manifest(*, sample_rate: int, hop_length: int, n_codebooks: int, vocab_size: int,
                 coarse: Mapping[str, Any], c2f: Optional[Mapping[str, Any]], codec: Mapping[str, Any],
                 files: Mapping[str, Any], demo: bool = False, version: str = "") -> Dict[str, Any]:
    """A ``vampnet.json`` object in the format ``parse_manifest`` reads (``mask_token`` = ``vocab_size``)."""
    return {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "vampnet_ort_version": version,
        "demo": bool(demo), "sample_rate": int(sample_rate), "hop_length": int(hop_length),
        "n_codebooks": int(n_codebooks), "vocab_size": int(vocab_size), "mask_token": int(vocab_size),
        "coarse": dict(coarse), "c2f": None if c2f is None else dict(c2f), "codec": dict(codec),
        "files": dict(files),
    }


def read_manifest_info(path: PathLike) -> ManifestInfo:
    """The checked manifest of the bundle at `path`, cheaply: parsed and checked, no file hashed or loaded."""
    directory = Path(path)
    return parse_manifest(directory, read_manifest(directory))


def load_bundle(path: PathLike, *, verify: bool = True, intra_op_threads: Optional[int] = None) -> Bundle:
    """Parse, check and (with `verify`) hash-verify the bundle at `path`."""
    directory = Path(path)
    manifest = read_manifest(directory)
    if verify:
        verify_files(directory, manifest)
    else:
        for name in manifest["files"]:
            check_bundle_member(directory, name)
    info = parse_manifest(directory, manifest)
    bundle = Bundle(
        path=directory,
        manifest=manifest,
        sample_rate=info.sample_rate,
        hop_length=info.hop_length,
        n_codebooks=info.n_codebooks,
        vocab_size=info.vocab_size,
        mask_token=info.mask_token,
        demo=info.demo,
        coarse=info.coarse,
        c2f=info.c2f,
        intra_op_threads=intra_op_threads,
    )
    if verify:
        check_bundle_graphs(bundle)
    return bundle


def check_bundle_graphs(bundle: Bundle) -> None:
    """Cross-check every listed graph against vampnet.json (``vampnet_ort.graph_check``): referenced files
    listed and hashed, codec metadata and codebook counts equal to the manifest's numbers."""
    listed = bundle.manifest["files"]
    stages = {"coarse": bundle.coarse, "c2f": bundle.c2f, "coarse_logits": bundle.coarse, "c2f_logits": bundle.c2f}
    for model_name, file_name in MODEL_FILES.items():
        if file_name not in listed:
            continue

        def fail(problem: str, file_name: str = file_name) -> BundleError:
            return BundleError(f"{bundle.path / file_name}: {problem}")

        model = graph_check.load_graph(bundle.path / file_name, fail)
        entry = listed[file_name]
        graph_check.check_precision(model, entry.get("precision") if isinstance(entry, Mapping) else None, fail)
        for location in sorted(graph_check.external_files(model)):
            if not location or Path(location).name != location or location in (".", ".."):
                raise fail(f"references external data {location!r} outside the bundle directory; refused")
            if location not in listed:
                raise fail(f"references {location}, which vampnet.json does not list (so it is not verified); "
                           "re-export the bundle")
        if model_name.startswith("codec_"):
            graph_check.check_codec_graph(model, model_name, bundle.manifest, fail)
        else:
            stage = stages[model_name]
            if stage is None:
                raise fail(f"is listed but vampnet.json describes no {model_name.split('_')[0]} stage")
            graph_check.check_decode_graph(model, stage.n_codebooks, stage.n_conditioning_codebooks,
                                           bundle.vocab_size, fail, decode=model_name in ("coarse", "c2f"))
        del model
