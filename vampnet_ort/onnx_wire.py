"""What a bundle needs to know about an ONNX model, read straight from its protobuf encoding.

Loading a bundle checks each graph against ``vampnet.json`` (``graph_check``) before ONNX Runtime opens it. The
``onnx`` package could parse the file, but importing it (with ``ml_dtypes``) costs more than the rest of a CLI
start-up together, and the check needs only a handful of fields. So this module walks the protobuf wire format
(varints, length-delimited fields, fixed 32/64-bit words; https://protobuf.dev/programming-guides/encoding/) and
keeps exactly those fields of onnx.proto:

- model metadata (``ModelProto.metadata_props``);
- the main graph's inputs and outputs with their static dimensions;
- the ``location`` of every tensor stored outside the file, in the main graph, in every subgraph (``Loop`` /
  ``If`` bodies, at any depth) and in model-local functions;
- every ``(domain, op_type)`` used anywhere in the model, and the integer attributes of every node as
  ``(domain, op_type, attribute, value)`` (e.g. ``MatMulNBits``' ``bits``).

Field numbers come from onnx.proto (ONNX IR version 10); tensor payloads (``raw_data`` and friends) are skipped
without being copied. Malformed input raises :class:`WireError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional

# onnx.proto field numbers.
MODEL_GRAPH, MODEL_METADATA, MODEL_FUNCTIONS = 7, 14, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT = 1, 5, 15, 11, 12
NODE_OP_TYPE, NODE_ATTRIBUTE, NODE_DOMAIN = 4, 5, 7
ATTR_NAME, ATTR_I = 1, 3
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 5, 6, 10, 11, 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14
TENSOR_LOCATION_EXTERNAL = 1
FUNCTION_NODE = 7
VALUE_INFO_NAME, VALUE_INFO_TYPE = 1, 2
TYPE_TENSOR_TYPE, TENSOR_TYPE_SHAPE, SHAPE_DIM, DIM_VALUE = 1, 2, 1, 1
ENTRY_KEY, ENTRY_VALUE = 1, 2

# Subgraphs nest (a Loop body in a function in a Loop body ...); real models stay far below this.
MAX_DEPTH = 64

WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(data: memoryview) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)`` of one message: an int for varints and fixed words, a memoryview
    for length-delimited fields."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == WIRE_VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == WIRE_BYTES:
            size, pos = _varint(data, pos)
            if size > end - pos:
                raise WireError("length-delimited field runs past the end")
            yield number, wire, data[pos:pos + size]
            pos += size
        elif wire in (WIRE_FIXED64, WIRE_FIXED32):
            size = 8 if wire == WIRE_FIXED64 else 4
            if size > end - pos:
                raise WireError("fixed-width field runs past the end")
            yield number, wire, int.from_bytes(data[pos:pos + size], "little")
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire}")


def _messages(data: memoryview, number: int) -> Iterator[memoryview]:
    for num, wire, value in fields(data):
        if num == number and wire == WIRE_BYTES:
            assert isinstance(value, memoryview)
            yield value


def _string(value: memoryview) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("a string field is not UTF-8") from None


def _entry(data: memoryview) -> tuple[str, str]:
    key = value = ""
    for num, wire, raw in fields(data):
        if wire == WIRE_BYTES and num == ENTRY_KEY:
            key = _string(raw)  # type: ignore[arg-type]
        elif wire == WIRE_BYTES and num == ENTRY_VALUE:
            value = _string(raw)  # type: ignore[arg-type]
    return key, value


@dataclass
class ValueInfo:
    """A graph input or output: its name and dimensions (None where not a static number)."""

    name: str
    dims: list[Optional[int]]

    def static_dim(self, axis: int) -> Optional[int]:
        return self.dims[axis] if axis < len(self.dims) else None


@dataclass
class ModelSummary:
    metadata: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, ValueInfo] = field(default_factory=dict)
    outputs: dict[str, ValueInfo] = field(default_factory=dict)
    external_locations: set[str] = field(default_factory=set)
    op_types: set[tuple[str, str]] = field(default_factory=set)
    int_attributes: set[tuple[str, str, str, int]] = field(default_factory=set)


def _value_info(data: memoryview) -> ValueInfo:
    name, dims = "", []
    for num, wire, value in fields(data):
        if wire != WIRE_BYTES:
            continue
        if num == VALUE_INFO_NAME:
            name = _string(value)  # type: ignore[arg-type]
        elif num == VALUE_INFO_TYPE:
            for tensor_type in _messages(value, TYPE_TENSOR_TYPE):  # type: ignore[arg-type]
                for shape in _messages(tensor_type, TENSOR_TYPE_SHAPE):
                    for dim in _messages(shape, SHAPE_DIM):
                        static = None
                        for dnum, dwire, dvalue in fields(dim):
                            if dnum == DIM_VALUE and dwire == WIRE_VARINT:
                                static = int(dvalue)  # type: ignore[call-overload]
                        dims.append(static)
    return ValueInfo(name, dims)


class _Walker:
    def __init__(self, summary: ModelSummary) -> None:
        self.summary = summary

    def tensor(self, data: memoryview) -> None:
        external = False
        location = ""
        for num, wire, value in fields(data):
            if num == TENSOR_DATA_LOCATION and wire == WIRE_VARINT:
                external = value == TENSOR_LOCATION_EXTERNAL
            elif num == TENSOR_EXTERNAL_DATA and wire == WIRE_BYTES:
                key, entry_value = _entry(value)  # type: ignore[arg-type]
                if key == "location":
                    location = entry_value
        if external:
            self.summary.external_locations.add(location)

    def sparse(self, data: memoryview) -> None:
        for num, wire, value in fields(data):
            if wire == WIRE_BYTES and num in (SPARSE_VALUES, SPARSE_INDICES):
                self.tensor(value)  # type: ignore[arg-type]

    def nodes(self, data: memoryview, node_field: int, depth: int) -> None:
        for node in _messages(data, node_field):
            op_type = domain = ""
            ints: list[tuple[str, int]] = []
            for num, wire, value in fields(node):
                if wire != WIRE_BYTES:
                    continue
                if num == NODE_OP_TYPE:
                    op_type = _string(value)  # type: ignore[arg-type]
                elif num == NODE_DOMAIN:
                    domain = _string(value)  # type: ignore[arg-type]
                elif num == NODE_ATTRIBUTE:
                    named = self.attribute(value, depth)  # type: ignore[arg-type]
                    if named is not None:
                        ints.append(named)
            self.summary.op_types.add((domain, op_type))
            self.summary.int_attributes.update((domain, op_type, name, number) for name, number in ints)

    def attribute(self, data: memoryview, depth: int) -> Optional[tuple[str, int]]:
        """Walk one attribute's tensors and graphs; return ``(name, value)`` when it holds an integer."""
        name, number = "", None
        for num, wire, value in fields(data):
            if num == ATTR_I and wire == WIRE_VARINT:
                number = int(value)  # type: ignore[call-overload]
                number = number - (1 << 64) if number >= 1 << 63 else number  # int64, two's complement
                continue
            if wire != WIRE_BYTES:
                continue
            if num == ATTR_NAME:
                name = _string(value)  # type: ignore[arg-type]
            elif num in (ATTR_T, ATTR_TENSORS):
                self.tensor(value)  # type: ignore[arg-type]
            elif num in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
                self.sparse(value)  # type: ignore[arg-type]
            elif num in (ATTR_G, ATTR_GRAPHS):
                self.graph(value, depth + 1)  # type: ignore[arg-type]
        return (name, number) if number is not None else None

    def graph(self, data: memoryview, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise WireError(f"subgraphs nested deeper than {MAX_DEPTH}")
        for num, wire, value in fields(data):
            if wire != WIRE_BYTES:
                continue
            if num == GRAPH_INITIALIZER:
                self.tensor(value)  # type: ignore[arg-type]
            elif num == GRAPH_SPARSE_INITIALIZER:
                self.sparse(value)  # type: ignore[arg-type]
        self.nodes(data, GRAPH_NODE, depth)


def read_model(data: bytes) -> ModelSummary:
    """Summarise a serialised ``ModelProto`` (raises :class:`WireError` when the bytes are not one)."""
    view = memoryview(data)
    summary = ModelSummary()
    walker = _Walker(summary)
    has_graph = False
    for num, wire, value in fields(view):
        if wire != WIRE_BYTES:
            continue
        if num == MODEL_METADATA:
            key, entry_value = _entry(value)  # type: ignore[arg-type]
            summary.metadata[key] = entry_value
        elif num == MODEL_GRAPH:
            has_graph = True
            walker.graph(value, 0)  # type: ignore[arg-type]
            for info in map(_value_info, _messages(value, GRAPH_INPUT)):  # type: ignore[arg-type]
                summary.inputs[info.name] = info
            for info in map(_value_info, _messages(value, GRAPH_OUTPUT)):  # type: ignore[arg-type]
                summary.outputs[info.name] = info
        elif num == MODEL_FUNCTIONS:
            walker.nodes(value, FUNCTION_NODE, 1)  # type: ignore[arg-type]
    if not has_graph:
        raise WireError("no graph")
    return summary
