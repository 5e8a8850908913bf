"""Tiny stand-in bundles with plain-ONNX graphs of the bundle interface (no model weights), for testing the
pipeline's orchestration (chunking, masks, seeds, padding, files) exactly and fast.

- codec_encoder: audio [B, 1, N] -> codes [B, C, N / hop]: code(c, t) = (floor((mean of frame t + 1) * 500) + c) mod V
- codec_decoder: codes [B, C, T] -> audio [B, 1, T * hop]: every sample of frame t = codes[:, 0, t] / V - 0.5
- decode graphs (coarse.onnx, c2f.onnx): codes_out = codes where mask == 0 or the codebook is conditioning, else
  ((seed + b) mod 1009) + 7 * codebook, in [0, V) (seed int64 [], item b keyed seed + b as in docs/SPEC.md section 5); the sampling inputs are declared (the real interface) but unused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vampnet_ort.bundle import file_entry, new_manifest, stage_entry

V = 1024
N_CODEBOOKS = 14
HOP = 64
SAMPLE_RATE = 8000


def codec_metadata(model: onnx.ModelProto, sample_rate: int = SAMPLE_RATE, hop: int = HOP,
                   n_codebooks: int = N_CODEBOOKS, vocab: int = V) -> onnx.ModelProto:
    """The metadata a bundle's codec graphs must declare (cross-checked against vampnet.json)."""
    for key, value in (("sample_rate", sample_rate), ("hop_length", hop), ("n_codebooks", n_codebooks),
                       ("codebook_size", vocab)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return model


def _save(model: onnx.ModelProto, path: Path) -> None:
    model.opset_import[0].version = 20
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def encoder_model(hop: int = HOP, n_codebooks: int = N_CODEBOOKS) -> onnx.ModelProto:
    c = lambda name, arr: numpy_helper.from_array(np.asarray(arr), name)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"]),
        helper.make_node("Slice", ["shape", "i0", "i1"], ["b"]),
        helper.make_node("Concat", ["b", "minus1", "hop"], ["frames_shape"], axis=0),
        helper.make_node("Reshape", ["audio", "frames_shape"], ["frames"]),
        helper.make_node("ReduceMean", ["frames", "axis2"], ["mean"], keepdims=0),  # [B, T]
        helper.make_node("Add", ["mean", "one_f"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "scale"], ["scaled"]),
        helper.make_node("Floor", ["scaled"], ["floored"]),
        helper.make_node("Cast", ["floored"], ["base"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["base", "axis1"], ["base3"]),  # [B, 1, T]
        helper.make_node("Add", ["base3", "cb_offsets"], ["summed"]),  # [B, C, T]
        helper.make_node("Mod", ["summed", "vocab"], ["codes"]),
    ]
    inits = [
        c("i0", np.array([0], np.int64)), c("i1", np.array([1], np.int64)), c("minus1", np.array([-1], np.int64)),
        c("hop", np.array([hop], np.int64)), c("axis2", np.array([2], np.int64)), c("axis1", np.array([1], np.int64)),
        c("one_f", np.array(1.0, np.float32)), c("scale", np.array(500.0, np.float32)),
        c("cb_offsets", np.arange(n_codebooks, dtype=np.int64).reshape(1, n_codebooks, 1)),
        c("vocab", np.array(V, np.int64)),
    ]
    graph = helper.make_graph(
        nodes, "encoder_double",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", 1, "N"])],
        [helper.make_tensor_value_info("codes", TensorProto.INT64, ["B", n_codebooks, "T"])], inits)
    return helper.make_model(graph)


def decoder_model(hop: int = HOP, n_codebooks: int = N_CODEBOOKS) -> onnx.ModelProto:
    c = lambda name, arr: numpy_helper.from_array(np.asarray(arr), name)  # noqa: E731
    nodes = [
        helper.make_node("Slice", ["codes", "i0", "i1", "i1"], ["first"]),  # [B, 1, T]
        helper.make_node("Cast", ["first"], ["first_f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["first_f", "vocab_f"], ["ratio"]),
        helper.make_node("Sub", ["ratio", "half"], ["level"]),
        helper.make_node("Unsqueeze", ["level", "axis3"], ["level4"]),  # [B, 1, T, 1]
        helper.make_node("Expand", ["level4", "expand_shape"], ["tiled"]),  # [B, 1, T, hop]
        helper.make_node("Shape", ["codes"], ["shape"]),
        helper.make_node("Slice", ["shape", "i0", "i1"], ["b"]),
        helper.make_node("Concat", ["b", "one", "minus1"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["tiled", "out_shape"], ["audio"]),
    ]
    inits = [
        c("i0", np.array([0], np.int64)), c("i1", np.array([1], np.int64)), c("one", np.array([1], np.int64)),
        c("minus1", np.array([-1], np.int64)), c("axis3", np.array([3], np.int64)),
        c("vocab_f", np.array(float(V), np.float32)), c("half", np.array(0.5, np.float32)),
        c("expand_shape", np.array([1, 1, 1, hop], np.int64)),
    ]
    graph = helper.make_graph(
        nodes, "decoder_double",
        [helper.make_tensor_value_info("codes", TensorProto.INT64, ["B", n_codebooks, "T"])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", 1, "N"])], inits)
    return helper.make_model(graph)


def decode_model(n_codebooks: int, n_conditioning: int) -> onnx.ModelProto:
    c = lambda name, arr: numpy_helper.from_array(np.asarray(arr), name)  # noqa: E731
    inputs = [
        helper.make_tensor_value_info("codes", TensorProto.INT64, ["B", n_codebooks, "T"]),
        helper.make_tensor_value_info("mask", TensorProto.INT64, ["B", n_codebooks, "T"]),
        helper.make_tensor_value_info("seed", TensorProto.INT64, []),
        helper.make_tensor_value_info("num_steps", TensorProto.INT64, []),
        helper.make_tensor_value_info("temperature", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("mask_temperature", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("top_p", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("typical_mass", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("typical_min_tokens", TensorProto.INT64, []),
        helper.make_tensor_value_info("sample_cutoff", TensorProto.FLOAT, []),
    ]
    nodes = [
        helper.make_node("Shape", ["codes"], ["codes_shape"]),
        helper.make_node("Gather", ["codes_shape", "zero"], ["batch"], axis=0),
        helper.make_node("Range", ["zero", "batch", "one"], ["items"]),  # [B]
        helper.make_node("Add", ["seed", "items"], ["item_seeds"]),  # item b: seed + b
        helper.make_node("Mod", ["item_seeds", "p1009"], ["seed_mod"]),  # [B], non-negative (Python-style mod)
        helper.make_node("Reshape", ["seed_mod", "b11"], ["seed3"]),  # [B, 1, 1]
        helper.make_node("Add", ["seed3", "cb_term"], ["new_codes"]),  # [B, C, 1]
        helper.make_node("Mul", ["mask", "predicted"], ["regen"]),  # [B, C, T]
        helper.make_node("Cast", ["regen"], ["regen_b"], to=TensorProto.BOOL),
        helper.make_node("Where", ["regen_b", "new_codes", "codes"], ["codes_out"]),
    ]
    predicted = np.zeros((1, n_codebooks, 1), np.int64)
    predicted[:, n_conditioning:] = 1
    inits = [
        c("p1009", np.array(1009, np.int64)), c("zero", np.array(0, np.int64)), c("one", np.array(1, np.int64)), c("b11", np.array([-1, 1, 1], np.int64)),
        c("cb_term", (7 * np.arange(n_codebooks, dtype=np.int64)).reshape(1, n_codebooks, 1)),
        c("predicted", predicted),
    ]
    graph = helper.make_graph(
        nodes, "decode_double", inputs,
        [helper.make_tensor_value_info("codes_out", TensorProto.INT64, ["B", n_codebooks, "T"])], inits)
    return helper.make_model(graph)


def expected_decode(codes: np.ndarray, mask: np.ndarray, seed: int, n_conditioning: int) -> np.ndarray:
    """Numpy statement of what `decode_model` computes."""
    seeds = int(seed) + np.arange(codes.shape[0])
    new = (seeds.reshape(-1, 1, 1) % 1009) + 7 * np.arange(codes.shape[1]).reshape(1, -1, 1)
    regen = mask.astype(bool).copy()
    regen[:, :n_conditioning] = False
    return np.where(regen, new, codes)


def write_bundle(directory: Path, *, coarse_chunk: int = 20, c2f_chunk: int = 7, with_c2f: bool = True,
                 demo: bool = False, codec_checkpoint: Path | None = None) -> Path:
    """A stand-in bundle; with `codec_checkpoint` the codec graphs are the real export of that LAC checkpoint
    (44.1 kHz, hop 768) and only the decode graphs are stand-ins."""
    directory.mkdir(parents=True, exist_ok=True)
    sample_rate, hop = SAMPLE_RATE, HOP
    if codec_checkpoint is not None:
        from vampnet_ort.export.codec import export_codec

        export_codec(codec_checkpoint, directory)
        sample_rate, hop = 44100, 768
    else:
        _save(codec_metadata(encoder_model()), directory / "codec_encoder.onnx")
        _save(codec_metadata(decoder_model()), directory / "codec_decoder.onnx")
    _save(decode_model(4, 0), directory / "coarse.onnx")
    if with_c2f:
        _save(decode_model(N_CODEBOOKS, 4), directory / "c2f.onnx")
    files = {p.name: file_entry(p) for p in sorted(directory.glob("*.onnx"))}
    manifest = new_manifest(
        sample_rate=sample_rate, hop_length=hop, n_codebooks=N_CODEBOOKS, vocab_size=V, demo=demo, version="test",
        coarse=stage_entry(n_codebooks=4, n_conditioning_codebooks=0, chunk_frames=coarse_chunk,
                           source_sha256="0" * 64),
        c2f=(stage_entry(n_codebooks=N_CODEBOOKS, n_conditioning_codebooks=4, chunk_frames=c2f_chunk,
                         source_sha256="0" * 64) if with_c2f else None),
        codec={"config": {}, "source_sha256": "0" * 64}, files=files)
    (directory / "vampnet.json").write_text(json.dumps(manifest, indent=2))
    return directory
