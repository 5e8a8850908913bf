"""The runtime's counter-based random numbers, in one place (docs/PIPELINE.md, "Mask random numbers" and
"Seeds"): Philox4x32-10 (the family and keying of the decode graphs' ``PhiloxUniform``), ``MaskRng`` (the mask
builders' draws) and ``derive_seed`` (the seed of one pass, stage and chunk of a run).

Item b of a batch seeded s is keyed s + b everywhere, so it draws exactly what a single run seeded s + b draws;
nothing depends on the batch size, the other items, the order of calls or the thread count. The web app's JS port
(``vampnet_ort/web/philox.js``) reproduces these bit for bit (tests/web).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np

from .errors import MaskError

Shape = Tuple[int, int, int]
ShapeLike = Union[Sequence[int], np.ndarray]

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
_U32 = np.uint64(0xFFFFFFFF)
_MASK64 = (1 << 64) - 1

# Counter word 3 of each kind of draw. The decode graphs use 0 and 1 there, so mask draws never share a block
# with a decode draw, even for equal keys.
PURPOSE_INTENSITY = 0x4D534B01  # random_mask: one uniform per (item, codebook, frame)
PURPOSE_ROLL = 0x4D534B02  # periodic_mask random roll: one word per item
PURPOSE_DROPOUT = 0x4D534B03  # dropout: one uniform per (item, codebook, frame)


def shape3(template: ShapeLike) -> Shape:
    """(B, C, T) from a shape tuple or from a codes/mask array used as a template (as upstream does)."""
    dims = template.shape if isinstance(template, np.ndarray) else tuple(int(d) for d in template)
    if len(dims) != 3 or any(d < 0 for d in dims):
        raise MaskError(f"mask shape must be (batch, codebooks, frames), got {tuple(dims)}")
    return int(dims[0]), int(dims[1]), int(dims[2])


def philox4x32_10(counter: Sequence[np.ndarray], key: Sequence[np.ndarray]) -> Tuple[np.ndarray, ...]:
    """Philox4x32-10 on uint64 arrays holding 32-bit words (broadcasting); returns the four output words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _U32 for c in counter)
    k0, k1 = (np.asarray(k, dtype=np.uint64) & _U32 for k in key)
    m0, m1, w0, w1 = (np.uint64(v) for v in (PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1))
    shift = np.uint64(32)
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2  # 32 x 32 bits: exact in 64 bits
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & _U32, (p0 >> shift) ^ c3 ^ k1, p0 & _U32
        k0, k1 = (k0 + w0) & _U32, (k1 + w1) & _U32
    return c0, c1, c2, c3


@dataclass(frozen=True)
class MaskRng:
    """The mask builders' random numbers for one pass of a run seeded `seed` (docs/PIPELINE.md).

    Batch item b uses the 64-bit key seed + b (two's-complement wrap-around): key words (low 32 bits, high 32
    bits). Nothing depends on the batch size, on the other items or on the order of the calls."""

    seed: int
    pass_index: int = 0

    def __post_init__(self) -> None:
        if not -(2**63) <= int(self.seed) < 2**63:
            raise MaskError(f"seed must fit in a signed 64-bit integer, got {self.seed}")
        if not 0 <= int(self.pass_index) < 2**32:
            raise MaskError(f"pass index must be in [0, 2^32), got {self.pass_index}")

    def _keys(self, batch: int) -> Tuple[np.ndarray, np.ndarray]:
        bits = np.array([(int(self.seed) + b) & _MASK64 for b in range(batch)], dtype=np.uint64)
        return bits & _U32, bits >> np.uint64(32)

    def words(self, purpose: int, shape: ShapeLike) -> np.ndarray:
        """Output word 0 of the block with counter (t, c, pass, purpose), key of item b: uint64 [B, C, T]."""
        batch, codebooks, frames = shape3(shape)
        k0, k1 = self._keys(batch)
        t = np.arange(frames, dtype=np.uint64)[None, None, :]
        c = np.arange(codebooks, dtype=np.uint64)[None, :, None]
        word = philox4x32_10((t, c, np.uint64(self.pass_index), np.uint64(purpose)),
                             (k0[:, None, None], k1[:, None, None]))[0]
        return np.broadcast_to(word, (batch, codebooks, frames))

    def uniform(self, purpose: int, shape: ShapeLike) -> np.ndarray:
        """u = ((word >> 9) + 0.5) * 2^-23 per (b, c, t): float64 [B, C, T], exact in float32, in (0, 1)."""
        return ((self.words(purpose, shape) >> np.uint64(9)).astype(np.float64) + 0.5) * 2.0**-23

    def offsets(self, purpose: int, batch: int, modulus: int) -> np.ndarray:
        """One integer in [0, modulus) per item: word (counter (0, 0, pass, purpose)) mod modulus, int64 [B]."""
        return (self.words(purpose, (batch, 1, 1))[:, 0, 0] % np.uint64(modulus)).astype(np.int64)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(seed: int, *labels: int) -> int:
    """The signed 64-bit seed of one (pass, stage, chunk) of a run seeded `seed`: seed + H(labels) mod 2^64.

    Additive on purpose: the decode graphs key batch item b with graph seed + b, so item b of a batch run with seed
    s draws exactly what a single run with seed s + b draws, in every chunk. H (splitmix64 chained over the labels)
    gives every chunk, stage and pass its own far-apart stream."""
    offset = 0
    for label in labels:
        offset = _splitmix64(offset ^ _splitmix64(int(label) & _MASK64))
    x = (int(seed) + offset) & _MASK64
    return x - (1 << 64) if x >= (1 << 63) else x


__all__ = ["philox4x32_10", "MaskRng", "derive_seed", "shape3", "PURPOSE_INTENSITY", "PURPOSE_ROLL",
           "PURPOSE_DROPOUT", "PHILOX_M0", "PHILOX_M1", "PHILOX_W0", "PHILOX_W1"]
