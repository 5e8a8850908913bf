"""LAC codec checkpoint -> ``codec_encoder.onnx`` and ``codec_decoder.onnx``.

- Encoder: ``audio`` float [B, 1, N] -> ``codes`` int64 [B, n_codebooks, T]. Upstream ``LAC.encode``: the audio is
  right-padded with zeros to a multiple of hop_length inside the graph (upstream ``preprocess``), so T =
  ceil(N / hop_length); then the encoder convs and the residual VQ. Per codebook: in_proj (1x1 conv), L2-normalised
  encoding vs L2-normalised codebook, argmax of -||e - c||^2 (first index on ties), raw codeword -> out_proj,
  subtracted from the residual. The codeword -> out_proj step is one table lookup ([codebook_size, latent_dim]
  per codebook, precomputed at export).
- Decoder: ``codes`` int64 [B, C, T] (1 <= C <= n_codebooks, normally all) -> ``audio`` float [B, 1, N'].
  VampNet's decode path: per codebook the raw codeword, re-quantised by ``quantizer.from_latents`` (a codeword maps
  to itself unless another row of the codebook points the same way; the export resolves that once per code), then
  out_proj, summed to z_q -> decoder -> tanh. Codes outside [0, codebook_size) (MASK included: the pipeline maps
  MASK to 0 first) make the run fail with Gather's out-of-bounds error instead of decoding garbage.

Weight norm is folded at export; every size comes from ``metadata.kwargs`` and every checkpoint key is consumed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vampnet_ort import ops
from vampnet_ort.codec_geometry import (
    CodecConfig,
    CodecConfigError,
    Conv,
    ConvTranspose,
    Layer,
    Mean,
    Residual,
    Seq,
    Snake,
    Tanh,
    decoder_plan,
    encoder_plan,
    iter_layers,
)
from vampnet_ort.fileio import publish

from .checkpoint import Checkpoint, CheckpointError, StateReader, load_checkpoint
from .quantize import check_precision, codec_conv_form, codec_conv_weight_int8

ENCODER_FILE = "codec_encoder.onnx"
DECODER_FILE = "codec_decoder.onnx"
SNAKE_EPS = np.float32(1e-9)


def codec_config(codec: Checkpoint) -> CodecConfig:
    try:
        return CodecConfig.from_kwargs(codec.kwargs)
    except CodecConfigError as exc:
        raise CheckpointError(f"{codec.path}: {exc}") from None


class _GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, use_snake_op: bool, quantize: str = "none") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.use_snake_op = use_snake_op
        self.quantize = quantize  # "int8": convs that gain run as int8 GEMMs (codec_conv_form)
        self.forms: dict[str, str] = {}  # layer key -> the form emitted, for metadata and docs
        # True while emitting a block whose convs are all int8: activations are [B, L, C] there (what the int8
        # GEMMs consume and produce), so no Transpose sits between layers (docs/QUANTIZATION.md, "Codec").
        self.channels_last = False
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.name(hint)
        value = np.ascontiguousarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"codec weight '{hint}' holds NaN or infinite values; refusing to export it")
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1,
             domain: str = "", node_name: str | None = None, **attrs: object) -> str | list[str]:
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.name(node_name or "n_" + op_type),
                                           domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    # -- layers ------------------------------------------------------------------------------------------------

    def conv(self, x: str, layer: Conv, reader: StateReader) -> str:
        w = reader.weight_norm(layer.key, (layer.out_channels, layer.in_channels, layer.kernel))
        b = reader.take(f"{layer.key}.bias", (layer.out_channels,))
        form = codec_conv_form(layer, self.quantize)
        self.forms[layer.key] = form
        if form == "int8_im2col":
            return self.conv_int8(x, layer, w, b)
        if self.channels_last:  # all_convs_int8 admitted the block; a float32 conv in it would be a bug here
            raise AssertionError(f"float32 conv {layer.key} inside a channels-last block")
        return self.node(
            "Conv", [x, self.const(layer.key + ".w", w), self.const(layer.key + ".b", b)], hint="conv",
            kernel_shape=[layer.kernel], strides=[layer.stride], dilations=[layer.dilation],
            pads=[layer.padding, layer.padding], group=1,
        )

    def conv_int8(self, x: str, layer: Conv, w: np.ndarray, b: np.ndarray) -> str:
        """A stride-1 conv as an int8 GEMM over channels-last activations (docs/QUANTIZATION.md, "Codec").

        x [B, L, C] -> ``vampnet.DynamicQuantizeIm2Col`` (DynamicQuantizeLinear: uint8, one scale and zero point
        per run; then the im2col [B, L, k*C] with the zero point as padding) -> MatMulInteger with int8 weights
        [k*C, C'] -> Cast -> Mul by x_scale * w_scale[C'] -> Add bias -> [B, L, C']. Outside a channels-last block
        a Transpose goes before and after. Without the vampnet ops (``use_snake_op=False``) the im2col is the op's
        standard-op form inline.
        """
        channels_first = not self.channels_last
        if channels_first:
            x = self.node("Transpose", [x], perm=[0, 2, 1], hint="to_channels_last")
        w_q, w_scale = codec_conv_weight_int8(w)
        attrs = {"kernel_size": layer.kernel, "dilation": layer.dilation, "padding": layer.padding}
        if self.use_snake_op:
            cols, x_scale, zero_point = self.node("DynamicQuantizeIm2Col", [x], hint="im2col", n_out=3,
                                                  domain=ops.DOMAIN, **attrs)
        else:
            cols, x_scale, zero_point = self.im2col_standard_ops(x, **attrs)
        acc = self.node("MatMulInteger", [cols, self.const(layer.key + ".w_q", w_q), zero_point], hint="conv_acc")
        scale = self.node("Mul", [x_scale, self.const(layer.key + ".w_scale", w_scale)])
        y = self.node("Mul", [self.node("Cast", [acc], to=TensorProto.FLOAT), scale])
        y = self.node("Add", [y, self.const(layer.key + ".b", b)], hint="conv")
        return self.node("Transpose", [y], perm=[0, 2, 1], hint="conv") if channels_first else y

    def im2col_standard_ops(self, x: str, kernel_size: int, dilation: int, padding: int) -> list[str]:
        """``DynamicQuantizeIm2Col`` of channels-last `x` in standard ops, the shape arithmetic folded:
        DynamicQuantizeLinear -> Pad the time axis with the zero point -> k Slices of the dilated taps -> Concat."""
        cols, x_scale, zero_point = self.node("DynamicQuantizeLinear", [x], hint="conv_q", n_out=3)
        if kernel_size > 1 or padding > 0:
            padded = self.node("Pad", [cols, self.const("pads", np.array([0, padding, 0, 0, padding, 0], np.int64)),
                                       zero_point], mode="constant")
            axis = self.const("axis1", np.array([1], dtype=np.int64))
            taps = []
            for j in range(kernel_size):
                # tap j covers padded[j*d : j*d + L_out]; its end counted from the padded end (d*(k-1-j) short)
                short = dilation * (kernel_size - 1 - j)
                end = -short if short > 0 else np.iinfo(np.int64).max
                taps.append(self.node("Slice", [padded, self.const("start", np.array([j * dilation], np.int64)),
                                                self.const("end", np.array([end], np.int64)), axis]))
            cols = taps[0] if kernel_size == 1 else self.node("Concat", taps, axis=2, hint="im2col")
        return [cols, x_scale, zero_point]

    def conv_transpose(self, x: str, layer: ConvTranspose, reader: StateReader) -> str:
        # ConvTranspose1d weight [in, out, k]: weight norm over dims 1, 2 = per input channel (StateReader does it).
        w = reader.weight_norm(layer.key, (layer.in_channels, layer.out_channels, layer.kernel))
        b = reader.take(f"{layer.key}.bias", (layer.out_channels,))
        return self.node(
            "ConvTranspose", [x, self.const(layer.key + ".w", w), self.const(layer.key + ".b", b)], hint="convt",
            kernel_shape=[layer.kernel], strides=[layer.stride], pads=[layer.padding, layer.padding], group=1,
        )

    def snake(self, x: str, layer: Snake, reader: StateReader) -> str:
        alpha = reader.take(f"{layer.key}.alpha", (1, layer.channels, 1)).astype(np.float32)
        if self.channels_last:
            alpha = alpha.reshape(1, 1, layer.channels)
        if self.use_snake_op:
            attrs = {"channels_last": 1} if self.channels_last else {}
            return self.node("Snake", [x, self.const(layer.key + ".alpha", alpha)], hint="snake",
                             domain=ops.DOMAIN, **attrs)
        # Plain ONNX: x + sin(alpha x)^2 * (1 / (alpha + 1e-9)), the reciprocal folded (float32, as upstream).
        inv = np.reciprocal(alpha + SNAKE_EPS).astype(np.float32)
        ax = self.node("Mul", [x, self.const(layer.key + ".alpha", alpha)])
        s = self.node("Sin", [ax])
        s2 = self.node("Mul", [s, s])
        scaled = self.node("Mul", [s2, self.const(layer.key + ".inv_alpha", inv)])
        return self.node("Add", [x, scaled], hint="snake")

    def mean(self, x: str, layer: Mean, reader: StateReader) -> str:
        outs = [self.layer(x, branch, reader) for branch in layer.branches]
        total = outs[0]
        for other in outs[1:]:
            total = self.node("Add", [total, other])
        count = self.const("mean_count", np.array(len(outs), dtype=np.float32))
        return self.node("Div", [total, count], hint="mean")

    def all_convs_int8(self, layer: Layer) -> bool:
        convs = [leaf for leaf in iter_layers(layer) if isinstance(leaf, Conv)]
        return bool(convs) and all(codec_conv_form(conv, self.quantize) != "float32" for conv in convs)

    def layer(self, x: str, layer: Layer, reader: StateReader) -> str:
        if isinstance(layer, Conv):
            return self.conv(x, layer, reader)
        if isinstance(layer, ConvTranspose):
            return self.conv_transpose(x, layer, reader)
        if isinstance(layer, Snake):
            return self.snake(x, layer, reader)
        if isinstance(layer, Tanh):
            return self.node("Tanh", [x])
        if isinstance(layer, Seq):
            for sub in layer.layers:
                x = self.layer(x, sub, reader)
            return x
        if isinstance(layer, Residual):
            return self.node("Add", [x, self.layer(x, layer.body, reader)], hint="res")
        if isinstance(layer, Mean):
            if self.channels_last or not self.all_convs_int8(layer):
                return self.mean(x, layer, reader)
            # A block of int8 convs (a decoder level's residual stacks) runs channels-last: one Transpose in, one out.
            self.channels_last = True
            try:
                y = self.mean(self.node("Transpose", [x], perm=[0, 2, 1], hint="to_channels_last"), layer, reader)
            finally:
                self.channels_last = False
            return self.node("Transpose", [y], perm=[0, 2, 1], hint="to_channels_first")
        raise TypeError(f"unknown layer {layer!r}")


# ---- quantizer tables ----------------------------------------------------------------------------------------------


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    """F.normalize(x, dim=1) in float32: x / max(||x||, 1e-12)."""
    x = x.astype(np.float32)
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True, dtype=np.float32))
    return (x / np.maximum(norm, np.float32(1e-12))).astype(np.float32)


def _nearest_codes(encodings: np.ndarray, codebook_normed: np.ndarray) -> np.ndarray:
    """Upstream ``decode_latents`` decision: argmax over codewords of -(|e|^2 - 2 e.c + |c|^2), e normalised."""
    e = _normalize_rows(encodings)
    dist = (np.sum(e * e, axis=1, keepdims=True) - np.float32(2) * (e @ codebook_normed.T)
            + np.sum(codebook_normed * codebook_normed, axis=1)[None, :])
    return np.argmax(-dist, axis=1)


class _Quantizer:
    """Folded weights of the residual VQ, one entry per codebook."""

    def __init__(self, config: CodecConfig, reader: StateReader) -> None:
        d, k, n = config.latent_dim, config.codebook_dim, config.codebook_size
        self.in_w: list[np.ndarray] = []  # [latent_dim, codebook_dim] (MatMul layout)
        self.in_b: list[np.ndarray] = []
        self.codebook_normed: list[np.ndarray] = []  # [codebook_size, codebook_dim]
        self.codebook_sq: list[np.ndarray] = []  # |c_normed|^2 [codebook_size]
        self.encode_table: list[np.ndarray] = []  # out_proj(codeword) [codebook_size, latent_dim]
        self.decode_table: list[np.ndarray] = []  # out_proj(codeword of the re-quantised code)
        self.requantised: list[int] = []  # how many codes from_latents maps to another code
        for i in range(config.n_codebooks):
            prefix = f"quantizer.quantizers.{i}"
            w_in = reader.weight_norm(f"{prefix}.in_proj", (k, d, 1))[:, :, 0]
            self.in_w.append(np.ascontiguousarray(w_in.T))
            self.in_b.append(reader.take(f"{prefix}.in_proj.bias", (k,)))
            w_out = reader.weight_norm(f"{prefix}.out_proj", (d, k, 1))[:, :, 0].astype(np.float64)
            b_out = reader.take(f"{prefix}.out_proj.bias", (d,)).astype(np.float64)
            codebook = reader.take(f"{prefix}.codebook.weight", (n, k))
            normed = _normalize_rows(codebook)
            self.codebook_normed.append(normed)
            self.codebook_sq.append(np.sum(normed * normed, axis=1).astype(np.float32))
            table = (codebook.astype(np.float64) @ w_out.T + b_out).astype(np.float32)
            self.encode_table.append(table)
            requant = _nearest_codes(codebook, normed)
            self.requantised.append(int(np.sum(requant != np.arange(n))))
            self.decode_table.append(np.ascontiguousarray(table[requant]))


# ---- graphs ------------------------------------------------------------------------------------------------------


def _metadata(config: CodecConfig, codec: Checkpoint, kind: str, use_snake_op: bool) -> dict[str, str]:
    return {
        "vampnet_ort.kind": kind,
        "codec_config": config.to_json(),
        "sample_rate": str(config.sample_rate),
        "hop_length": str(config.hop_length),
        "n_codebooks": str(config.n_codebooks),
        "codebook_size": str(config.codebook_size),
        "source_sha256": codec.sha256,
        "snake": "vampnet.Snake" if use_snake_op else "onnx",
    }


def _check_sizes(config: CodecConfig, reader: StateReader) -> None:
    """Cross-check kwargs against the weights before building (clear errors for mismatched files)."""
    first = "quantizer.quantizers.0.in_proj.weight_v"
    if reader.has(first):
        shape = reader.state[first].shape
        if shape[1] != config.latent_dim:
            raise CheckpointError(
                f"{reader.source}: quantizer width {shape[1]} does not match encoder_dim * 2^len(encoder_rates) = "
                f"{config.latent_dim}"
            )
    if reader.has(f"quantizer.quantizers.{config.n_codebooks}.codebook.weight"):
        raise CheckpointError(f"{reader.source}: more quantizers in the weights than n_codebooks={config.n_codebooks}")


def _encoder_nodes(b: _GraphBuilder, config: CodecConfig, reader: StateReader, quantizer: _Quantizer) -> None:
    hop = config.hop_length
    # Right-pad to a multiple of hop (upstream LAC.preprocess): pad = (hop - N % hop) % hop.
    n = b.node("Shape", ["audio"], start=2, end=3)
    hop_c = b.const("hop", np.array([hop], dtype=np.int64))
    pad = b.node("Mod", [b.node("Sub", [hop_c, b.node("Mod", [n, hop_c])]), hop_c])
    pads = b.node("Concat", [b.const("zeros5", np.zeros(5, dtype=np.int64)), pad], axis=0)
    # Refuse non-finite audio (it would quantize to arbitrary codes): sum(audio - audio) is 0 unless a sample is
    # NaN/Inf. ONNX has no assert op: a 1-element tensor reshaped to [all_finite] (allowzero) fails when it is 0,
    # in a node named for the check; its output (the 1) scales `pads` so the check is never pruned.
    finite_sum = b.node("ReduceSum", [b.node("Sub", ["audio", "audio"])], keepdims=1)
    all_finite = b.node("Cast", [b.node("Not", [b.node("IsNaN", [finite_sum])])], to=TensorProto.INT64)
    one = b.node("Reshape", [b.const("one", np.ones(1, dtype=np.int64)),
                             b.node("Reshape", [all_finite, b.const("shape1", np.ones(1, dtype=np.int64))])],
                 node_name="check_audio_is_finite", allowzero=1)
    x = b.node("Pad", ["audio", b.node("Mul", [pads, one])], mode="constant")
    latent = b.layer(x, encoder_plan(config), reader)  # [B, D, T]
    residual = b.node("Transpose", [latent], perm=[0, 2, 1])  # [B, T, D]
    eps = b.const("eps", np.array(1e-12, dtype=np.float32))
    two = b.const("two", np.array(2.0, dtype=np.float32))
    flat_codes = []
    for i in range(config.n_codebooks):
        z_e = b.node("Add", [b.node("MatMul", [residual, b.const(f"vq{i}.in_w", quantizer.in_w[i])]),
                             b.const(f"vq{i}.in_b", quantizer.in_b[i])])  # [B, T, k]
        norm = b.node("ReduceL2", [z_e, b.const("axis", np.array([-1], dtype=np.int64))], keepdims=1)
        e = b.node("Div", [z_e, b.node("Max", [norm, eps])])
        dot = b.node("MatMul", [e, b.const(f"vq{i}.codebook_t", np.ascontiguousarray(quantizer.codebook_normed[i].T))])
        # -dist up to the per-row constant |e|^2: 2 e.c - |c|^2
        score = b.node("Sub", [b.node("Mul", [dot, two]), b.const(f"vq{i}.codebook_sq", quantizer.codebook_sq[i])])
        idx = b.node("ArgMax", [score], hint=f"codes{i}", axis=-1, keepdims=0, select_last_index=0)  # [B, T]
        flat_codes.append(b.node("Unsqueeze", [idx, b.const("axis1", np.array([1], dtype=np.int64))]))
        if i + 1 < config.n_codebooks:
            z_q = b.node("Gather", [b.const(f"vq{i}.table", quantizer.encode_table[i]), idx], axis=0)  # [B, T, D]
            residual = b.node("Sub", [residual, z_q])
    b.nodes.append(helper.make_node("Concat", flat_codes, ["codes"], axis=1, name="codes_concat"))


def _latent_nodes(b: _GraphBuilder, config: CodecConfig, quantizer: _Quantizer) -> str:
    """codes [B, C, T] -> z_q [B, latent_dim, T] through one flat table lookup."""
    size = config.codebook_size
    table = np.concatenate(quantizer.decode_table, axis=0)  # [n_codebooks * size, D]
    n_c = b.node("Shape", ["codes"], start=1, end=2)
    c_scalar = b.node("Squeeze", [n_c, b.const("axis0", np.array([0], dtype=np.int64))])
    offsets = b.node("Range", [b.const("i0", np.array(0, dtype=np.int64)), c_scalar,
                               b.const("i1", np.array(1, dtype=np.int64))])
    offsets = b.node("Mul", [b.node("Unsqueeze", [offsets, b.const("axes02", np.array([0, 2], dtype=np.int64))]),
                             b.const("size", np.array(size, dtype=np.int64))])  # [1, C, 1]
    valid = b.node("And", [b.node("GreaterOrEqual", ["codes", b.const("i0b", np.array(0, dtype=np.int64))]),
                           b.node("Less", ["codes", b.const("sizeb", np.array(size, dtype=np.int64))])])
    # Invalid codes point past the table so Gather fails loudly (ORT checks Gather indices).
    beyond = b.const("beyond", np.array(table.shape[0] * 2 + 1, dtype=np.int64))
    index = b.node("Where", [valid, b.node("Add", ["codes", offsets]), beyond])
    rows = b.node("Gather", [b.const("codec_table", table), index], axis=0)  # [B, C, T, D]
    z_q = b.node("ReduceSum", [rows, b.const("axis1r", np.array([1], dtype=np.int64))], keepdims=0)  # [B, T, D]
    return b.node("Transpose", [z_q], perm=[0, 2, 1], hint="z_q")


def _finish(b: _GraphBuilder, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
            metadata: dict[str, str]) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, inputs, outputs, initializer=b.initializers)
    model = ops.make_model(graph, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def encoder_model(codec: Checkpoint, *, use_snake_op: bool = True) -> onnx.ModelProto:
    """``codec_encoder.onnx``: audio [B, 1, N] -> codes [B, n_codebooks, ceil(N / hop)]."""
    config = codec_config(codec)
    reader = StateReader(codec.state, str(codec.path))
    _check_sizes(config, reader)
    b = _GraphBuilder(use_snake_op)
    quantizer = _Quantizer(config, reader)
    _encoder_nodes(b, config, reader, quantizer)
    _consume_decoder(reader, config)
    reader.finish()
    return _finish(
        b, "codec_encoder",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, "samples"])],
        [helper.make_tensor_value_info("codes", TensorProto.INT64, ["batch", config.n_codebooks, "frames"])],
        _metadata(config, codec, "codec_encoder", use_snake_op),
    )


def decoder_model(codec: Checkpoint, *, use_snake_op: bool = True, from_latents: bool = False,
                  quantize: str = "none") -> onnx.ModelProto:
    """``codec_decoder.onnx``: codes [B, C, T] -> audio [B, 1, N'].

    ``from_latents=True`` builds upstream ``LAC.decode(z)`` instead (input ``z`` float [B, latent_dim, T]), for
    checks against latents. ``quantize="int8"`` runs the convs where int8 pays as int8 GEMMs (``codec_conv_form``;
    docs/QUANTIZATION.md, "Codec"); ``int4`` and ``none`` keep the decoder float32.
    """
    config = codec_config(codec)
    reader = StateReader(codec.state, str(codec.path))
    _check_sizes(config, reader)
    b = _GraphBuilder(use_snake_op, check_precision(quantize))
    quantizer = _Quantizer(config, reader)
    _consume_encoder(reader, config)
    if from_latents:
        z = "z"
        inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", config.latent_dim, "frames"])]
    else:
        z = _latent_nodes(b, config, quantizer)
        inputs = [helper.make_tensor_value_info("codes", TensorProto.INT64, ["batch", "codebooks", "frames"])]
    audio = b.layer(z, decoder_plan(config), reader)
    b.nodes.append(helper.make_node("Identity", [audio], ["audio"], name="audio_out"))
    reader.finish()
    metadata = _metadata(config, codec, "codec_decoder_latents" if from_latents else "codec_decoder", use_snake_op)
    int8_layers = sorted(key for key, form in b.forms.items() if form != "float32")
    metadata["precision"] = "int8" if int8_layers else "float32"
    metadata["int8_convs"] = str(len(int8_layers))
    return _finish(
        b, "codec_decoder", inputs,
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, "samples"])], metadata,
    )


def decoder_precision(config: CodecConfig, quantize: str) -> str:
    """``int8`` when `quantize` puts any decoder conv in int8 (``codec_conv_form``), else ``float32``."""
    forms = {codec_conv_form(leaf, quantize) for leaf in iter_layers(decoder_plan(config)) if isinstance(leaf, Conv)}
    return "int8" if forms - {"float32"} else "float32"


def _consume(reader: StateReader, plan: Layer) -> None:
    """Mark (and shape-check) the weights of a part the model being built does not use."""
    for leaf in iter_layers(plan):
        if isinstance(leaf, Conv):
            reader.weight_norm(leaf.key, (leaf.out_channels, leaf.in_channels, leaf.kernel))
            reader.take(f"{leaf.key}.bias", (leaf.out_channels,))
        elif isinstance(leaf, ConvTranspose):
            reader.weight_norm(leaf.key, (leaf.in_channels, leaf.out_channels, leaf.kernel))
            reader.take(f"{leaf.key}.bias", (leaf.out_channels,))
        elif isinstance(leaf, Snake):
            reader.take(f"{leaf.key}.alpha", (1, leaf.channels, 1))


def _consume_encoder(reader: StateReader, config: CodecConfig) -> None:
    _consume(reader, encoder_plan(config))


def _consume_decoder(reader: StateReader, config: CodecConfig) -> None:
    _consume(reader, decoder_plan(config))


def _write_atomic(model: onnx.ModelProto, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model.SerializeToString())
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_codec(codec: Checkpoint | str | os.PathLike, out_dir: str | os.PathLike, *,
                 use_snake_op: bool = True, quantize: str = "none") -> list[Path]:
    """Write ``codec_encoder.onnx`` and ``codec_decoder.onnx`` into `out_dir` (each file written atomically).

    `codec` is a loaded `Checkpoint` (or a path to ``codec.pth``). Both models are built and checked before
    either file is written. ``use_snake_op=False`` exports standard ONNX ops only. ``quantize="int8"`` quantizes
    the decoder convs where that pays; the encoder always stays float32, so the codes never change.
    """
    if not isinstance(codec, Checkpoint):
        codec = load_checkpoint(codec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = {ENCODER_FILE: encoder_model(codec, use_snake_op=use_snake_op),
              DECODER_FILE: decoder_model(codec, use_snake_op=use_snake_op, quantize=quantize)}
    paths = []
    for name, model in models.items():
        path = out / name
        _write_atomic(model, path)
        paths.append(path)
    return paths
