"""The LAC codec's layer structure, as data: what the exporter builds and what chunked inference reasons about.

A codec config (the checkpoint's ``metadata.kwargs``) determines a tree of layers (``encoder_plan`` /
``decoder_plan``). The exporter walks it to emit ONNX nodes (``vampnet_ort.export.codec``); the runtime walks it to
compute output lengths and receptive fields (``vampnet_ort.codec``), so both always agree on the conv arithmetic.

Conv arithmetic is upstream's exactly (tests/golden/README.md item 9): strided encoder convs use kernel 2s, stride s,
padding floor(s/2); decoder transposed convs the same kernel/stride/padding and no output padding; every other conv
pads "same", (k - 1) * dilation / 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

# Residual-unit dilations of an encoder block, and the decoder's multi-receptive-field (MRF) stacks.
ENCODER_DILATIONS = (1, 3, 9)
MRF_KERNELS = (3, 7, 11)
MRF_DILATIONS = (1, 3, 5)


class CodecConfigError(ValueError):
    """A codec config that cannot describe a LAC codec."""


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int
    encoder_dim: int
    encoder_rates: tuple[int, ...]
    decoder_dim: int
    decoder_rates: tuple[int, ...]
    n_codebooks: int
    codebook_size: int
    codebook_dim: int

    @property
    def latent_dim(self) -> int:
        """Width of the encoder output / quantizer / decoder input (encoder_dim doubled per encoder block)."""
        return self.encoder_dim * 2 ** len(self.encoder_rates)

    @property
    def hop_length(self) -> int:
        """Samples per code frame (product of the encoder strides)."""
        return math.prod(self.encoder_rates)

    @property
    def decoder_hop(self) -> int:
        """Samples the decoder makes per frame (product of the decoder strides; equals hop_length upstream)."""
        return math.prod(self.decoder_rates)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "CodecConfig":
        """From LAC constructor kwargs; missing or malformed entries raise CodecConfigError."""

        def positive_int(name: str) -> int:
            if name not in kwargs:
                raise CodecConfigError(f"codec config: missing '{name}'")
            value = kwargs[name]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CodecConfigError(f"codec config: '{name}' must be a positive int, got {value!r}")
            return int(value)

        def rates(name: str) -> tuple[int, ...]:
            value = kwargs.get(name)
            if not isinstance(value, (list, tuple)) or not value:
                raise CodecConfigError(f"codec config: '{name}' must be a non-empty list of strides, got {value!r}")
            if any(isinstance(r, bool) or not isinstance(r, int) or r <= 0 for r in value):
                raise CodecConfigError(f"codec config: '{name}' must hold positive ints, got {value!r}")
            return tuple(int(r) for r in value)

        config = cls(
            sample_rate=positive_int("sample_rate"),
            encoder_dim=positive_int("encoder_dim"),
            encoder_rates=rates("encoder_rates"),
            decoder_dim=positive_int("decoder_dim"),
            decoder_rates=rates("decoder_rates"),
            n_codebooks=positive_int("n_codebooks"),
            codebook_size=positive_int("codebook_size"),
            codebook_dim=positive_int("codebook_dim"),
        )
        if config.decoder_dim % 2 ** len(config.decoder_rates):
            raise CodecConfigError(
                f"codec config: decoder_dim {config.decoder_dim} must be divisible by 2^{len(config.decoder_rates)} "
                "(the decoder halves its width at every rate)"
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "encoder_dim": self.encoder_dim,
            "encoder_rates": list(self.encoder_rates),
            "decoder_dim": self.decoder_dim,
            "decoder_rates": list(self.decoder_rates),
            "n_codebooks": self.n_codebooks,
            "codebook_size": self.codebook_size,
            "codebook_dim": self.codebook_dim,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# ---- the layer tree ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conv:
    """Weight-normed Conv1d: ``key.weight_g/.weight_v/.bias``."""

    key: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0


@dataclass(frozen=True)
class ConvTranspose:
    """Weight-normed ConvTranspose1d (weight [in, out, k]), no output padding."""

    key: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Snake:
    """Snake1d: x + sin^2(alpha x) / (alpha + 1e-9), ``key.alpha`` [1, C, 1]."""

    key: str
    channels: int


@dataclass(frozen=True)
class Tanh:
    pass


@dataclass(frozen=True)
class Seq:
    layers: tuple["Layer", ...]


@dataclass(frozen=True)
class Residual:
    """x + body(x) (lengths are equal: every conv inside pads "same")."""

    body: "Layer"


@dataclass(frozen=True)
class Mean:
    """The mean of the branches, each applied to the same input (upstream: sum, then divided by the count)."""

    branches: tuple["Layer", ...]


Layer = Union[Conv, ConvTranspose, Snake, Tanh, Seq, Residual, Mean]


def _same(kernel: int, dilation: int = 1) -> int:
    return (kernel - 1) * dilation // 2


def encoder_plan(config: CodecConfig) -> Seq:
    """audio [B, 1, N] -> latent [B, latent_dim, T] (upstream ``LAC.encoder``)."""
    layers: list[Layer] = [Conv("encoder.block.0", 1, config.encoder_dim, 7, padding=3)]
    width = config.encoder_dim
    for i, stride in enumerate(config.encoder_rates):
        prefix = f"encoder.block.{i + 1}.block"
        for j, dilation in enumerate(ENCODER_DILATIONS):
            unit = f"{prefix}.{j}.block"
            layers.append(
                Residual(
                    Seq(
                        (
                            Snake(f"{unit}.0", width),
                            Conv(f"{unit}.1", width, width, 7, dilation=dilation, padding=_same(7, dilation)),
                            Snake(f"{unit}.2", width),
                            Conv(f"{unit}.3", width, width, 1),
                        )
                    )
                )
            )
        layers.append(Snake(f"{prefix}.3", width))
        layers.append(Conv(f"{prefix}.4", width, 2 * width, 2 * stride, stride=stride, padding=stride // 2))
        width *= 2
    layers.append(Snake(f"encoder.block.{len(config.encoder_rates) + 1}", width))
    layers.append(Conv(f"encoder.block.{len(config.encoder_rates) + 2}", width, config.latent_dim, 3, padding=1))
    return Seq(tuple(layers))


def decoder_plan(config: CodecConfig) -> Seq:
    """latent z_q [B, latent_dim, T] -> audio [B, 1, N'] (upstream ``LAC.decoder``, tanh included)."""
    layers: list[Layer] = [Conv("decoder.model.0", config.latent_dim, config.decoder_dim, 7, padding=3)]
    for i, stride in enumerate(config.decoder_rates):
        prefix = f"decoder.model.{i + 1}.block"
        in_ch, out_ch = config.decoder_dim // 2**i, config.decoder_dim // 2 ** (i + 1)
        layers.append(Snake(f"{prefix}.0", in_ch))
        layers.append(ConvTranspose(f"{prefix}.1", in_ch, out_ch, 2 * stride, stride, stride // 2))
        stacks = []
        for m, kernel in enumerate(MRF_KERNELS):
            units = []
            for j, dilation in enumerate(MRF_DILATIONS):
                unit = f"{prefix}.2.mrf_blocks.{m}.block.{j}.layer"
                units.append(
                    Residual(
                        Seq(
                            (
                                Snake(f"{unit}.0", out_ch),
                                Conv(f"{unit}.1", out_ch, out_ch, kernel, dilation=dilation,
                                     padding=_same(kernel, dilation)),
                                Snake(f"{unit}.2", out_ch),
                                Conv(f"{unit}.3", out_ch, out_ch, kernel, padding=_same(kernel)),
                            )
                        )
                    )
                )
            stacks.append(Seq(tuple(units)))
        layers.append(Mean(tuple(stacks)))
    n = len(config.decoder_rates)
    last = config.decoder_dim // 2**n
    layers.append(Snake(f"decoder.model.{n + 1}", last))
    layers.append(Conv(f"decoder.model.{n + 2}", last, 1, 7, padding=3))
    layers.append(Tanh())
    return Seq(tuple(layers))


# ---- lengths and receptive fields ----------------------------------------------------------------------------------


def output_length(layer: Layer, length: int) -> int:
    """Length of `layer`'s output for an input of `length` steps (upstream arithmetic; may be <= 0)."""
    if isinstance(layer, Conv):
        return (length + 2 * layer.padding - layer.dilation * (layer.kernel - 1) - 1) // layer.stride + 1
    if isinstance(layer, ConvTranspose):
        return (length - 1) * layer.stride - 2 * layer.padding + layer.kernel
    if isinstance(layer, Seq):
        for sub in layer.layers:
            length = output_length(sub, length)
        return length
    if isinstance(layer, Residual):
        return length
    if isinstance(layer, Mean):
        return output_length(layer.branches[0], length)
    return length  # Snake, Tanh


def input_span(layer: Layer, first: int, last: int) -> tuple[int, int]:
    """The input positions [lo, hi] (inclusive) that outputs first..last of `layer` depend on.

    Positions are absolute (zero padding makes the ends special only where the span leaves the signal).
    """
    if isinstance(layer, Conv):
        return (first * layer.stride - layer.padding,
                last * layer.stride - layer.padding + (layer.kernel - 1) * layer.dilation)
    if isinstance(layer, ConvTranspose):
        # output v = u * stride - padding + j, j in [0, kernel)
        lo = -((-(first + layer.padding - layer.kernel + 1)) // layer.stride)  # ceil division
        hi = (last + layer.padding) // layer.stride
        return lo, hi
    if isinstance(layer, Seq):
        for sub in reversed(layer.layers):
            first, last = input_span(sub, first, last)
        return first, last
    if isinstance(layer, Residual):
        lo, hi = input_span(layer.body, first, last)
        return min(lo, first), max(hi, last)
    if isinstance(layer, Mean):
        spans = [input_span(b, first, last) for b in layer.branches]
        return min(s[0] for s in spans), max(s[1] for s in spans)
    return first, last  # Snake, Tanh


def iter_layers(layer: Layer) -> Sequence[Layer]:
    """Every leaf layer of the tree, in order."""
    if isinstance(layer, Seq):
        return [leaf for sub in layer.layers for leaf in iter_layers(sub)]
    if isinstance(layer, Residual):
        return iter_layers(layer.body)
    if isinstance(layer, Mean):
        return [leaf for b in layer.branches for leaf in iter_layers(b)]
    return [layer]


# ---- the chunking geometry as numbers (vampnet.json "codec.geometry", used by the web app) ---------------------------


class GeometryError(CodecConfigError):
    """A codec whose lengths or receptive fields are not affine in the frame index (not a LAC-like codec)."""


def chunk_geometry(config: CodecConfig, probe_frames: int = 48) -> dict[str, int]:
    """The numbers ``vampnet_ort.codec``'s chunked encode/decode derive from the layer tree, as constants.

    For this conv arithmetic every length and receptive field is affine in the frame index, so (hop = hop_length,
    dhop = decoder_hop, for every frame count T >= 1 and frame indices f0 < f1):

    - ``num_frames(N) = ceil(N / hop) + encoder_frames_offset``
    - encoder ``input_span(f0, f1 - 1) = (f0 * hop - encoder_left, (f1 - 1) * hop + encoder_right)``
    - ``num_samples(T) = T * dhop + decoder_samples_offset``
    - decoder ``input_span(f0 * dhop, f1 * dhop - 1) = (f0 - decoder_left, f1 - 1 + decoder_right)`` and, for the
      last chunk, ``input_span(f0 * dhop, num_samples(T) - 1) = (f0 - decoder_left, T - 1 + decoder_right_end)``.

    The affinity is checked here on `probe_frames` frame indices; a codec where it fails raises GeometryError.
    """
    enc, dec = encoder_plan(config), decoder_plan(config)
    hop, dhop = config.hop_length, config.decoder_hop
    geometry = {
        "hop_length": hop,
        "decoder_hop": dhop,
        "encoder_frames_offset": output_length(enc, hop) - 1,
        "encoder_left": -input_span(enc, 0, 0)[0],
        "encoder_right": input_span(enc, 0, 0)[1],
        "decoder_samples_offset": output_length(dec, 1) - dhop,
        "decoder_left": -input_span(dec, 0, dhop - 1)[0],
        "decoder_right": input_span(dec, 0, dhop - 1)[1],
        "decoder_right_end": input_span(dec, 0, output_length(dec, 1) - 1)[1],
    }
    g = geometry
    for f in range(probe_frames):
        checks = [
            (output_length(enc, (f + 1) * hop), f + 1 + g["encoder_frames_offset"]),
            (input_span(enc, f, f + 1), (f * hop - g["encoder_left"], (f + 1) * hop + g["encoder_right"])),
            (output_length(dec, f + 1), (f + 1) * dhop + g["decoder_samples_offset"]),
            (input_span(dec, f * dhop, (f + 2) * dhop - 1), (f - g["decoder_left"], f + 1 + g["decoder_right"])),
            (input_span(dec, f * dhop, output_length(dec, f + 2) - 1)[1], f + 1 + g["decoder_right_end"]),
        ]
        for got, expected in checks:
            if got != expected:
                raise GeometryError(f"codec geometry is not affine at frame {f}: {got} != {expected}")
    return geometry
