"""Helpers to build models that embed the reference functions (used by tests, benchmarks and the exporter)."""

from __future__ import annotations

import functools
from typing import Iterable, Mapping, Sequence

import onnx
from onnx import helper

from ._opset import DOMAIN, DOMAIN_VERSION, IR_VERSION, ONNX_OPSET


def function_protos() -> list[onnx.FunctionProto]:
    """FunctionProtos of every vampnet op (the model-local fallbacks); fresh copies on every call."""
    out = []
    for proto in _function_protos_cached():
        copy = onnx.FunctionProto()
        copy.CopyFrom(proto)
        out.append(copy)
    return out


@functools.lru_cache(maxsize=1)
def _function_protos_cached() -> tuple[onnx.FunctionProto, ...]:
    from .functions import ALL_FUNCTIONS, HELPER_FUNCTIONS

    return tuple(fn.to_function_proto() for fn in (*ALL_FUNCTIONS, *HELPER_FUNCTIONS))


# ONNX Runtime's contrib domain (version 1): the quantized MatMuls of int8 / int4 bundles.
MS_DOMAIN = "com.microsoft"


def opset_imports(graph: onnx.GraphProto | None = None) -> list[onnx.OperatorSetIdProto]:
    """The default and vampnet opsets, plus ``com.microsoft`` when `graph` uses one of its ops."""
    imports = [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]
    if graph is not None and MS_DOMAIN in graph_domains(graph):
        imports.append(helper.make_opsetid(MS_DOMAIN, 1))
    return imports


def _walk(graph: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    """Every node of `graph` and of its subgraphs (Loop bodies, If branches)."""
    return _walk_nodes(graph.node)


def _walk_nodes(nodes: Iterable[onnx.NodeProto]) -> Iterable[onnx.NodeProto]:
    """`nodes` and every node of their subgraphs (a function's If branches too)."""
    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk(attr.g)
            for sub in attr.graphs:
                yield from _walk(sub)


def graph_domains(graph: onnx.GraphProto) -> set[str]:
    return {node.domain for node in _walk(graph)}


def used_functions(graph: onnx.GraphProto) -> list[onnx.FunctionProto]:
    """The reference functions of the vampnet ops used anywhere in `graph` (subgraphs included)."""
    names = {node.op_type for node in _walk(graph) if node.domain == DOMAIN}
    protos = {f.name: f for f in function_protos()}
    unknown = names - protos.keys()
    if unknown:
        raise ValueError(f"graph uses vampnet ops without a reference function: {sorted(unknown)}")
    # Functions may call other vampnet functions; include them too.
    pending = sorted(names)
    while pending:
        name = pending.pop()
        for node in _walk_nodes(protos[name].node):
            if node.domain == DOMAIN and node.op_type not in names:
                names.add(node.op_type)
                pending.append(node.op_type)
    return [protos[n] for n in sorted(names)]


def make_model(graph: onnx.GraphProto, metadata: Mapping[str, str] | None = None) -> onnx.ModelProto:
    """Wrap `graph` in a model that carries the reference function of every vampnet op it uses."""
    model = helper.make_model(
        graph,
        opset_imports=opset_imports(graph),
        ir_version=IR_VERSION,
        functions=used_functions(graph),
        producer_name="vampnet-ort",
    )
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def single_op_model(
    op_type: str,
    inputs: Sequence[tuple[str, int, Sequence[int | str | None]]],
    outputs: Sequence[tuple[str, int, Sequence[int | str | None]]],
    attributes: Mapping[str, object] | None = None,
    extra_nodes: Iterable[onnx.NodeProto] = (),
) -> onnx.ModelProto:
    """A model with one `vampnet.<op_type>` node; inputs/outputs are (name, TensorProto dtype, shape)."""
    node = helper.make_node(
        op_type,
        [name for name, _, _ in inputs],
        [name for name, _, _ in outputs],
        domain=DOMAIN,
        **dict(attributes or {}),
    )
    graph = helper.make_graph(
        [*extra_nodes, node],
        f"{op_type}_single",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
    )
    return make_model(graph)
