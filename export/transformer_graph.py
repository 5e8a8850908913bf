"""ONNX graph of the VampNet forward, built from the vampnet ops (no tracing).

    codes [B, C, T] --vampnet.CodebookEmbedding--> x [B, T, D]
    L x {  x += (vampnet.RelativePositionAttention(vampnet.RMSNorm(x, norm_1) @ W_qkv, rel_bias)) @ W_out
           x += GEGLU(vampnet.RMSNorm(x, norm_3) @ W_1) @ W_2          GEGLU([a | b]) = a * Gelu_tanh(b) }
                                      (Gelu_tanh as Mul/Add/Tanh that ORT's CPU EP fuses into FastGelu: emit_gelu_tanh)
    vampnet.RMSNorm(x, norm) @ W_cls + b_cls --Reshape--> [B, T, P, V] --Transpose--> logits [B, P, T, V]

The weights are stored once (``store_transformer_weights``) and referred to by name; ``emit_forward`` writes the
nodes into any ``NodeWriter``, so the same forward can sit in a top-level graph (the logits graph) or inside a
``Loop`` body that reads the weights as outer-scope initializers (the decode graph). B and T are dynamic.

FiLM is absent on purpose: it is the identity for every model this exporter accepts (r_cond_dim = 0, see
``VampNetConfig.from_kwargs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, helper

from vampnet_ort import ops
from vampnet_ort.ops import DOMAIN

from . import quantize as quantize_settings
from .quantize import (
    INT4_BLOCK_SIZE,
    W8_BLOCK_SIZE,
    PRECISION_NAMES,
    QuantizedLinear,
    check_precision,
    emit_linear,
    quantize_int4_blocks,
    quantize_int8_blocks,
    balance_input_rows,
    quantize_int8_columns,
    smooth_gain_into_weight,
)
from .graph_writer import NodeWriter
from .vampnet_weights import RMS_EPSILON, VampNetConfig, VampNetWeights
from .weight_store import WeightStore

# A linear's weight: the name of a float32 [K, N] initializer, or its quantized form.
Linear = Union[str, QuantizedLinear]


@dataclass(frozen=True)
class LayerNames:
    norm_1: str
    w_qkv: Linear
    w_out: Linear
    norm_3: str
    w_1: Linear
    w_2: Linear


@dataclass(frozen=True)
class TransformerNames:
    """Initializer names of one model's weights."""

    tables: str
    embedding_bias: str
    rel_bias: str
    layers: tuple[LayerNames, ...]
    final_norm: str
    classifier_weight: Linear
    classifier_bias: str
    quantize: str = "none"  # the --quantize value the linears were stored with

    @property
    def precision(self) -> str:
        """``float32``, ``int8``, ``int4`` or ``w8`` (what vampnet.json records for the graphs using these weights)."""
        return PRECISION_NAMES[self.quantize]


def store_linear(store: WeightStore, name: str, w: np.ndarray, quantize: str) -> Linear:
    """Store the [K, N] weight of ``x @ W`` as float32 (``none``) or quantized (``int8`` / ``int4`` / ``w8``)."""
    if quantize == "none":
        return store.add(name, w)
    k, n = w.shape
    if quantize == "int8":
        q, scale = quantize_int8_columns(w)
        return QuantizedLinear("int8", store.add(name + ".int8", q), store.add(name + ".scale", scale), k, n)
    if quantize == "w8":
        packed, scales = quantize_int8_blocks(w, W8_BLOCK_SIZE)
        return QuantizedLinear(
            "w8", store.add(name + ".w8", packed), store.add(name + ".scale", scales), k, n, W8_BLOCK_SIZE
        )
    packed, scales = quantize_int4_blocks(w, INT4_BLOCK_SIZE)
    return QuantizedLinear(
        "int4", store.add(name + ".int4", packed), store.add(name + ".scale", scales), k, n, INT4_BLOCK_SIZE
    )


