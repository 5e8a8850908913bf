"""The contract of every vampnet op, stated once: name, inputs, outputs, attributes and their defaults.

Everything else is derived from this table or tested against it:

- the C++ side: CMake runs ``python ops/contract.py --cpp-header <build>/op_contract.h`` at build time; each kernel's
  ORT declaration (name, input/output types, input names in error messages, attribute defaults) and the pybind11
  defaults come from that generated header (``vampnet::contract::<Op>``);
- the onnxscript reference functions take their attribute defaults from here;
- the exporters pass the attribute values named here;
- tests/test_contract.py checks that the native op list, the reference functions (names, inputs, attributes and
  defaults), ``ALL_FUNCTIONS`` and the README's op table all agree with this table.

This module has no dependencies (the build runs it with any Python 3.8+ before anything is installed).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

# ONNX TensorProto element types (the same numbers as ONNXTensorElementDataType in ORT's C API).
FLOAT = "float"
UINT8 = "uint8"
INT64 = "int64"
ELEMENT_TYPES = {FLOAT: 1, UINT8: 2, INT64: 7}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # FLOAT, UINT8 or INT64
    shape: str  # documentation only, e.g. "[B, T, D]"


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str  # "int" or "float"
    default: Optional[Union[int, float]]  # None: required


@dataclass(frozen=True)
class OpContract:
    name: str
    inputs: Tuple[Tensor, ...]
    outputs: Tuple[Tensor, ...]
    attributes: Tuple[Attribute, ...] = ()

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(f"{self.name} has no attribute {name!r}")

    def default(self, name: str) -> Union[int, float]:
        value = self.attribute(name).default
        if value is None:
            raise KeyError(f"attribute {name!r} of {self.name} is required (it has no default)")
        return value


RMS_NORM = OpContract(
    "RMSNorm",
    inputs=(Tensor("X", FLOAT, "[..., D]"), Tensor("scale", FLOAT, "[D]")),
    outputs=(Tensor("Y", FLOAT, "[..., D]"),),
    attributes=(Attribute("epsilon", "float", 1e-6),),
)
FILM = OpContract(
    "FiLM",
    inputs=(Tensor("X", FLOAT, "[B, T, D]"), Tensor("gamma", FLOAT, "[B or 1, D]"),
            Tensor("beta", FLOAT, "[B or 1, D]")),
    outputs=(Tensor("Y", FLOAT, "[B, T, D]"),),
)
CODEBOOK_EMBEDDING = OpContract(
    "CodebookEmbedding",
    inputs=(Tensor("codes", INT64, "[B, C, T]"), Tensor("tables", FLOAT, "[C, V + 1, D]"),
            Tensor("bias", FLOAT, "[D]")),
    outputs=(Tensor("Y", FLOAT, "[B, T, D]"),),
)
RELATIVE_POSITION_ATTENTION = OpContract(
    "RelativePositionAttention",
    inputs=(Tensor("qkv", FLOAT, "[B, T, 3D]"), Tensor("rel_bias", FLOAT, "[num_buckets, H]")),
    outputs=(Tensor("out", FLOAT, "[B, T, D]"),),
    attributes=(Attribute("num_heads", "int", None), Attribute("num_buckets", "int", 32),
                Attribute("max_distance", "int", 128)),
)
# The same contract with int8 QK^T and PV inside (ops/relative_position_attention_int8.py; quantized bundles).
RELATIVE_POSITION_ATTENTION_INT8 = OpContract(
    "RelativePositionAttentionInt8",
    inputs=RELATIVE_POSITION_ATTENTION.inputs,
    outputs=RELATIVE_POSITION_ATTENTION.outputs,
    attributes=RELATIVE_POSITION_ATTENTION.attributes,
)
PHILOX_UNIFORM = OpContract(
    "PhiloxUniform",
    inputs=(Tensor("seed", INT64, "[] or [B]"), Tensor("step", INT64, "[]"), Tensor("shape", INT64, "[3]")),
    outputs=(Tensor("uniforms", FLOAT, "[2, B, P, T]"),),
)
SAMPLE_AND_REMASK = OpContract(
    "SampleAndRemask",
    inputs=(
        Tensor("logits", FLOAT, "[B, P, T, V]"),
        Tensor("codes", INT64, "[B, C, T]"),
        Tensor("start_codes", INT64, "[B, C, T]"),
        Tensor("n0", INT64, "[B]"),
        Tensor("step", INT64, "[]"),
        Tensor("num_steps", INT64, "[]"),
        Tensor("uniforms", FLOAT, "[2, B, P, T]"),
        Tensor("temperature", FLOAT, "[]"),
        Tensor("mask_temperature", FLOAT, "[]"),
        Tensor("top_p", FLOAT, "[]"),
        Tensor("top_k", INT64, "[]"),
        Tensor("typical_mass", FLOAT, "[]"),
        Tensor("typical_min_tokens", INT64, "[]"),
        Tensor("sample_cutoff", FLOAT, "[]"),
    ),
    outputs=(Tensor("next_codes", INT64, "[B, C, T]"), Tensor("sampled", INT64, "[B, C, T]")),
)
# channels_last=1: X [B, L, C] and alpha [1, 1, C] or [C] (the int8 codec decoder's channels-last levels).
SNAKE = OpContract(
    "Snake",
    inputs=(Tensor("X", FLOAT, "[B, C, L]"), Tensor("alpha", FLOAT, "[1, C, 1] or [C]")),
    outputs=(Tensor("Y", FLOAT, "[B, C, L]"),),
    attributes=(Attribute("channels_last", "int", 0),),
)
# DynamicQuantizeLinear of channels-last X (ONNX's definition, ORT's rounding) fused with a 1-D conv's im2col:
# Y[b, t, j*C + c] = quantized X[b, t + j*dilation - padding, c] (the zero point outside [0, L)),
# L_out = L + 2*padding - dilation*(kernel_size - 1) >= 1; the int8 codec decoder feeds Y to MatMulInteger
# (ops/dynamic_quantize_im2col.py, docs/QUANTIZATION.md "Codec").
DYNAMIC_QUANTIZE_IM2COL = OpContract(
    "DynamicQuantizeIm2Col",
    inputs=(Tensor("X", FLOAT, "[B, L, C]"),),
    outputs=(Tensor("Y", UINT8, "[B, L_out, kernel_size * C]"),
             Tensor("Y_scale", FLOAT, "[]"), Tensor("Y_zero_point", UINT8, "[]")),
    attributes=(Attribute("kernel_size", "int", 1), Attribute("dilation", "int", 1), Attribute("padding", "int", 0)),
)

# Every vampnet op, in registration order.
CONTRACTS: Tuple[OpContract, ...] = (
    SNAKE, RMS_NORM, FILM, CODEBOOK_EMBEDDING, PHILOX_UNIFORM, SAMPLE_AND_REMASK, RELATIVE_POSITION_ATTENTION,
    RELATIVE_POSITION_ATTENTION_INT8, DYNAMIC_QUANTIZE_IM2COL,
)
BY_NAME: Dict[str, OpContract] = {c.name: c for c in CONTRACTS}


# ---- the generated C++ header --------------------------------------------------------------------------------------


def _cpp_literal(attribute: Attribute) -> str:
    if attribute.kind == "float":
        return f"{float(attribute.default)!r}f"
    return f"int64_t{{{int(attribute.default)}}}"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def cpp_header() -> str:
    """The C++ header every kernel includes (vampnet::contract::<Op>)."""
    lines = [
        "// Generated from ops/contract.py at build time (python ops/contract.py --cpp-header PATH). Do not edit.",
        "#pragma once",
        "",
        "#include <array>",
        "#include <cstdint>",
        "",
        "namespace vampnet {",
        "namespace contract {",
        "",
        "// ONNX element types (TensorProto numbering, as ORT's ONNXTensorElementDataType).",
        *(f"constexpr int k{_camel(name)} = {code};" for name, code in ELEMENT_TYPES.items()),
        "",
    ]
    for c in CONTRACTS:
        n_in, n_out = len(c.inputs), len(c.outputs)
        lines += [
            f"struct {c.name} {{",
            f'  static constexpr const char* kName = "{c.name}";',
            f"  static constexpr std::array<const char*, {n_in}> kInputNames{{"
            + ", ".join(f'"{t.name}"' for t in c.inputs) + "};",
            f"  static constexpr std::array<int, {n_in}> kInputTypes{{"
            + ", ".join(f"k{_camel(t.dtype)}" for t in c.inputs) + "};",
            f"  static constexpr std::array<const char*, {n_out}> kOutputNames{{"
            + ", ".join(f'"{t.name}"' for t in c.outputs) + "};",
            f"  static constexpr std::array<int, {n_out}> kOutputTypes{{"
            + ", ".join(f"k{_camel(t.dtype)}" for t in c.outputs) + "};",
        ]
        for a in c.attributes:
            if a.default is None:
                lines.append(f"  // attribute '{a.name}' ({a.kind}) is required")
            else:
                ctype = "float" if a.kind == "float" else "int64_t"
                lines.append(f"  static constexpr {ctype} k{_camel(a.name)} = {_cpp_literal(a)};  "
                             f"// default of attribute '{a.name}'")
        lines += ["};", ""]
    lines += ["}  // namespace contract", "}  // namespace vampnet", ""]
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp-header", type=Path, required=True, help="write the generated C++ header here")
    args = parser.parse_args(argv)
    text = cpp_header()
    # Rewrite only on change, so an unchanged contract never triggers a rebuild.
    if not args.cpp_header.is_file() or args.cpp_header.read_text() != text:
        args.cpp_header.parent.mkdir(parents=True, exist_ok=True)
        args.cpp_header.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
