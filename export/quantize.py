"""Weight quantization of the transformer linears, emitted as stock ONNX Runtime nodes (docs/QUANTIZATION.md).

The exporter knows the weights, so it writes the quantized nodes itself (no quantizer tool: those neither enter
model-local functions nor touch ``vampnet`` ops):

- ``int8``: ``com.microsoft.DynamicQuantizeMatMul(x, W_q int8 [K, N], scale float [N] (, bias [N]))``. Weights are
  symmetric per output column (``W ~= W_q * scale``, ``W_q`` in [-127, 127]); ORT quantizes the activations per
  tensor at run time (uint8, asymmetric) and runs an integer GEMM (MLAS, AVX-512 VNNI / AVX2 / wasm SIMD).
- ``int4``: ``com.microsoft.MatMulNBits(x, W_q uint8 [N, K/bs, bs/2], scales float [N * K/bs] (, bias))`` with
  ``bits=4``: symmetric blocks of ``block_size`` values along K (the default zero point 8 of MatMulNBits), the
  scale of each block chosen among a few clipping ratios by least squares.

- ``w8`` (the browser GPU bundle): ``com.microsoft.MatMulNBits`` with ``bits=8``, weight-only: symmetric blocks of
  ``W8_BLOCK_SIZE`` values along K, zero point 128, activations stay float32 (no ``accuracy_level``). int8's
  ``DynamicQuantizeMatMul`` has no WebGPU kernel in onnxruntime-web (it falls back to the CPU); MatMulNBits runs on
  the GPU in both of its WebGPU builds (docs/WEB.md, "WebGPU").

Quantized linears never use MatMulNBits' bias input (the 6-input form, which onnxruntime-web's JSEP WebGPU build
rejects): the bias is a separate Add.

Everything else (embedding tables, RMSNorm, attention, norms, biases) stays float32; docs/QUANTIZATION.md says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from vampnet_ort.codec_geometry import Conv as CodecConvLike

    from .graph_writer import NodeWriter

MS_DOMAIN = "com.microsoft"
PRECISIONS = ("none", "int8", "int4", "w8")
# Graph precision recorded in vampnet.json / metadata for each --quantize value.
PRECISION_NAMES = {"none": "float32", "int8": "int8", "int4": "int4", "w8": "w8"}
INT4_BLOCK_SIZE = 128  # measured: docs/QUANTIZATION.md ("int4 block size and accuracy level")
INT4_ACCURACY_LEVEL = 4  # activations quantized to int8 inside MatMulNBits (the fast path of MLAS)
_INT4_CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8)
W8_BLOCK_SIZE = 128  # the int4 block size: 8-bit blocks of 128 keep the weight error ~0.5% (docs/QUANTIZATION.md)


class QuantizeError(ValueError):
    """An unknown --quantize value."""


def check_precision(quantize: str) -> str:
    if quantize not in PRECISIONS:
        raise QuantizeError(f"unknown quantization {quantize!r} (choose one of: {', '.join(PRECISIONS)})")
    return quantize


@dataclass(frozen=True)
class QuantizedLinear:
    """A quantized ``x @ W`` (W [K, N]): initializer names of the packed weight and its scales."""

    precision: str  # "int8" | "int4" | "w8"
    weight: str
    scale: str
    k: int
    n: int
    block_size: int = 0


def smooth_gain_into_weight(gain: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data-free SmoothQuant for ``(RMSNorm(x) * gain) @ W``: returns ``(gain / s, diag(s) @ W)``, the same function.

    After an RMSNorm, input channel j of W carries activations of magnitude ~|gain_j|; W's row j has range
    max|W_j|. ``s_j = sqrt(|gain_j| / max|W_j|)`` (geometric mean 1) balances the two, so one outlier channel
    (a large gain, or a large weight row) no longer stretches the per-tensor activation scale or every column's
    weight scale alone (docs/QUANTIZATION.md, "Outliers").
    """
    a = np.abs(gain.astype(np.float64))
    a = np.maximum(a, max(float(a.max()), 1e-30) * 1e-6)
    wmax = np.abs(w).max(axis=1).astype(np.float64)
    wmax = np.maximum(wmax, max(float(wmax.max()), 1e-30) * 1e-6)
    s = np.sqrt(a / wmax)
    s /= np.exp(np.log(s).mean())
    return (gain / s).astype(np.float32), (w * s[:, None]).astype(np.float32)