def store_transformer_weights(
    weights: VampNetWeights, store: WeightStore, prefix: str = "", quantize: str = "none"
) -> TransformerNames:
    """Fold the checkpoint block by block into `store` (each block is released before the next is made).

    quantize: ``none`` (float32), ``int8`` or ``int4`` for the linears (QKV, attention output, both GEGLU
    matrices, the classifier); everything else stays float32 (docs/QUANTIZATION.md).
    """
    check_precision(quantize)
    tables, bias = weights.embedding()
    tables_name = store.add(f"{prefix}embedding.tables", tables)
    bias_name = store.add(f"{prefix}embedding.bias", bias)
    del tables, bias
    rel_name = store.add(f"{prefix}attention.rel_bias", weights.relative_bias())
    layers = []
    for i in range(weights.config.n_layers):
        lw = weights.layer(i)
        p = f"{prefix}layers.{i}."
        if quantize != "none":  # the same float function, easier to quantize (docs/QUANTIZATION.md, "Outliers")
            d = weights.config.embedding_dim
            lw.w_out, s_out = balance_input_rows(lw.w_out)
            lw.w_qkv[:, 2 * d :] /= s_out  # attention output channel j is linear in V's column j
            lw.w_2, s_2 = balance_input_rows(lw.w_2)
            lw.w_1[:, : 2 * d] /= s_2  # GEGLU a * gelu(b): channel j is linear in a's column j
            lw.norm_1, lw.w_qkv = smooth_gain_into_weight(lw.norm_1, lw.w_qkv)
            lw.norm_3, lw.w_1 = smooth_gain_into_weight(lw.norm_3, lw.w_1)
        layers.append(
            LayerNames(
                norm_1=store.add(p + "norm_1", lw.norm_1),
                w_qkv=store_linear(store, p + "w_qkv", lw.w_qkv, quantize),
                w_out=store_linear(store, p + "w_out", lw.w_out, quantize),
                norm_3=store.add(p + "norm_3", lw.norm_3),
                w_1=store_linear(store, p + "w_1", lw.w_1, quantize),
                w_2=store_linear(store, p + "w_2", lw.w_2, quantize),
            )
        )
        del lw
    final_norm = weights.final_norm()
    cls_w, cls_b = weights.classifier()
    if quantize != "none":
        final_norm, cls_w = smooth_gain_into_weight(final_norm, cls_w)
    norm_name = store.add(f"{prefix}final_norm", final_norm)
    cls_w_name = store_linear(store, f"{prefix}classifier.weight", cls_w, quantize)
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
        quantize=quantize,
    )


@dataclass(frozen=True)
class ForwardOutputs:
    logits: str  # [B, P, T, V]
    activations: tuple[str, ...]  # residual stream after each layer, [B, T, D]


def emit_forward(
    w: NodeWriter,
    config: VampNetConfig,
    names: TransformerNames,
    codes: str,
    logits_name: str | None = None,
    with_activations: bool = False,
) -> ForwardOutputs:
    """Write the forward pass codes [B, C, T] -> logits [B, P, T, V] into `w`.

    Float32 weights: one batched forward. Quantized weights: the forward runs once per batch item inside a
    ``Scan`` over B, because ORT quantizes a MatMul's activations with one scale per tensor: a batched GEMM
    would make item b depend on the other items (the decode graphs are batch-invariant, docs/SPEC.md section 5).
    ``activations`` (the residual stream after each layer) are returned for a quantized forward only with
    `with_activations` (they become extra Scan outputs).
    """
    if names.quantize == "none":
        return _emit_batched_forward(w, config, names, codes, logits_name)
    return _emit_per_item_forward(w, config, names, codes, logits_name, with_activations)


def _emit_per_item_forward(
    w: NodeWriter,
    config: VampNetConfig,
    names: TransformerNames,
    codes: str,
    logits_name: str | None,
    with_activations: bool,
) -> ForwardOutputs:
    c = config
    body = NodeWriter(f"{w.scope}/item")
    item = body.fresh("codes_item")  # [C, T]
    batched = body.op1("Unsqueeze", [item, body.const_ints([0])], hint="codes_1ct")
    out = _emit_batched_forward(body, config, names, batched)
    item_outputs = [body.op1("Squeeze", [out.logits, body.const_ints([0])], hint="logits_ptv")]
    if with_activations:
        item_outputs += [body.op1("Squeeze", [a, body.const_ints([0])], hint="act_td") for a in out.activations]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        body.nodes,
        "forward_item",
        [helper.make_tensor_value_info(item, TensorProto.INT64, [c.n_codebooks, "time"])],
        [helper.make_tensor_value_info(item_outputs[0], f, [c.n_predict_codebooks, "time", c.vocab_size])]
        + [helper.make_tensor_value_info(a, f, ["time", c.embedding_dim]) for a in item_outputs[1:]],
    )
    n_out = len(item_outputs)
    outputs = [logits_name or w.fresh("logits")] + [w.fresh("activation") for _ in range(n_out - 1)]
    w.op("Scan", [codes], outputs, hint="per_item_forward", body=graph, num_scan_inputs=1)
    return ForwardOutputs(logits=outputs[0], activations=tuple(outputs[1:]))


def attention_op(w_qkv: Linear) -> str:
    """int8 bundles run QK^T and PV in int8 too (vampnet.RelativePositionAttentionInt8, docs/ATTENTION.md)."""
    int8 = quantize_settings.ATTENTION_INT8 and isinstance(w_qkv, QuantizedLinear) and w_qkv.precision == "int8"
    return "RelativePositionAttentionInt8" if int8 else "RelativePositionAttention"


