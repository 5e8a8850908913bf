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
  existed) must be what its nodes are: ``int8`` exactly when it holds ``DynamicQuantizeMatMul`` (or 8-bit
  ``MatMulNBits``) nodes, ``int4`` exactly when it holds 4-bit ``MatMulNBits`` nodes, ``float32`` when it holds
  neither, and equal to the graph's own
  ``vampnet_ort.precision`` metadata where present (the session options follow the precision: a wrong one would
  double the memory or halve the speed, and ``vampnet-ort info`` would misreport it).

Unknown metadata entries and unknown manifest fields are ignored, so later additions do not break old readers.
The models are parsed with ``onnx.load(load_external_data=False)``: the weights in external files are not read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import onnx
from onnx import TensorProto

DECODE_INPUTS = ("codes", "mask", "seed", "num_steps", "temperature", "mask_temperature", "top_p", "typical_mass",
                 "typical_min_tokens", "sample_cutoff")
PRECISIONS = ("float32", "int8", "int4")
QUANTIZED_OPS = {"DynamicQuantizeMatMul": "int8", "MatMulNBits": "int4"}  # com.microsoft op -> precision (default)
MS_DOMAIN = "com.microsoft"
CODEC_METADATA = {"sample_rate": "sample_rate", "hop_length": "hop_length", "n_codebooks": "n_codebooks",
                  "codebook_size": "vocab_size"}  # graph metadata key -> vampnet.json field


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[TensorProto]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from _graph_tensors(sub)


def external_files(model: onnx.ModelProto) -> set[str]:
    """The ``location`` of every tensor stored outside `model` (main graph, subgraphs and functions)."""
    tensors = list(_graph_tensors(model.graph))
    for function in model.functions:
        tensors.extend(_node_tensors(function.node))
    locations = set()
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            locations.add(entries.get("location", ""))
    return locations


def _static_dim(value_info: onnx.ValueInfoProto, axis: int) -> Optional[int]:
    dims = value_info.type.tensor_type.shape.dim
    if axis >= len(dims) or not dims[axis].HasField("dim_value"):
        return None
    return int(dims[axis].dim_value)


def _int_metadata(meta: Mapping[str, str], key: str, fail: Callable[[str], Exception]) -> int:
    if key not in meta:
        raise fail(f"declares no '{key}' in its metadata (not a vampnet-ort export; re-export the bundle)")
    try:
        return int(meta[key])
    except ValueError:
        raise fail(f"metadata '{key}' is not an integer ({meta[key][:40]!r})") from None


def load_graph(path: Path, fail: Callable[[str], Exception]) -> onnx.ModelProto:
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise fail(f"not a valid ONNX model ({type(exc).__name__})") from None


def check_codec_graph(model: onnx.ModelProto, kind: str, manifest: Mapping[str, Any],
                      fail: Callable[[str], Exception]) -> None:
    meta = {p.key: p.value for p in model.metadata_props}
    for key, field in CODEC_METADATA.items():
        declared = _int_metadata(meta, key, fail)
        if declared != manifest[field]:
            raise fail(f"declares {key} {declared} but vampnet.json says {field} {manifest[field]}")
    values = {v.name: v for v in list(model.graph.input) + list(model.graph.output)}
    if "codes" not in values:
        raise fail("has no 'codes' " + ("output" if kind == "codec_encoder" else "input"))
    codebooks = _static_dim(values["codes"], 1)
    if codebooks is not None and codebooks != manifest["n_codebooks"]:
        raise fail(f"has {codebooks} codebooks but vampnet.json says n_codebooks {manifest['n_codebooks']}")


def check_decode_graph(model: onnx.ModelProto, stage_n_codebooks: int, stage_n_conditioning: int,
                       vocab_size: int, fail: Callable[[str], Exception], *, decode: bool) -> None:
    inputs = {v.name: v for v in model.graph.input}
    if decode:
        missing = [name for name in DECODE_INPUTS if name not in inputs]
        if missing:
            raise fail(f"lacks the decode inputs {missing}")
    if "codes" in inputs:
        codebooks = _static_dim(inputs["codes"], 1)
        if codebooks is not None and codebooks != stage_n_codebooks:
            raise fail(f"takes {codebooks} codebooks but vampnet.json says {stage_n_codebooks}")
    meta = {p.key: p.value for p in model.metadata_props}
    raw = meta.get("vampnet_ort.model_config")
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


def _nodes(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.NodeProto]:
    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _nodes(attr.g.node)
            for sub in attr.graphs:
                yield from _nodes(sub.node)


def all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node of `model`: the main graph, ``Loop`` / ``If`` bodies at any depth, model-local functions."""
    yield from _nodes(model.graph.node)
    for function in model.functions:
        yield from _nodes(function.node)


def _node_precision(node: onnx.NodeProto) -> Optional[str]:
    if node.domain != MS_DOMAIN or node.op_type not in QUANTIZED_OPS:
        return None
    if node.op_type == "MatMulNBits":  # its weight width is the `bits` attribute (4 by default; 8 is int8)
        bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
        return f"int{bits}"
    return QUANTIZED_OPS[node.op_type]


def graph_precision(model: onnx.ModelProto) -> str:
    """``int8`` / ``int4`` by the quantized MatMul nodes the graph holds (``DynamicQuantizeMatMul``: int8;
    ``MatMulNBits``: int<bits>), ``float32`` for none, ``mixed`` for several kinds."""
    found = {p for p in map(_node_precision, all_nodes(model)) if p is not None}
    if not found:
        return "float32"
    return found.pop() if len(found) == 1 else "mixed"


def check_precision(model: onnx.ModelProto, declared: Any, fail: Callable[[str], Exception]) -> None:
    """vampnet.json's ``precision`` of this graph (None: absent, meaning float32) against its nodes and metadata."""
    if declared is None:
        declared = "float32"
    if not isinstance(declared, str) or declared not in PRECISIONS:
        raise fail(f"vampnet.json gives precision {str(declared)[:40]!r} (known: {', '.join(PRECISIONS)})")
    meta = {p.key: p.value for p in model.metadata_props}
    recorded = meta.get("vampnet_ort.precision")
    if recorded is not None and recorded != declared:
        raise fail(f"vampnet.json says precision {declared} but the graph was exported as {recorded[:40]}")
    actual = graph_precision(model)
    if actual != declared:
        ops = sorted({n.op_type for n in all_nodes(model) if _node_precision(n) is not None}) or ["no quantized"]
        raise fail(f"vampnet.json says precision {declared} but the graph's linears are {actual} "
                   f"({', '.join(ops)} nodes); re-export the bundle")
