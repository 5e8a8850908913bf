"""onnxscript reference functions of every vampnet op (installed as ``vampnet_ort.ops``).

Each function has the domain and name of its native kernel. Exported models carry them as model-local
functions: with the op library registered ONNX Runtime runs the kernel, without it ORT inlines the function.
"""

from __future__ import annotations

from ._model import function_protos, make_model, opset_imports, single_op_model, used_functions
from ._opset import DOMAIN, DOMAIN_VERSION, IR_VERSION, ONNX_OPSET
from .codebook_embedding import CodebookEmbedding
from .contract import BY_NAME as CONTRACTS_BY_NAME
from .contract import CONTRACTS, OpContract
from .film import FiLM
from .philox_uniform import PhiloxRound, PhiloxUniform
from .relative_position_attention import RelativePositionAttention
from .relative_position_attention_int8 import RelativePositionAttentionInt8
from .rms_norm import RMSNorm
from .sample_and_remask import (
    FusedMultiplyAdd, SampleAndRemask, ScheduleGamma, TopPFilter, TypicalFilter, WithinSampleCutoff,
)
from .snake import Snake

# Every reference function: one per entry of contract.CONTRACTS (tests/test_contract.py checks it, and checks the
# native op list of ops/cpp/op_list.h too).
ALL_FUNCTIONS = [RMSNorm, FiLM, CodebookEmbedding, RelativePositionAttention, RelativePositionAttentionInt8,
                 PhiloxUniform, SampleAndRemask, Snake]
# Functions that reference functions call (no native kernel of their own; carried along when a caller is used).
HELPER_FUNCTIONS = [PhiloxRound, FusedMultiplyAdd, ScheduleGamma, WithinSampleCutoff, TypicalFilter, TopPFilter]

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
