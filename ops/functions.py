"""Every reference function of the vampnet domain, in one list (imported by the package and by ``_model``)."""

from __future__ import annotations

from .codebook_embedding import CodebookEmbedding
from .dynamic_quantize_im2col import DynamicQuantizeIm2Col
from .film import FiLM
from .philox_uniform import PhiloxRound, PhiloxUniform
from .relative_position_attention import RelativePositionAttention, RelativePositionBias
from .relative_position_attention_int8 import RelativePositionAttentionInt8
from .rms_norm import RMSNorm
from .sample_and_remask import (
    FusedMultiplyAdd, SampleAndRemask, ScheduleGamma, TopPFilter, TypicalFilter, WithinSampleCutoff,
)
from .snake import Snake

# Every reference function: one per entry of contract.CONTRACTS (tests/test_contract.py checks it, and checks the
# native op list of ops/cpp/op_list.h too).
ALL_FUNCTIONS = [RMSNorm, FiLM, CodebookEmbedding, RelativePositionAttention, RelativePositionAttentionInt8,
                 PhiloxUniform, SampleAndRemask, Snake, DynamicQuantizeIm2Col]
# Functions that reference functions call (no native kernel of their own; carried along when a caller is used).
HELPER_FUNCTIONS = [PhiloxRound, FusedMultiplyAdd, ScheduleGamma, WithinSampleCutoff, TypicalFilter, TopPFilter,
                    RelativePositionBias]