def balance_input_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``y @ W`` whose input ``y`` is linear in the columns of an earlier weight (the attention output in V's
    columns, GEGLU's output in its linear half): returns ``(diag(s) @ W, s)``; the caller divides those earlier
    columns by ``s``, which keeps the function. ``s_j = 1 / sqrt(max|W_j|)`` (geometric mean 1) moves half of
    an outlier row's range into the activations, as ``smooth_gain_into_weight`` does with unit activations.
    """
    wmax = np.abs(w).max(axis=1).astype(np.float64)
    wmax = np.maximum(wmax, max(float(wmax.max()), 1e-30) * 1e-6)
    s = 1.0 / np.sqrt(wmax)
    s /= np.exp(np.log(s).mean())
    return (w * s[:, None]).astype(np.float32), s.astype(np.float32)


def quantize_int8_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] float -> (W_q int8 [K, N], scale float32 [N]) with W ~= W_q * scale, symmetric per column."""
    if w.ndim != 2:
        raise ValueError(f"expected a [K, N] matrix, got shape {w.shape}")
    absmax = np.abs(w).max(axis=0).astype(np.float32)
    scale = np.where(absmax > 0, absmax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.empty(w.shape, dtype=np.int8)
    for start in range(0, w.shape[0], 256):  # row chunks: no float64 copy of a large matrix
        rows = np.rint(w[start : start + 256] / scale)
        q[start : start + 256] = np.clip(rows, -127, 127).astype(np.int8)
    return q, scale


def dequantize_int8_columns(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale


def quantize_int4_blocks(w: np.ndarray, block_size: int = INT4_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] float -> (packed uint8 [N, ceil(K/bs), bs/2], scales float32 [N * ceil(K/bs)]) for MatMulNBits.

    Values are ``(q - 8) * scale`` with q in [1, 15] (symmetric; MatMulNBits' default zero point 8); K is padded
    with zeros to a whole number of blocks; two values per byte, the first in the low nibble.
    """
    if w.ndim != 2:
        raise ValueError(f"expected a [K, N] matrix, got shape {w.shape}")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16, got {block_size}")
    k, n = w.shape
    n_blocks = -(-k // block_size)
    padded = np.zeros((n_blocks * block_size, n), dtype=np.float32)
    padded[:k] = w
    packed = np.empty((n, n_blocks, block_size // 2), dtype=np.uint8)
    scales = np.empty((n, n_blocks), dtype=np.float32)
    for start in range(0, n, 256):  # column chunks keep the temporaries small
        blocks = np.ascontiguousarray(padded[:, start : start + 256].T).reshape(-1, n_blocks, block_size)
        absmax = np.abs(blocks).max(axis=-1)
        best_err = np.full(absmax.shape, np.inf, dtype=np.float32)
        best_scale = np.ones(absmax.shape, dtype=np.float32)
        for ratio in _INT4_CLIP_RATIOS:
            s = np.where(absmax > 0, absmax * np.float32(ratio / 7.0), np.float32(1.0)).astype(np.float32)
            q = np.clip(np.rint(blocks / s[..., None]), -7, 7)
            err = np.square(q * s[..., None] - blocks).sum(axis=-1)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best_scale = np.where(better, s, best_scale)
        q = (np.clip(np.rint(blocks / best_scale[..., None]), -7, 7) + 8).astype(np.uint8)
        packed[start : start + 256] = q[..., 0::2] | (q[..., 1::2] << 4)
        scales[start : start + 256] = best_scale
    return packed, scales.reshape(-1)


def quantize_int8_blocks(w: np.ndarray, block_size: int = W8_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """W [K, N] float -> (uint8 [N, ceil(K/bs), bs], scales float32 [N * ceil(K/bs)]) for MatMulNBits bits=8.

    Values are ``(q - 128) * scale`` with q in [1, 255] (symmetric, scale = block absmax / 127; MatMulNBits'
    default zero point 128 for 8 bits); K is padded with zeros to a whole number of blocks.
    """
    if w.ndim != 2:
        raise ValueError(f"expected a [K, N] matrix, got shape {w.shape}")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16, got {block_size}")
    k, n = w.shape
    n_blocks = -(-k // block_size)
    packed = np.empty((n, n_blocks, block_size), dtype=np.uint8)
    scales = np.empty((n, n_blocks), dtype=np.float32)
    for start in range(0, n, 256):  # column chunks keep the temporaries small
        cols = w[:, start : start + 256]
        padded = np.zeros((n_blocks * block_size, cols.shape[1]), dtype=np.float32)
        padded[:k] = cols
        blocks = np.ascontiguousarray(padded.T).reshape(-1, n_blocks, block_size)
        absmax = np.abs(blocks).max(axis=-1)
        scale = np.where(absmax > 0, absmax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
        packed[start : start + 256] = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        scales[start : start + 256] = scale
    return packed, scales.reshape(-1)


def dequantize_int8_blocks(packed: np.ndarray, scales: np.ndarray, k: int) -> np.ndarray:
    n, n_blocks, block = packed.shape
    w = (packed.astype(np.float32) - 128.0) * scales.reshape(n, n_blocks, 1)
    return np.ascontiguousarray(w.reshape(n, -1)[:, :k].T)


def dequantize_int4_blocks(packed: np.ndarray, scales: np.ndarray, k: int) -> np.ndarray:
    n, n_blocks, half = packed.shape
    q = np.empty((n, n_blocks, 2 * half), dtype=np.float32)
    q[..., 0::2] = packed & 0x0F
    q[..., 1::2] = packed >> 4
    w = (q - 8.0) * scales.reshape(n, n_blocks, 1)
    return np.ascontiguousarray(w.reshape(n, -1)[:, :k].T)


def emit_linear(
    w: "NodeWriter", x: str, weight: "str | QuantizedLinear", bias: str | None = None, *, hint: str
) -> str:
    """``x @ W (+ bias)`` for a float32 weight (MatMul) or a quantized one (DynamicQuantizeMatMul / MatMulNBits)."""
    if isinstance(weight, str):
        y = w.op1("MatMul", [x, weight], hint=hint)
        return w.op1("Add", [y, bias], hint=hint + "_bias") if bias else y
    if weight.precision == "int8":
        inputs = [x, weight.weight, weight.scale] + (["", bias] if bias else [])
        return w.op1("DynamicQuantizeMatMul", inputs, domain=MS_DOMAIN, hint=hint)
    if weight.precision in ("int4", "w8"):
        # no bias input: JSEP's WebGPU MatMulNBits rejects the 6-input form; a separate Add is the same sum
        levels = {"accuracy_level": INT4_ACCURACY_LEVEL} if weight.precision == "int4" else {}
        y = w.op1(
            "MatMulNBits",
            [x, weight.weight, weight.scale],
            domain=MS_DOMAIN,
            hint=hint,
            K=weight.k,
            N=weight.n,
            bits=4 if weight.precision == "int4" else 8,
            block_size=weight.block_size,
            **levels,
        )
        return w.op1("Add", [y, bias], hint=hint + "_bias") if bias else y
    raise ValueError(f"unknown precision {weight.precision!r}")


# ---- attention in int8 bundles ---------------------------------------------------------------------------------

# int8 bundles run QK^T and PV in int8 (vampnet.RelativePositionAttentionInt8; docs/ATTENTION.md "int8 attention").
# Read at export time by transformer_graph.attention_op; False exports the float32 attention op instead.
ATTENTION_INT8 = True


# ---- the codec decoder's convs in int8 (docs/QUANTIZATION.md, "Codec") -------------------------------------------

# Decoder conv forms, chosen per layer shape by benchmarks/bench_codec_int8_forms.py (side by side with float32
# Conv): "int8_im2col" = vampnet.DynamicQuantizeIm2Col (uint8 im2col of channels-last activations), MatMulInteger
# with int8 weights (export/codec.py, _GraphBuilder.conv_int8); "float32" = ORT Conv.
# The narrowest residual-unit convs that run in int8. With the fused DynamicQuantizeIm2Col and channels-last levels,
# every level of the release-size decoder (96 channels and up) gains (docs/QUANTIZATION.md, "Codec").
CODEC_INT8_MIN_CHANNELS = 96


def codec_conv_form(layer: "CodecConvLike", quantize: str) -> str:
    """The form a decoder conv is exported in for ``--quantize`` `quantize`: ``int8_im2col`` or ``float32``.

    int8 only in int8 exports, only for the residual units' convs (stride 1, as many input as output channels)
    with at least ``CODEC_INT8_MIN_CHANNELS`` channels. The first conv (latent -> decoder width: its rounding error
    passes through the whole decoder, 1 dB of the decoded audio's SNR for 2 % of the decode time), the last conv
    (to one channel), the transposed convs and the encoder stay float32.
    """
    if quantize != "int8" or layer.stride != 1 or layer.in_channels != layer.out_channels:
        return "float32"
    if layer.in_channels < CODEC_INT8_MIN_CHANNELS:
        return "float32"
    return "int8_im2col"


def codec_conv_weight_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conv1d weight [C', C, k] -> (W_q int8 [k*C, C'], scale float32 [C']) for the channels-last im2col GEMM:
    column block j of the im2col matrix holds tap j (input position t + j*d - p), so row j*C + c of W is w[:, c, j].
    """
    if w.ndim != 3:
        raise ValueError(f"expected a conv weight [C_out, C_in, k], got shape {w.shape}")
    c_out, c_in, k = w.shape
    return quantize_int8_columns(np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c_in, c_out)))
