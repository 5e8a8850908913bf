"""A host-driven decode loop (tests and benchmarks only): the logits graph + one small "step" graph per step.

It runs exactly the algorithm of the decode graph (``decode_graph.py``), but with the ``Loop`` unrolled in Python:
per step, one ``session.run`` of the logits graph and one of a graph holding ``vampnet.PhiloxUniform`` +
``vampnet.SampleAndRemask``. Deployments should use the decode graph (one ``session.run``, no Python); this is the
baseline the Loop graph is compared with, and a second, independent path for the tests.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

import vampnet_ort
from vampnet_ort import ops
from vampnet_ort.export.vampnet_weights import VampNetConfig


def step_model(n_predict_codebooks: int) -> onnx.ModelProto:
    """(logits, current, start_codes, n0, step, num_steps, seed, settings...) -> (next_codes, sampled)."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    scalar = {"step": i64, "num_steps": i64, "temperature": f, "mask_temperature": f, "top_p": f, "top_k": i64,
              "typical_mass": f, "typical_min_tokens": i64, "sample_cutoff": f}
    nodes = [
        helper.make_node("Shape", ["current"], ["code_shape"]),
        helper.make_node("Constant", [], ["p"], value=helper.make_tensor("p_v", i64, [1], [n_predict_codebooks])),
        helper.make_node("Constant", [], ["s0"], value=helper.make_tensor("s0_v", i64, [1], [0])),
        helper.make_node("Constant", [], ["s1"], value=helper.make_tensor("s1_v", i64, [1], [1])),
        helper.make_node("Constant", [], ["s2"], value=helper.make_tensor("s2_v", i64, [1], [2])),
        helper.make_node("Constant", [], ["s3"], value=helper.make_tensor("s3_v", i64, [1], [3])),
        helper.make_node("Slice", ["code_shape", "s0", "s1"], ["b"]),
        helper.make_node("Slice", ["code_shape", "s2", "s3"], ["t"]),
        helper.make_node("Concat", ["b", "p", "t"], ["bpt"], axis=0),
        helper.make_node("PhiloxUniform", ["seed", "step", "bpt"], ["uniforms"], domain=ops.DOMAIN),
        helper.make_node(
            "SampleAndRemask",
            ["logits", "current", "start_codes", "n0", "step", "num_steps", "uniforms", "temperature",
             "mask_temperature", "top_p", "top_k", "typical_mass", "typical_min_tokens", "sample_cutoff"],
            ["next_codes", "sampled"],
            domain=ops.DOMAIN,
        ),
    ]
    inputs = [
        helper.make_tensor_value_info("logits", f, ["B", "P", "T", "V"]),
        helper.make_tensor_value_info("current", i64, ["B", "C", "T"]),
        helper.make_tensor_value_info("start_codes", i64, ["B", "C", "T"]),
        helper.make_tensor_value_info("n0", i64, ["B"]),
        helper.make_tensor_value_info("seed", i64, None),
    ] + [helper.make_tensor_value_info(name, dtype, []) for name, dtype in scalar.items()]
    outputs = [helper.make_tensor_value_info(n, i64, ["B", "C", "T"]) for n in ("next_codes", "sampled")]
    return ops.make_model(helper.make_graph(nodes, "decode_step", inputs, outputs))


def read_config(model_path: str | os.PathLike) -> VampNetConfig:
    model = onnx.load(os.fspath(model_path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    return VampNetConfig(**json.loads(meta["vampnet_ort.model_config"]))


class HostDecoder:
    """Decode with the logits graph, looping on the host."""

    def __init__(
        self, logits_model: str | os.PathLike, *, with_library: bool = True, intra_op_threads: int | None = None
    ) -> None:
        self.config = read_config(logits_model)
        kwargs: dict[str, Any] = {"with_library": with_library, "intra_op_threads": intra_op_threads}
        self.logits = vampnet_ort.create_session(os.fspath(logits_model), **kwargs)
        self.step = vampnet_ort.create_session(step_model(self.config.n_predict_codebooks).SerializeToString(),
                                               **kwargs)

    def decode(
        self,
        codes: np.ndarray,
        mask: np.ndarray,
        *,
        seed: int | np.ndarray = 0,
        num_steps: int = 12,
        temperature: float = 1.0,
        mask_temperature: float = 10.5,
        top_p: float = 0.0,
        typical_mass: float = 0.0,
        typical_min_tokens: int = 64,
        sample_cutoff: float = 1.0,
    ) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        current = np.where(np.asarray(mask) != 0, self.config.mask_token, codes)
        n0 = (current == self.config.mask_token).sum(axis=(1, 2)).astype(np.int64)
        sampled = codes
        f32 = np.float32
        settings = {
            "seed": np.asarray(seed, dtype=np.int64),
            "num_steps": np.asarray(num_steps, dtype=np.int64),
            "temperature": np.asarray(temperature, f32),
            "mask_temperature": np.asarray(mask_temperature, f32),
            "top_p": np.asarray(top_p, f32),
            "top_k": np.asarray(0, np.int64),
            "typical_mass": np.asarray(typical_mass, f32),
            "typical_min_tokens": np.asarray(typical_min_tokens, np.int64),
            "sample_cutoff": np.asarray(sample_cutoff, f32),
        }
        for step in range(num_steps):
            (logits,) = self.logits.run(None, {"codes": current})
            current, sampled = self.step.run(
                None,
                {"logits": logits, "current": current, "start_codes": codes, "n0": n0,
                 "step": np.asarray(step, dtype=np.int64), **settings},
            )
        return sampled
