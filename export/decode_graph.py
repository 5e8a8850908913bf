"""The decode graph (``coarse.onnx`` / ``c2f.onnx``): VampNet's whole iterative decode in one ONNX ``Loop``.

Inputs/outputs are docs/SPEC.md section 5 exactly::

    codes int64 [B, C, T], mask int64 [B, C, T] (1 = regenerate), seed int64 [], num_steps int64 [],
    temperature float [], mask_temperature float [], top_p float [], typical_mass float [],
    typical_min_tokens int64 [], sample_cutoff float []  ->  codes_out int64 [B, C, T]

Graph::

    (check: shape(mask) == shape(codes), else the node "check_mask_shape_equals_codes_shape" fails)
    z_masked = Where(mask != 0, MASK, codes)            (conditioning codebooks too, when the mask covers them;
                                                         any nonzero mask value means "regenerate")
    n0[b]    = number of MASK tokens in z_masked[b]     (per item: an item never depends on the batch)
    Loop step = 0 .. num_steps - 1, carrying (current, sampled):
        logits           = forward(current)                               [B, P, T, V]
        uniforms         = vampnet.PhiloxUniform(seed, step, (B, P, T))   [2, B, P, T]
        current, sampled = vampnet.SampleAndRemask(logits, current, codes, n0, step, num_steps, uniforms,
                                                   temperature, mask_temperature, top_p, top_k = 0,
                                                   typical_mass, typical_min_tokens, sample_cutoff)
    codes_out = sampled of the last step (conditioning codebooks restored from `codes` by SampleAndRemask)

The forward inside the body reads the weights as outer-scope initializers of the main graph (one copy, shared by
every iteration). With ``num_steps = 0`` the loop does not run and ``codes_out = codes``.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from vampnet_ort import ops
from vampnet_ort.ops import DOMAIN

from .graph_writer import NodeWriter
from .transformer_graph import TransformerNames, codes_input, emit_forward
from .vampnet_export import StoredStage
from .vampnet_weights import VampNetConfig

SCALAR_FLOAT_INPUTS = ("temperature", "mask_temperature", "top_p", "typical_mass", "sample_cutoff")


def decode_inputs(config: VampNetConfig) -> list[onnx.ValueInfoProto]:
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    # seed is declared [] (docs/SPEC.md section 5): onnx.checker requires every graph input to declare its rank, so
    # one input cannot accept both [] and [B]. Item b is keyed by seed + b (PhiloxUniform), so an item's draws do
    # not depend on the rest of the batch: item b of a batch with seed s == the item alone with seed s + b.
    seed = helper.make_tensor_value_info("seed", i64, [])
    return [
        codes_input(config),
        helper.make_tensor_value_info("mask", i64, ["batch", config.n_codebooks, "time"]),
        seed,
        helper.make_tensor_value_info("num_steps", i64, []),
        helper.make_tensor_value_info("temperature", f, []),
        helper.make_tensor_value_info("mask_temperature", f, []),
        helper.make_tensor_value_info("top_p", f, []),
        helper.make_tensor_value_info("typical_mass", f, []),
        helper.make_tensor_value_info("typical_min_tokens", i64, []),
        helper.make_tensor_value_info("sample_cutoff", f, []),
    ]


def _loop_body(config: VampNetConfig, names: TransformerNames, shape_bpt: str, n0: str, top_k: str) -> onnx.GraphProto:
    """Body (step, cond, current, sampled) -> (cond, next, sampled); outer-scope: weights, inputs, n0, shape."""
    i64 = TensorProto.INT64
    code_dims = ["batch", config.n_codebooks, "time"]
    w = NodeWriter("step")
    logits = emit_forward(w, config, names, "step/current").logits
    uniforms = w.op1("PhiloxUniform", ["seed", "step/index", shape_bpt], domain=DOMAIN, hint="uniforms")
    w.op(
        "SampleAndRemask",
        [logits, "step/current", "codes", n0, "step/index", "num_steps", uniforms, "temperature",
         "mask_temperature", "top_p", top_k, "typical_mass", "typical_min_tokens", "sample_cutoff"],
        ["step/next", "step/sampled"],
        domain=DOMAIN,
        hint="sample",
    )
    w.op("Identity", ["step/cond_in"], ["step/cond_out"])
    return helper.make_graph(
        w.nodes,
        "decode_step",
        [
            helper.make_tensor_value_info("step/index", i64, []),
            helper.make_tensor_value_info("step/cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("step/current", i64, code_dims),
            helper.make_tensor_value_info("step/sampled_in", i64, code_dims),
        ],
        [
            helper.make_tensor_value_info("step/cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("step/next", i64, code_dims),
            helper.make_tensor_value_info("step/sampled", i64, code_dims),
        ],
    )


def build_decode_model(
    config: VampNetConfig,
    names: TransformerNames,
    initializers: list[TensorProto],
    metadata: dict[str, str],
) -> onnx.ModelProto:
    c = config
    w = NodeWriter("decode")
    code_shape = w.op1("Shape", ["codes"])
    # `mask` must have the shape of `codes` exactly (Where would broadcast a [1, C, T] or [B, C, 1] mask silently).
    # ONNX has no assert op: a 1-element tensor reshaped to [shapes_equal] fails (shape [0]) when the shapes
    # differ, in a node whose name says why; its output (the 1) feeds the graph so the check is never pruned.
    shapes_equal = w.op1(
        "ReduceMin",
        [w.op1("Cast", [w.op1("Equal", [w.op1("Shape", ["mask"]), code_shape])], to=TensorProto.INT64)],
        keepdims=1,
    )
    one = w.op1(
        "Reshape", [w.const_ints([1]), shapes_equal], allowzero=1, hint="check_mask_shape_equals_codes_shape"
    )  # [1] = (1,) or error
    is_masked = w.op1("Cast", ["mask"], to=TensorProto.BOOL, hint="is_masked")  # any nonzero value = regenerate
    mask_token = w.const_int(c.mask_token, hint="mask_token")
    checked_mask_token = w.op1("Mul", [mask_token, one], hint="checked_mask_token")  # [1], value MASK
    z_masked = w.op1("Where", [is_masked, checked_mask_token, "codes"], hint="z_masked")
    mask_count = w.op1("Cast", [w.op1("Equal", [z_masked, mask_token])], to=TensorProto.INT64)
    n0 = w.op1("ReduceSum", [mask_count, w.const_ints([1, 2])], keepdims=0, hint="n0")  # [B]
    batch = w.op1("Slice", [code_shape, w.const_ints([0]), w.const_ints([1])])
    time = w.op1("Slice", [code_shape, w.const_ints([2]), w.const_ints([3])])
    shape_bpt = w.op1(
        "Concat", [batch, w.const_ints([c.n_predict_codebooks]), time], axis=0, hint="uniform_shape"
    )
    top_k = w.const_int(0, hint="top_k_off")
    keep_going = w.op1("Constant", [], value=helper.make_tensor("true", TensorProto.BOOL, [], [True]))
    body = _loop_body(c, names, shape_bpt, n0, top_k)
    w.op("Loop", ["num_steps", keep_going, z_masked, "codes"], ["decode/final_next", "codes_out"], body=body)
    graph = helper.make_graph(
        w.nodes,
        "vampnet_decode",
        decode_inputs(c),
        [helper.make_tensor_value_info("codes_out", TensorProto.INT64, ["batch", c.n_codebooks, "time"])],
        initializer=list(initializers),
    )
    return ops.make_model(graph, metadata)


def decode_graph(stage: StoredStage) -> onnx.ModelProto:
    return build_decode_model(stage.config, stage.names, stage.store.initializers, stage.metadata("decode"))
