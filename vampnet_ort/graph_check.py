"""What a bundle's graphs declare, read without their weights, and checked against ``vampnet.json``.

``load_bundle`` calls :func:`check_bundle_graphs` after hashing the files:

- every file a graph references (external data of any initializer or constant, in the main graph, in ``Loop`` /
  ``If`` bodies and in model-local functions) must be a plain file name listed (and so hashed) in vampnet.json;
- the codec graphs must declare ``sample_rate``, ``hop_length``, ``n_codebooks`` and ``codebook_size`` in their
  metadata, equal to vampnet.json's ``sample_rate``, ``hop_length``, ``n_codebooks`` and ``vocab_size``; their
  codes dimension, where it is static, must be ``n_codebooks``;
- a decode graph's ``codes`` input must have the stage's codebook count (where static) and every input of the
  decode contract; its ``vampnet_ort.model_config`` metadata, when present, must agree with the stage and the
  vocabulary size;
- every graph's ``precision`` in vampnet.json (``float32`` when absent, as bundles written before quantization
  existed) must be what its nodes are (``graph_precision``): ``float32`` without quantized nodes, ``int8`` with
  ``DynamicQuantizeMatMul``, ``MatMulInteger`` or ``RelativePositionAttentionInt8`` nodes, ``int4`` / ``w8`` with
  ``MatMulNBits`` nodes of ``bits`` 4 / 8, and equal to the graph's own ``vampnet_ort.precision`` metadata where present
  (the session options follow the precision: a wrong one would double the memory or halve the speed, and
  ``vampnet-ort info`` would misreport it).

Unknown metadata entries and unknown manifest fields are ignored, so later additions do not break old readers.
The models are read with ``vampnet_ort.onnx_wire`` (no ``onnx`` import): the weights in external files are not read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from .onnx_wire import ModelSummary, WireError, read_model

DECODE_INPUTS = ("codes", "mask", "seed", "num_steps", "temperature", "mask_temperature", "top_p", "typical_mass",
                 "typical_min_tokens", "sample_cutoff")
PRECISIONS = ("float32", "int8", "int4", "w8")  # = the exporter's precision names (vampnet_ort.export.quantize)
MS_DOMAIN = "com.microsoft"
CODEC_METADATA = {"sample_rate": "sample_rate", "hop_length": "hop_length", "n_codebooks": "n_codebooks",
                  "codebook_size": "vocab_size"}  # graph metadata key -> vampnet.json field


def external_files(model: ModelSummary) -> set[str]:
    """The ``location`` of every tensor stored outside `model` (main graph, subgraphs and functions)."""
    return set(model.external_locations)


def _int_metadata(meta: Mapping[str, str], key: str, fail: Callable[[str], Exception]) -> int:
    if key not in meta:
        raise fail(f"declares no '{key}' in its metadata (not a vampnet-ort export; re-export the bundle)")
    try:
        return int(meta[key])
    except ValueError:
        raise fail(f"metadata '{key}' is not an integer ({meta[key][:40]!r})") from None


def load_graph(path: Path, fail: Callable[[str], Exception]) -> ModelSummary:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        return read_model(data)
    except WireError as exc:
        raise fail(f"not a valid ONNX model ({exc})") from None


def check_codec_graph(model: ModelSummary, kind: str, manifest: Mapping[str, Any],
                      fail: Callable[[str], Exception]) -> None:
    meta = model.metadata
    for key, field in CODEC_METADATA.items():
        declared = _int_metadata(meta, key, fail)
        if declared != manifest[field]:
            raise fail(f"declares {key} {declared} but vampnet.json says {field} {manifest[field]}")
    values = {**model.inputs, **model.outputs}
    if "codes" not in values:
        raise fail("has no 'codes' " + ("output" if kind == "codec_encoder" else "input"))
    codebooks = values["codes"].static_dim(1)
    if codebooks is not None and codebooks != manifest["n_codebooks"]:
        raise fail(f"has {codebooks} codebooks but vampnet.json says n_codebooks {manifest['n_codebooks']}")


def check_decode_graph(model: ModelSummary, stage_n_codebooks: int, stage_n_conditioning: int,
                       vocab_size: int, fail: Callable[[str], Exception], *, decode: bool) -> None:
    inputs = model.inputs
    if decode:
        missing = [name for name in DECODE_INPUTS if name not in inputs]
        if missing:
            raise fail(f"lacks the decode inputs {missing}")
    if "codes" in inputs:
        codebooks = inputs["codes"].static_dim(1)
        if codebooks is not None and codebooks != stage_n_codebooks:
            raise fail(f"takes {codebooks} codebooks but vampnet.json says {stage_n_codebooks}")
    raw = model.metadata.get("vampnet_ort.model_config")
    if raw is None:
        return
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        raise fail("metadata 'vampnet_ort.model_config' is not valid JSON") from None
    if not isinstance(config, dict):
        raise fail("metadata 'vampnet_ort.model_config' is not an object")
    for key, expected in (("n_codebooks", stage_n_codebooks), ("n_conditioning_codebooks", stage_n_conditioning),
                          ("vocab_size", vocab_size)):
        if key in config and config[key] != expected:
            raise fail(f"was exported with {key} {config[key]} but vampnet.json says {expected}")


# Nodes that only a quantized export writes, and the precision each one means: int8 bundles use
# DynamicQuantizeMatMul (transformer linears), MatMulInteger (the codec decoder's int8 convs) and the int8 attention
# op; int4 and w8 bundles use MatMulNBits with bits 4 and 8.
INT8_NODES = ((MS_DOMAIN, "DynamicQuantizeMatMul"), ("", "MatMulInteger"), ("vampnet", "RelativePositionAttentionInt8"))
NBITS_PRECISION = {4: "int4", 8: "w8"}


def graph_precision(model: ModelSummary) -> str:
    """The precision the graph's nodes show (graph, subgraphs, functions): ``float32`` with no quantized node,
    else ``int8``, ``int4`` or ``w8``; ``mixed`` when they show more than one."""
    kinds = set()
    if any(node in model.op_types for node in INT8_NODES):
        kinds.add("int8")
    for domain, op_type, name, value in model.int_attributes:
        if (domain, op_type, name) == (MS_DOMAIN, "MatMulNBits", "bits"):
            kinds.add(NBITS_PRECISION.get(value, f"{value}-bit"))
    if not kinds:
        return "float32"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def check_precision(model: ModelSummary, declared: Any, fail: Callable[[str], Exception]) -> None:
    """vampnet.json's ``precision`` of this graph (None: absent, meaning float32) against its nodes and metadata."""
    if declared is None:
        declared = "float32"
    if not isinstance(declared, str) or declared not in PRECISIONS:
        raise fail(f"vampnet.json gives precision {str(declared)[:40]!r} (known: {', '.join(PRECISIONS)})")
    recorded = model.metadata.get("vampnet_ort.precision")
    if recorded is not None and recorded != declared:
        raise fail(f"vampnet.json says precision {declared} but the graph was exported as {recorded[:40]}")
    actual = graph_precision(model)
    if declared != actual:
        nodes = sorted({op for domain, op in model.op_types
                        if (domain, op) in INT8_NODES or (domain, op) == (MS_DOMAIN, "MatMulNBits")})
        raise fail(f"vampnet.json says precision {declared} but the graph's linears are {actual} "
                   f"({', '.join(nodes) or 'no quantized'} nodes); re-export the bundle")
