"""Loading and verifying a model bundle (a directory written by ``vampnet-ort export``).

``vampnet.json`` names every file of the bundle with its size and sha256; ``load_bundle`` checks the format, the
format version, and every file (missing, truncated, tampered) before any session is opened. Sessions open lazily,
with the vampnet op library registered, the first time a model is used.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import onnxruntime as ort

from .fileio import file_sha256
from .library import create_session

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

_ort_state = ort.capi.onnxruntime_pybind11_state  # type: ignore[attr-defined]
_ORT_ERRORS = (_ort_state.Fail, _ort_state.InvalidGraph, _ort_state.InvalidProtobuf, _ort_state.NoSuchFile,
               _ort_state.InvalidArgument, _ort_state.RuntimeException, _ort_state.NotImplemented)


class BundleError(ValueError):
    """A bundle directory that cannot be used: missing, incomplete, corrupted or of an unknown format."""


def _require(mapping: Mapping[str, Any], key: str, kind: type | tuple, where: str) -> Any:
    if key not in mapping:
        raise BundleError(f"{where}: missing field '{key}'")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


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
            config=dict(raw.get("config") or {}),
        )
        if info.n_codebooks < 1 or info.n_conditioning_codebooks < 0 or info.chunk_frames < 1 or (
            info.n_conditioning_codebooks + info.n_predict_codebooks != info.n_codebooks
        ):
            raise BundleError(f"{where}: inconsistent codebook counts or chunk size")
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
    _sessions: Dict[str, ort.InferenceSession] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def has(self, name: str) -> bool:
        return MODEL_FILES[name] in self.manifest["files"]

    def session(self, name: str) -> ort.InferenceSession:
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
                except _ORT_ERRORS as exc:
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
    if not manifest_path.is_file():
        raise BundleError(f"{directory}: not a model bundle (no {MANIFEST_NAME}); create one with 'vampnet-ort export'")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: unreadable or not valid JSON ({exc})") from None
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
        _require(entry, "bytes", int, where)
        if Path(name).name != name or name in (".", ".."):
            raise BundleError(f"{where}: file names must be plain names inside the bundle")
    for model in REQUIRED_MODELS:
        if MODEL_FILES[model] not in files:
            raise BundleError(f"{manifest_path}: the bundle lists no {MODEL_FILES[model]} (incomplete export)")
    return manifest


def verify_files(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Every listed file is present, has the listed size and sha256."""
    for name, entry in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            raise BundleError(f"{directory}: incomplete bundle: {name} is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            what = "truncated" if size < entry["bytes"] else "larger than recorded"
            raise BundleError(
                f"{directory}: {name} is {what} ({size} bytes, vampnet.json says {entry['bytes']}); re-export the bundle"
            )
        if file_sha256(path) != entry["sha256"]:
            raise BundleError(f"{directory}: {name} does not match its sha256 in vampnet.json (modified or corrupted); re-export the bundle")


def load_bundle(path: PathLike, *, verify: bool = True, intra_op_threads: Optional[int] = None) -> Bundle:
    """Parse, check and (with `verify`) hash-verify the bundle at `path`."""
    directory = Path(path)
    manifest = read_manifest(directory)
    where = str(directory / MANIFEST_NAME)
    if verify:
        verify_files(directory, manifest)
    coarse = StageInfo.parse(_require(manifest, "coarse", dict, where), f"{where}: coarse")
    c2f_raw = manifest.get("c2f")
    c2f = StageInfo.parse(c2f_raw, f"{where}: c2f") if c2f_raw else None
    if c2f is not None and MODEL_FILES["c2f"] not in manifest["files"]:
        raise BundleError(f"{where}: describes a c2f model but lists no c2f.onnx (incomplete export)")
    bundle = Bundle(
        path=directory,
        manifest=manifest,
        sample_rate=_require(manifest, "sample_rate", int, where),
        hop_length=_require(manifest, "hop_length", int, where),
        n_codebooks=_require(manifest, "n_codebooks", int, where),
        vocab_size=_require(manifest, "vocab_size", int, where),
        mask_token=_require(manifest, "mask_token", int, where),
        demo=bool(manifest.get("demo", False)),
        coarse=coarse,
        c2f=c2f,
        intra_op_threads=intra_op_threads,
    )
    if bundle.sample_rate <= 0 or bundle.hop_length <= 0:
        raise BundleError(f"{where}: invalid sample_rate or hop_length")
    if coarse.n_codebooks > bundle.n_codebooks or (c2f is not None and c2f.n_codebooks > bundle.n_codebooks):
        raise BundleError(f"{where}: a model uses more codebooks than the codec has")
    if c2f is not None and c2f.n_conditioning_codebooks > coarse.n_codebooks:
        raise BundleError(f"{where}: c2f conditions on more codebooks than the coarse model produces")
    return bundle