def _emit_batched_forward(
    w: NodeWriter, config: VampNetConfig, names: TransformerNames, codes: str, logits_name: str | None = None
) -> ForwardOutputs:
    c = config
    x = w.op1("CodebookEmbedding", [codes, names.tables, names.embedding_bias], domain=DOMAIN, hint="embed")
    activations = []
    for i, ln in enumerate(names.layers):
        h = w.op1("RMSNorm", [x, ln.norm_1], domain=DOMAIN, hint=f"l{i}_norm1", epsilon=RMS_EPSILON)
        qkv = emit_linear(w, h, ln.w_qkv, hint=f"l{i}_qkv")
        att = w.op1(
            attention_op(ln.w_qkv),
            [qkv, names.rel_bias],
            domain=DOMAIN,
            hint=f"l{i}_attn",
            num_heads=c.n_heads,
            num_buckets=c.num_buckets,
            max_distance=c.max_distance,
        )
        x = w.op1("Add", [x, emit_linear(w, att, ln.w_out, hint=f"l{i}_wo")], hint=f"l{i}_res1")
        h = w.op1("RMSNorm", [x, ln.norm_3], domain=DOMAIN, hint=f"l{i}_norm3", epsilon=RMS_EPSILON)
        up = emit_linear(w, h, ln.w_1, hint=f"l{i}_w1")
        # axis 2 (of [B, T, 2F]), not -1: onnxruntime-web's JSEP WebGPU Split(axis=-1, num_outputs=2) returns empty
        # outputs (docs/WEB.md, "WebGPU").
        a, b = w.op("Split", [up], 2, hint=f"l{i}_split", axis=2, num_outputs=2)
        gated = w.op1("Mul", [a, emit_gelu_tanh(w, b, hint=f"l{i}_gelu")], hint=f"l{i}_geglu")
        x = w.op1("Add", [x, emit_linear(w, gated, ln.w_2, hint=f"l{i}_w2")], hint=f"l{i}_out")
        activations.append(x)
    h = w.op1("RMSNorm", [x, names.final_norm], domain=DOMAIN, hint="final_norm", epsilon=RMS_EPSILON)
    flat = emit_linear(w, h, names.classifier_weight, names.classifier_bias, hint="cls")
    shape = w.const_ints([0, 0, c.n_predict_codebooks, c.vocab_size], hint="cls_shape")
    btpv = w.op1("Reshape", [flat, shape], hint="cls_btpv")
    logits = w.op(
        "Transpose", [btpv], [logits_name] if logits_name else 1, hint="logits", perm=[0, 2, 1, 3]
    )[0]
    return ForwardOutputs(logits=logits, activations=tuple(activations))


# Gelu_tanh(b) = 0.5 b (1 + tanh(sqrt(2 / pi) (b + 0.044715 b^3))), float32 constants as upstream's torch op uses
# (and as ORT's FastGeluFusion matches them: 0.7978845834732056f, 0.044715f).
GELU_TANH_SCALE = float(np.float32(np.sqrt(2.0 / np.pi)))
GELU_TANH_CUBIC = float(np.float32(0.044715))


def emit_gelu_tanh(w: NodeWriter, x: str, *, hint: str) -> str:
    """``Gelu(x, approximate="tanh")`` written as plain Mul / Add / Tanh, in the form
    ``(0.5 x) (1 + tanh((s x) (1 + c x x)))`` that ONNX Runtime's ``FastGeluFusion`` recognises: on the CPU EP
    (native and wasm) the eight nodes become one ``com.microsoft.FastGelu`` at session load, while WebGPU EPs,
    which do not fuse, run the arithmetic. The ``Gelu`` node itself is not used: onnxruntime-web's JSEP WebGPU
    ``Gelu`` ignores ``approximate`` and computes the exact Gelu (4.7e-4 off)."""
    cx2 = w.op1("Mul", [w.op1("Mul", [x, w.const_float(GELU_TANH_CUBIC)], hint=hint + "_cx"), x], hint=hint + "_cx2")
    poly = w.op1("Add", [cx2, w.const_float(1.0)], hint=hint + "_poly")
    sx = w.op1("Mul", [x, w.const_float(GELU_TANH_SCALE)], hint=hint + "_sx")
    scaled = w.op1("Mul", [poly, sx], hint=hint + "_scaled")
    t = w.op1("Tanh", [scaled], hint=hint + "_tanh")
    half_x = w.op1("Mul", [x, w.const_float(0.5)], hint=hint + "_half")
    return w.op1("Mul", [half_x, w.op1("Add", [t, w.const_float(1.0)], hint=hint + "_1t")], hint=hint)


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
    out = emit_forward(w, config, names, "codes", logits_name="logits", with_activations=expose_activations)
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
