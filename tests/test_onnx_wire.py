"""vampnet_ort.onnx_wire (the bundle check's protobuf reader) against the onnx package's own parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vampnet_ort.onnx_wire import WireError, read_model


def _onnx_view(model: onnx.ModelProto) -> dict:
    """The same summary, computed with the onnx package (the independent reference)."""
    locations: set[str] = set()
    op_types: set[tuple[str, str]] = set()
    int_attributes: set[tuple[str, str, str, int]] = set()

    def tensor(t: onnx.TensorProto) -> None:
        if t.data_location == TensorProto.EXTERNAL:
            locations.add({e.key: e.value for e in t.external_data}.get("location", ""))

    def nodes(ns) -> None:
        for node in ns:
            op_types.add((node.domain, node.op_type))
            for attr in node.attribute:
                # a function's reference to its own attribute (ref_attr_name) holds no value of its own
                if attr.type == onnx.AttributeProto.INT and not attr.ref_attr_name:
                    int_attributes.add((node.domain, node.op_type, attr.name, attr.i))
                if attr.HasField("t"):
                    tensor(attr.t)
                for t in attr.tensors:
                    tensor(t)
                if attr.HasField("g"):
                    graph(attr.g)
                for g in attr.graphs:
                    graph(g)

    def graph(g: onnx.GraphProto) -> None:
        for t in g.initializer:
            tensor(t)
        for s in g.sparse_initializer:
            tensor(s.values)
            tensor(s.indices)
        nodes(g.node)

    graph(model.graph)
    for function in model.functions:
        nodes(function.node)

    def dims(v: onnx.ValueInfoProto) -> list:
        return [int(d.dim_value) if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]

    return {"metadata": {p.key: p.value for p in model.metadata_props},
            "inputs": {v.name: dims(v) for v in model.graph.input},
            "outputs": {v.name: dims(v) for v in model.graph.output},
            "external": locations, "op_types": op_types, "int_attributes": int_attributes}


def _wire_view(data: bytes) -> dict:
    summary = read_model(data)
    return {"metadata": summary.metadata,
            "inputs": {k: v.dims for k, v in summary.inputs.items()},
            "outputs": {k: v.dims for k, v in summary.outputs.items()},
            "external": summary.external_locations, "op_types": summary.op_types,
            "int_attributes": summary.int_attributes}


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vampnet_ort.demo import build_demo_bundle

    return build_demo_bundle(tmp_path_factory.mktemp("wire") / "bundle")


def test_every_demo_bundle_graph_reads_as_onnx_reads_it(demo_bundle: Path) -> None:
    graphs = sorted(demo_bundle.glob("*.onnx"))
    assert len(graphs) >= 4
    for path in graphs:
        data = path.read_bytes()
        expected = _onnx_view(onnx.load_from_string(data))
        got = _wire_view(data)
        assert got == expected, path.name
        assert got["op_types"], path.name


def _nested_model() -> onnx.ModelProto:
    """External tensors at every place one can hide: an initializer, a sparse initializer, a Constant in a Loop body
    in a Loop body, a Constant in a model-local function; static and symbolic dims; metadata."""

    def external(name: str, location: str) -> TensorProto:
        t = numpy_helper.from_array(np.zeros(2, np.float32), name)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=location)
        t.external_data.add(key="offset", value="0")
        return t

    inner = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=external("c", "inner.bin")), helper.make_node("Identity", ["c"], ["o"])],
        "inner", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                  helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])])
    outer_body = helper.make_graph(
        [helper.make_node("Loop", ["", ""], ["l"], body=inner)], "outer",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("l", TensorProto.FLOAT, None)])
    function = helper.make_function(
        "custom", "F", ["x"], ["y"],
        [helper.make_node("Constant", [], ["k"], value=external("k", "function.bin")),
         helper.make_node("Add", ["x", "k"], ["y"])], [helper.make_opsetid("", 17)])
    sparse = helper.make_sparse_tensor(external("sv", "sparse_values.bin"),
                                       numpy_helper.from_array(np.array([0, 1], np.int64), "si"), [4])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", ""], ["loop_out"], body=outer_body),
         helper.make_node("MatMulNBits", ["x", "x", "x"], ["q"], domain="com.microsoft", bits=8, K=2, N=2,
                          block_size=-9223372036854775808),
         helper.make_node("F", ["x"], ["y"], domain="custom")],
        "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("n", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("loop_out", TensorProto.FLOAT, None)],
        initializer=[external("w", "weights.bin")], sparse_initializer=[sparse])
    model = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    helper.set_model_props(model, {"sample_rate": "44100", "note": "ünïcode"})
    return model


def test_nested_external_data_functions_and_dims_match_onnx() -> None:
    model = _nested_model()
    data = model.SerializeToString()
    got = _wire_view(data)
    assert got == _onnx_view(model)
    assert got["external"] == {"weights.bin", "sparse_values.bin", "inner.bin", "function.bin"}
    assert got["inputs"] == {"x": [None, 2], "n": []}
    assert ("custom", "F") in got["op_types"] and ("", "Loop") in got["op_types"]
    assert ("com.microsoft", "MatMulNBits", "bits", 8) in got["int_attributes"]
    assert ("com.microsoft", "MatMulNBits", "block_size", -2**63) in got["int_attributes"]  # int64 sign


@pytest.mark.parametrize("data", [b"", b"\x08", b"\x3a\x05abc", b"\x3a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                  b"\x3b\x00", b"not an onnx model at all"])
def test_malformed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(WireError):
        read_model(data)


def test_truncated_real_model_is_refused() -> None:
    data = _nested_model().SerializeToString()
    for cut in (1, len(data) // 3, len(data) - 1):
        with pytest.raises(WireError):
            read_model(data[:cut])


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (the encoding onnx_wire reads), written by hand."""
    key, size, out = (number << 3) | 2, len(payload), bytearray()
    for value in (key, size):
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


def test_subgraphs_nested_too_deep_are_refused() -> None:
    # protobuf itself refuses to build such a model (upb's depth limit), so the bytes are written by hand:
    # graph.node(1).attribute(5).g(6) = graph ... 70 levels deep, under ModelProto.graph (7).
    graph = b""
    for _ in range(70):
        graph = _field(1, _field(5, _field(6, graph)))
    with pytest.raises(WireError, match="nested deeper"):
        read_model(_field(7, graph))
    shallow = b""
    for _ in range(10):
        shallow = _field(1, _field(5, _field(6, shallow)))
    assert read_model(_field(7, shallow)).op_types == {("", "")}
