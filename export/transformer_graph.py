"""ONNX graph of the VampNet forward, built from the vampnet ops (no tracing).

    codes [B, C, T] --vampnet.CodebookEmbedding--> x [B, T, D]
    L x {  x += (vampnet.RelativePositionAttention(vampnet.RMSNorm(x, norm_1) @ W_qkv, rel_bias)) @ W_out
           x += GEGLU(vampnet.RMSNorm(x, norm_3) @ W_1) @ W_2          GEGLU([a | b]) = a * Gelu_tanh(b) }
    vampnet.RMSNorm(x, norm) @ W_cls + b_cls --Reshape--> [B, T, P, V] --Transpose--> logits [B, P, T, V]

The weights are stored once (``store_transformer_weights``) and referred to by name; ``emit_forward`` writes the
nodes into any ``NodeWriter``, so the same forward can sit in a top-level graph (the logits graph) or inside a
``Loop`` body that reads the weights as outer-scope initializers (the decode graph). B and T are dynamic.

FiLM is absent on purpose: it is the identity for every model this exporter accepts (r_cond_dim = 0, see
``VampNetConfig.from_kwargs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import onnx
from onnx import TensorProto, helper

from vampnet_ort import ops
from vampnet_ort.ops import DOMAIN

from .vampnet_weights import RMS_EPSILON, VampNetConfig, VampNetWeights
from .weight_store import WeightStore


@dataclass(frozen=True)
class LayerNames:
    norm_1: str
    w_qkv: str
    w_out: str
    norm_3: str
    w_1: str
    w_2: str


@dataclass(frozen=True)
class TransformerNames:
    """Initializer names of one model's weights."""

    tables: str
    embedding_bias: str
    rel_bias: str
    layers: tuple[LayerNames, ...]
    final_norm: str
    classifier_weight: str
    classifier_bias: str


def store_transformer_weights(weights: VampNetWeights, store: WeightStore, prefix: str = "") -> TransformerNames:
    """Fold the checkpoint block by block into `store` (each block is released before the next is made)."""
    tables, bias = weights.embedding()
    tables_name = store.add(f"{prefix}embedding.tables", tables)
    bias_name = store.add(f"{prefix}embedding.bias", bias)
    del tables, bias
    rel_name = store.add(f"{prefix}attention.rel_bias", weights.relative_bias())
    layers = []
    for i in range(weights.config.n_layers):
        lw = weights.layer(i)
        p = f"{prefix}layers.{i}."
        layers.append(
            LayerNames(
                norm_1=store.add(p + "norm_1", lw.norm_1),
                w_qkv=store.add(p + "w_qkv", lw.w_qkv),
                w_out=store.add(p + "w_out", lw.w_out),
                norm_3=store.add(p + "norm_3", lw.norm_3),
                w_1=store.add(p + "w_1", lw.w_1),
                w_2=store.add(p + "w_2", lw.w_2),
            )
        )
        del lw
    norm_name = store.add(f"{prefix}final_norm", weights.final_norm())
    cls_w, cls_b = weights.classifier()
    cls_w_name = store.add(f"{prefix}classifier.weight", cls_w)
    cls_b_name = store.add(f"{prefix}classifier.bias", cls_b)
    del cls_w, cls_b
    weights.finish()
    return TransformerNames(
        tables=tables_name,
        embedding_bias=bias_name,
        rel_bias=rel_name,
        layers=tuple(layers),
        final_norm=norm_name,
        classifier_weight=cls_w_name,
        classifier_bias=cls_b_name,
    )


