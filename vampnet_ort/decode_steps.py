"""A decode graph that runs a window of its steps, so a caller can report progress per step (the browser app).

The bundle's ``coarse.onnx`` / ``c2f.onnx`` run a whole iterative decode in one ``Loop`` (docs/SPEC.md section 5). One
step depends only on (current codes, step, num_steps, seed, n0, the conditioning codes), so the same decode can run
as consecutive windows of steps. ``step_window_model`` derives that form from a decode graph (the graph file only;
the weights stay in the bundle's external data, referenced by the same location). It adds three inputs and one
output, everything else unchanged:

    first_step int64 []   the first step of the window (the body's step = loop index + first_step)
    step_count int64 []   steps to run (the Loop's trip count; num_steps stays the schedule's total)
    n0 int64 [B]          MASK count of the masked input of step 0 (z_masked = Where(mask != 0, MASK, codes)),
                          which later windows cannot recount
    next_out int64 [B, C, T]   the codes after the window's last step (MASK at re-masked positions)

Window 0 feeds the chunk's codes and mask; window k > 0 feeds the previous window's ``next_out`` as ``codes`` and an
all-zero mask. ``codes_out`` of the window that ends at num_steps - 1 equals the one-run result token for token
(tests/test_decode_steps.py).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

STEP_INPUTS = ("first_step", "step_count", "n0")
NEXT_OUTPUT = "next_out"


class StepWindowError(ValueError):
    """The graph is not a vampnet-ort decode graph this module knows how to window."""


def _decode_loop(graph: onnx.GraphProto) -> onnx.NodeProto:
    loops = [n for n in graph.node if n.op_type == "Loop"]
    if len(loops) != 1 or len(loops[0].input) != 4 or loops[0].input[0] != "num_steps":
        raise StepWindowError("not a decode graph: expected one Loop over num_steps carrying (current, sampled)")
    return loops[0]


def step_window_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The windowed form of decode model `model` (loaded without its external data); `model` is not changed."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if {i.name for i in graph.input} & set(STEP_INPUTS):
        raise StepWindowError("the graph already has step-window inputs")
    loop = _decode_loop(graph)
    body = next(a.g for a in loop.attribute if a.name == "body")
    index_name = body.input[0].name
    samplers = [n for n in body.node if n.op_type == "SampleAndRemask"]
    uniforms = [n for n in body.node if n.op_type == "PhiloxUniform"]
    if len(samplers) != 1 or len(uniforms) != 1:
        raise StepWindowError("not a decode graph: the Loop body needs one PhiloxUniform and one SampleAndRemask")
    absolute = f"{index_name}_plus_first_step"
    for node in (samplers[0], uniforms[0]):
        for i, name in enumerate(node.input):
            if name == index_name:
                node.input[i] = absolute
    samplers[0].input[3] = "n0"  # the outer n0 (recounted from z_masked) is replaced by the input
    body.node.insert(0, helper.make_node("Add", [index_name, "first_step"], [absolute], name="window_step"))
    loop.input[0] = "step_count"
    graph.input.extend([
        helper.make_tensor_value_info("first_step", TensorProto.INT64, []),
        helper.make_tensor_value_info("step_count", TensorProto.INT64, []),
        helper.make_tensor_value_info("n0", TensorProto.INT64, ["batch"]),
    ])
    codes_out = next(o for o in graph.output if o.name == "codes_out")
    graph.output.append(helper.make_tensor_value_info(NEXT_OUTPUT, TensorProto.INT64, [
        d.dim_param or d.dim_value for d in codes_out.type.tensor_type.shape.dim]))
    graph.node.append(helper.make_node("Identity", [loop.output[0]], [NEXT_OUTPUT], name="window_next"))
    # nodes that only fed the replaced n0 stay: ORT drops what no output needs
    return out


__all__ = ["NEXT_OUTPUT", "STEP_INPUTS", "StepWindowError", "step_window_model"]
