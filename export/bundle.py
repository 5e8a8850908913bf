"""``export_bundle``: upstream checkpoints -> a vampnet-ort model bundle directory (docs/SPEC.md section 5).

The bundle is written into a temporary sibling directory and renamed into place at the end, so a failed export
leaves nothing half-written behind. ``vampnet.json`` lists every file with its sha256 and size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from vampnet_ort import codec as codec_chunking
from vampnet_ort.codec_geometry import CodecConfig
from vampnet_ort.fileio import file_sha256, rename_no_replace
from vampnet_ort.paths import is_within
from vampnet_ort.version import __version__

from .codec import codec_config, decoder_precision, export_codec
from .checkpoint import CheckpointError
from .hub import DEFAULT_REPO, HubModel, fetch_model
from .decode_graph import decode_graph
from .quantize import QuantizeError, check_precision
from .vampnet_export import (
    CheckpointSource,
    GraphFactory,
    LoraSource,
    StoredStage,
    as_checkpoint,
    export_stage,
    logits_graph,
)

BUNDLE_FORMAT = "vampnet-ort-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_NAME = "vampnet.json"
# Chunk sizes of the upstream pipeline (docs/SPEC.md section 3): 10 s coarse chunks, 3 s c2f chunks at 57.4 frames/s.
COARSE_CHUNK_FRAMES = 575
C2F_CHUNK_FRAMES = 173


class ExportError(ValueError):
    """The export cannot proceed (bad arguments, an existing output directory, a missing component)."""


def _hop_length(codec_kwargs: Mapping[str, Any]) -> int:
    hop = 1
    for rate in codec_kwargs["encoder_rates"]:
        hop *= int(rate)
    return hop


def _stage_entry(stage: StoredStage, chunk_frames: int) -> dict[str, Any]:
    c = stage.config
    return {
        "n_codebooks": c.n_codebooks,
        "n_conditioning_codebooks": c.n_conditioning_codebooks,
        "n_predict_codebooks": c.n_predict_codebooks,
        "chunk_frames": chunk_frames,
        "config": asdict(c),
        "source_kwargs": stage.checkpoint.kwargs,
        "source_sha256": stage.checkpoint.sha256,
        "lora_sha256": stage.lora.sha256 if stage.lora else None,
    }


def _file_entry(path: Path, precision: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    if precision is not None:
        entry["precision"] = precision
    return entry


def _source_path(source: object) -> Path | None:
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    path = getattr(source, "path", None)  # a loaded Checkpoint remembers its file
    return Path(path) if isinstance(path, (str, os.PathLike)) else None


def check_target(out_dir: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[object] = (),
                 overwrite_flag: str = "overwrite=True") -> Path:
    """The resolved output directory, when exporting there is safe; ExportError otherwise.

    `out_dir` may be missing or an empty directory. A non-empty one is replaced only with `overwrite`, and only
    when it is a vampnet bundle (holds vampnet.json): ``--overwrite`` never deletes an arbitrary folder. No input
    (a checkpoint or LoRA path, or a loaded Checkpoint's file) may lie inside it. `overwrite_flag` is how the
    caller's interface spells the option (the CLI passes ``--overwrite``)."""
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory")
    for source in inputs:
        path = _source_path(source)
        if path is not None and is_within(path, out):
            raise ExportError(f"{path}: an input lies inside the output directory {out}; export somewhere else")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"{out}: directory exists and is not empty (pass {overwrite_flag} to replace a bundle)")
        if not (out / MANIFEST_NAME).is_file():
            raise ExportError(
                f"{out}: not a vampnet bundle (no {MANIFEST_NAME}); {overwrite_flag} replaces only a bundle directory"
            )
    return out


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished bundle `tmp` to `out` without ever replacing a directory that appeared meanwhile (another
    export to the same place): renames use RENAME_NOREPLACE; only the bundle checked by check_target is replaced."""
    if out.is_dir() and not any(out.iterdir()):
        try:
            out.rmdir()  # an empty directory stands for nothing; the no-replace rename below needs it gone
        except OSError:
            pass
    backup: Path | None = None
    if out.exists() and overwrite:
        backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, backup / out.name)
        if not (backup / out.name / MANIFEST_NAME).is_file():  # it changed after check_target: put it back
            rename_no_replace(backup / out.name, out)
            shutil.rmtree(backup, ignore_errors=True)
            raise ExportError(f"{out}: not a vampnet bundle any more; not replaced")
    try:
        rename_no_replace(tmp, out)
    except FileExistsError:
        raise ExportError(
            f"{out}: appeared while this export ran (another export to the same directory?); "
            "this export was discarded and the other one kept"
        ) from None
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


def export_bundle(
    out_dir: str | os.PathLike,
    *,
    codec: CheckpointSource | None = None,
    coarse: CheckpointSource | None = None,
    c2f: CheckpointSource | None = None,
    logits: bool = False,
    lora_coarse: LoraSource = None,
    lora_c2f: LoraSource = None,
    demo: bool = False,
    overwrite: bool = False,
    quantize: str = "none",
    hf: str | bool | None = None,
    hf_model: str | None = None,
    hf_revision: str | None = None,
    hf_log: Callable[[str], None] | None = None,
) -> Path:
    """Export a bundle to `out_dir` and return its path.

    codec / coarse / c2f: ``.pth`` paths or ``Checkpoint`` objects (numpy weights). lora_coarse / lora_c2f: a
    separate LoRA file (path) or a mapping of ``lora_A`` / ``lora_B`` tensors, merged into the stage's weights.
    logits: also write ``coarse_logits.onnx`` / ``c2f_logits.onnx``. demo: marks the bundle as the embedded demo
    (random tiny weights) in ``vampnet.json``. overwrite: replace an existing bundle at `out_dir` (see
    ``check_target``: never a directory that is not a bundle, never one holding an input). The finished bundle is
    renamed into place with RENAME_NOREPLACE, so two exports to one `out_dir` never silently replace each other.
    quantize: ``none`` (float32), ``int8`` or ``int4`` weights for the transformer linears; ``int8`` also runs the
    codec decoder's wide convs in int8, the encoder stays float32 (docs/QUANTIZATION.md). Each graph's precision is
    recorded in ``vampnet.json``.
    hf: take codec, coarse and c2f from this Hugging Face Hub model repository (``True``: ``hugggof/vampnet``)
    instead of local files, at `hf_revision` (default ``main``); hf_model: a fine-tune (``loras/NAME/``) in
    place of the base transformers (``default`` or None: the base). The repository, commit, files with their
    sha256 and the model name go into ``vampnet.json`` (``hf``, ``model_name``); `hf_log` gets one line per file.
    """
    try:
        check_precision(quantize)
    except QuantizeError as exc:
        raise ExportError(str(exc)) from None
    hub_model: HubModel | None = None
    if hf is not None and hf is not False:
        if codec is not None or coarse is not None or c2f is not None:
            raise ExportError("hf takes codec, coarse and c2f from the Hub: give either hf or local checkpoints")
        check_target(out_dir, overwrite=overwrite, inputs=(lora_coarse, lora_c2f))  # fail before downloading
        hub_model = fetch_model(DEFAULT_REPO if hf is True else str(hf), hf_model or "default", hf_revision,
                                log=hf_log)
        codec, coarse, c2f = hub_model.paths["codec"], hub_model.paths["coarse"], hub_model.paths["c2f"]
    elif hf_model is not None or hf_revision is not None:
        raise ExportError("hf_model and hf_revision need hf (a Hugging Face Hub repository)")
    if codec is None or coarse is None:
        raise ExportError("a codec and a coarse checkpoint are needed (or hf, to download them)")
    out = check_target(out_dir, overwrite=overwrite, inputs=(codec, coarse, c2f, lora_coarse, lora_c2f))
    out.parent.mkdir(parents=True, exist_ok=True)
    codec_ckpt = as_checkpoint(codec, "codec checkpoint")
    for key in ("encoder_rates", "n_codebooks", "codebook_size", "sample_rate"):
        if key not in codec_ckpt.kwargs:
            raise CheckpointError(f"{codec_ckpt.path}: codec metadata.kwargs lacks '{key}' (is this a LAC codec?)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        export_codec(codec_ckpt, tmp, quantize=quantize)
        # Precision of each graph file (vampnet.json files[name]["precision"]); the codec encoder stays float32.
        precisions = {"codec_encoder.onnx": "float32",
                      "codec_decoder.onnx": decoder_precision(codec_config(codec_ckpt), quantize)}
        entries: dict[str, dict[str, Any]] = {}
        for name, source, lora, chunk in (
            ("coarse", coarse, lora_coarse, COARSE_CHUNK_FRAMES),
            ("c2f", c2f, lora_c2f, C2F_CHUNK_FRAMES),
        ):
            if source is None:
                if lora is not None:
                    raise ExportError(f"a LoRA for '{name}' was given without a {name} checkpoint")
                continue
            graphs: dict[str, GraphFactory] = {f"{name}.onnx": decode_graph}
            if logits:
                graphs[f"{name}_logits.onnx"] = logits_graph
            stage, _ = export_stage(tmp, name, source, codec_ckpt, lora, graphs, quantize)
            entries[name] = _stage_entry(stage, chunk)
            precisions.update({file_name: stage.precision for file_name in graphs})
            del stage  # the stage's checkpoint weights are released before the next stage is read
        if "c2f" in entries and entries["c2f"]["n_conditioning_codebooks"] != entries["coarse"]["n_codebooks"]:
            raise ExportError(
                f"c2f conditions on {entries['c2f']['n_conditioning_codebooks']} codebooks but the coarse model "
                f"has {entries['coarse']['n_codebooks']}: the two stages do not fit together"
            )
        manifest: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "vampnet_ort_version": __version__,
            "demo": bool(demo),
            "sample_rate": int(codec_ckpt.kwargs["sample_rate"]),
            "hop_length": _hop_length(codec_ckpt.kwargs),
            "n_codebooks": int(codec_ckpt.kwargs["n_codebooks"]),
            "vocab_size": int(codec_ckpt.kwargs["codebook_size"]),
            "mask_token": int(codec_ckpt.kwargs["codebook_size"]),
            "coarse": entries["coarse"],
            "c2f": entries.get("c2f"),
            "codec": {"config": codec_ckpt.kwargs, "source_sha256": codec_ckpt.sha256,
                      # the chunk/seam numbers of vampnet_ort.codec, for implementations without the layer tree
                      "geometry": codec_chunking.geometry(CodecConfig.from_kwargs(codec_ckpt.kwargs))},
            "files": {
                p.name: _file_entry(p, precisions.get(p.name)) for p in sorted(tmp.iterdir()) if p.is_file()
            },
        }
        if hub_model is not None:
            manifest["model_name"] = hub_model.model
            manifest["hf"] = hub_model.manifest_entry({"codec": codec_ckpt.sha256, "coarse": entries["coarse"][
                "source_sha256"], "c2f": entries["c2f"]["source_sha256"]})
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        os.chmod(tmp, 0o755)
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