@dataclass
class NodeWriter:
    """Appends nodes to one graph; every value it creates is named ``<scope>/<hint>_<n>`` (unique)."""

    scope: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    _count: int = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{self.scope}/{hint}_{self._count}"

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: int | Sequence[str] = 1,
        *,
        domain: str = "",
        hint: str | None = None,
        **attrs: Any,
    ) -> list[str]:
        hint = hint or op_type
        names = [self.fresh(hint) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(
            helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node_{hint}"), domain=domain, **attrs)
        )
        return names

    def op1(self, op_type: str, inputs: Sequence[str], **kwargs: Any) -> str:
        return self.op(op_type, inputs, 1, **kwargs)[0]

    def const_ints(self, values: Sequence[int], hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.INT64, [len(values)], list(values))
        return self.op1("Constant", [], hint=hint, value=tensor)

    def const_int(self, value: int, hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.INT64, [], [int(value)])
        return self.op1("Constant", [], hint=hint, value=tensor)

    def const_float(self, value: float, hint: str = "const") -> str:
        tensor = helper.make_tensor(self.fresh(hint + "_value"), TensorProto.FLOAT, [], [float(value)])
        return self.op1("Constant", [], hint=hint, value=tensor)


@dataclass(frozen=True)
class ForwardOutputs:
    logits: str  # [B, P, T, V]
    activations: tuple[str, ...]  # residual stream after each layer, [B, T, D]


def emit_forward(
    w: NodeWriter, config: VampNetConfig, names: TransformerNames, codes: str, logits_name: str | None = None
) -> ForwardOutputs:
    """Write the forward pass codes [B, C, T] -> logits [B, P, T, V] into `w`."""
    c = config
    x = w.op1("CodebookEmbedding", [codes, names.tables, names.embedding_bias], domain=DOMAIN, hint="embed")
    activations = []
    for i, ln in enumerate(names.layers):
        h = w.op1("RMSNorm", [x, ln.norm_1], domain=DOMAIN, hint=f"l{i}_norm1", epsilon=RMS_EPSILON)
        qkv = w.op1("MatMul", [h, ln.w_qkv], hint=f"l{i}_qkv")
        att = w.op1(
            "RelativePositionAttention",
            [qkv, names.rel_bias],
            domain=DOMAIN,
            hint=f"l{i}_attn",
            num_heads=c.n_heads,
            num_buckets=c.num_buckets,
            max_distance=c.max_distance,
        )
        x = w.op1("Add", [x, w.op1("MatMul", [att, ln.w_out], hint=f"l{i}_wo")], hint=f"l{i}_res1")
        h = w.op1("RMSNorm", [x, ln.norm_3], domain=DOMAIN, hint=f"l{i}_norm3", epsilon=RMS_EPSILON)
        up = w.op1("MatMul", [h, ln.w_1], hint=f"l{i}_w1")
        a, b = w.op("Split", [up], 2, hint=f"l{i}_split", axis=-1, num_outputs=2)
        gated = w.op1("Mul", [a, w.op1("Gelu", [b], hint=f"l{i}_gelu", approximate="tanh")], hint=f"l{i}_geglu")
        x = w.op1("Add", [x, w.op1("MatMul", [gated, ln.w_2], hint=f"l{i}_w2")], hint=f"l{i}_out")
        activations.append(x)
    h = w.op1("RMSNorm", [x, names.final_norm], domain=DOMAIN, hint="final_norm", epsilon=RMS_EPSILON)
    flat = w.op1("Add", [w.op1("MatMul", [h, names.classifier_weight], hint="cls"), names.classifier_bias])
    shape = w.const_ints([0, 0, c.n_predict_codebooks, c.vocab_size], hint="cls_shape")
    btpv = w.op1("Reshape", [flat, shape], hint="cls_btpv")
    logits = w.op(
        "Transpose", [btpv], [logits_name] if logits_name else 1, hint="logits", perm=[0, 2, 1, 3]
    )[0]
    return ForwardOutputs(logits=logits, activations=tuple(activations))


def codes_input(config: VampNetConfig, name: str = "codes") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", config.n_codebooks, "time"])


def logits_output(config: VampNetConfig, name: str = "logits") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(
        name, TensorProto.FLOAT, ["batch", config.n_predict_codebooks, "time", config.vocab_size]
    )


def build_logits_model(
    config: VampNetConfig,
    names: TransformerNames,
    initializers: Sequence[TensorProto],
    metadata: Mapping[str, str],
    expose_activations: bool = False,
) -> onnx.ModelProto:
    """The logits graph: ``codes`` int64 [B, C, T] -> ``logits`` float [B, P, T, V].

    ``expose_activations`` (tests only) adds outputs ``activation_<i>`` [B, T, D], the residual stream after
    each layer.
    """
    w = NodeWriter("fwd")
    out = emit_forward(w, config, names, "codes", logits_name="logits")
    outputs = [logits_output(config)]
    if expose_activations:
        for i, act in enumerate(out.activations):
            w.op("Identity", [act], [f"activation_{i}"])
            outputs.append(
                helper.make_tensor_value_info(
                    f"activation_{i}", TensorProto.FLOAT, ["batch", "time", config.embedding_dim]
                )
            )
    graph = helper.make_graph(
        w.nodes, "vampnet_logits", [codes_input(config)], outputs, initializer=list(initializers)
    )
    return ops.make_model(graph, metadata)
