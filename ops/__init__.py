"""onnxscript reference functions of every vampnet op (installed as ``vampnet_ort.ops``).

Each function has the domain and name of its native kernel. Exported models carry them as model-local
functions: with the op library registered ONNX Runtime runs the kernel, without it ORT inlines the function.
"""

from __future__ import annotations

from ._model import function_protos, make_model, opset_imports, single_op_model, used_functions
from ._opset import DOMAIN, DOMAIN_VERSION, IR_VERSION, ONNX_OPSET
from .contract import BY_NAME as CONTRACTS_BY_NAME
from .contract import CONTRACTS, OpContract
from .functions import (
    ALL_FUNCTIONS, HELPER_FUNCTIONS, CodebookEmbedding, DynamicQuantizeIm2Col, FiLM, FusedMultiplyAdd, PhiloxRound,
    PhiloxUniform,
    RelativePositionAttention, RelativePositionAttentionInt8, RMSNorm, SampleAndRemask, ScheduleGamma, Snake,
    TopPFilter, TypicalFilter, WithinSampleCutoff,
)

__all__ = [
    "ALL_FUNCTIONS",
    "CONTRACTS",
    "CONTRACTS_BY_NAME",
    "OpContract",
    "HELPER_FUNCTIONS",
    "DOMAIN",
    "DOMAIN_VERSION",
    "IR_VERSION",
    "ONNX_OPSET",
    "Snake",
    "CodebookEmbedding",
    "DynamicQuantizeIm2Col",
    "FiLM",
    "PhiloxUniform",
    "RMSNorm",
    "SampleAndRemask",
    "RelativePositionAttention",
    "RelativePositionAttentionInt8",
    "function_protos",
    "make_model",
    "opset_imports",
    "single_op_model",
    "used_functions",
]
