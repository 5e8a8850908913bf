"""The per-op case table (llama.cpp's test-backend-ops pattern): for every op of ``ops/contract.py`` a seeded
valid-input generator, the numpy reference, the tolerance and a FLOP count, stated once.

Read by:
- tests/test_op_cases.py: every op on seeded inputs: kernel (ORT + library) and reference function (stock ORT)
  against the numpy reference within the tolerance, pybind == kernel, one thread == two threads;
- tests/test_<op>.py: the numpy references and tolerances (their op-specific tests stay there);
- tests/fuzzing.py: ``SPECS`` (valid feeds and attributes to mutate; input/output names and types come from the
  contract);
- benchmarks/bench_ops.py: every op at its release size, GFLOP/s from ``flops`` and GB/s from the bytes moved;
- tests/test_contract.py: fails when an op of the contract has no entry here.

Dimensions: a case draws a small random ``Dims`` (``random_dims``) for the tests and the fuzzer, or takes its
``release_dims`` (VampNet's release size) for the benchmark; ``feeds``, ``attributes`` and ``flops`` are functions
of the dims. FLOPs count the floating-point operations of the op's definition, a transcendental (sin, exp, log,
sqrt) as one (attention: its two matmuls, as bench_attention.py); ops with no floating-point arithmetic to speak of
(PhiloxUniform) count 0 and report GB/s only.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from vampnet_ort.ops import contract
from vampnet_ort.ops.contract import OpContract

Feeds = dict[str, np.ndarray]
Dims = Mapping[str, int]
NP_DTYPES = {contract.FLOAT: np.dtype(np.float32), contract.INT64: np.dtype(np.int64),
             contract.UINT8: np.dtype(np.uint8)}


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """|got - expected| <= atol + rtol * |expected| + of_max * max|expected| + sum(factor * |feeds[name]|)
    elementwise; all zero: bit-exact."""

    rtol: float = 0.0
    atol: float = 0.0
    per_input: tuple[tuple[str, float], ...] = ()  # input-proportional terms (e.g. float32 representation error)
    of_max: float = 0.0  # a fraction of the output's largest magnitude (quantized ops: one rounding step)

    @property
    def exact(self) -> bool:
        return self.rtol == 0.0 and self.atol == 0.0 and self.of_max == 0.0 and not self.per_input

    def bound(self, expected: np.ndarray, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        magnitude = np.abs(expected.astype(np.float64))
        bound = self.atol + self.rtol * magnitude
        if self.of_max and magnitude.size:
            bound = bound + self.of_max * float(np.nanmax(magnitude, initial=0.0))
        for name, factor in self.per_input:
            bound = bound + factor * np.abs(feeds[name].astype(np.float64))
        return bound

    def assert_close(self, got: np.ndarray, expected: np.ndarray, feeds: Mapping[str, np.ndarray],
                     what: str = "") -> None:
        assert got.shape == expected.shape, (what, got.shape, expected.shape)
        if self.exact:
            np.testing.assert_array_equal(got, expected, err_msg=what)
            return
        if not self.per_input and not self.of_max:  # NaN positions compare equal, as in np.testing
            np.testing.assert_allclose(got, expected, rtol=self.rtol, atol=self.atol, err_msg=what)
            return
        error = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
        finite = ~np.isnan(expected)
        assert np.all(error[finite] <= self.bound(expected, feeds)[finite]), f"{what}: max error {np.nanmax(error)}"


EXACT = Tolerance()


@dataclasses.dataclass(frozen=True)
class OpCase:
    contract: OpContract
    random_dims: Callable[[np.random.Generator], Dims]  # small dims for tests and the fuzzer
    release_dims: Dims  # VampNet's release size (bench_ops.py)
    make_feeds: Callable[[np.random.Generator, Dims], Feeds]  # valid inputs, in contract order
    flops: Callable[[Dims], int]
    # numpy reference: (feeds, attributes) -> outputs in contract order; None where the op has no independent numpy
    # model (its oracles are then the reference function, bit for bit, and its golden data: `reference_note`).
    reference: Optional[Callable[[Feeds, Mapping[str, object]], Sequence[np.ndarray]]]
    tolerance: Tolerance  # of kernel and reference function against `reference` (or each other when it is None)
    attributes: Callable[[Dims], dict[str, object]] = lambda dims: {}
    pybind: Optional[Callable[[Feeds, Mapping[str, object], int], Sequence[np.ndarray]]] = None  # (.., threads)
    reference_note: str = ""

    @property
    def name(self) -> str:
        return self.contract.name

    def feeds(self, rng: np.random.Generator, dims: Optional[Dims] = None) -> Feeds:
        """Valid inputs for `dims` (drawn from `rng` when None), checked against the contract's names and types."""
        feeds = self.make_feeds(rng, self.random_dims(rng) if dims is None else dims)
        assert list(feeds) == [t.name for t in self.contract.inputs], (self.name, list(feeds))
        for t in self.contract.inputs:
            assert feeds[t.name].dtype == NP_DTYPES[t.dtype], (self.name, t.name, feeds[t.name].dtype)
        return feeds

    def output_types(self) -> list[tuple[str, np.dtype]]:
        return [(t.name, NP_DTYPES[t.dtype]) for t in self.contract.outputs]

    def output_ranks(self, feeds: Mapping[str, np.ndarray]) -> list[int]:
        """Output ranks from the contract's shape strings ("[B, T, D]": 3; "[]": 0; "[..., D]": the rank of the
        input with the same shape string)."""
        ranks = []
        for t in self.contract.outputs:
            if t.shape == "[]":
                ranks.append(0)
            elif "..." in t.shape:
                ranks.append(next(feeds[i.name].ndim for i in self.contract.inputs if i.shape == t.shape))
            else:
                ranks.append(len(t.shape.strip("[]").split(",")))
        return ranks

    def int_attributes(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.contract.attributes if a.kind == "int")


def bytes_moved(feeds: Mapping[str, np.ndarray], outputs: Sequence[np.ndarray]) -> int:
    """Bytes read and written once each: every input and every output."""
    return sum(v.nbytes for v in feeds.values()) + sum(v.nbytes for v in outputs)


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _ints(rng: np.random.Generator, low: int, high: int, *names: str) -> dict[str, int]:
    """Independent draws in [low, high) named `names`."""
    return {name: int(rng.integers(low, high)) for name in names}


# ---- Snake ----------------------------------------------------------------------------------------------------------


def snake_numpy(x: np.ndarray, alpha: np.ndarray, channels_last: int = 0) -> np.ndarray:
    a = alpha.astype(np.float64).reshape((1, 1, -1) if channels_last else (1, -1, 1))
    x64 = x.astype(np.float64)
    return x64 + np.sin(a * x64) ** 2 / (a + 1e-9)


def _snake_feeds(rng: np.random.Generator, d: Dims) -> Feeds:
    shape = (d["B"], d["L"], d["C"]) if d["channels_last"] else (d["B"], d["C"], d["L"])
    alpha_shape = (1, 1, d["C"]) if d["channels_last"] else (1, d["C"], 1)
    return {"X": _f32(rng, *shape), "alpha": rng.uniform(0.5, 1.5, size=alpha_shape).astype(np.float32)}


# float32 inputs: |x| * 2^-24 of representation error plus the sin^2 term's own rounding (|ax| grows the argument
# error by |a x| * 2^-24, scaled by 1 / a).
SNAKE_TOLERANCE = Tolerance(rtol=4e-7, atol=4e-7 + 1e-6, per_input=(("X", 2e-7),))

SNAKE = OpCase(
    contract.SNAKE,
    random_dims=lambda rng: {**_ints(rng, 1, 3, "B"), **_ints(rng, 1, 9, "C"), **_ints(rng, 1, 50, "L"),
                             **_ints(rng, 0, 2, "channels_last")},
    release_dims={"B": 1, "C": 96, "L": 44100, "channels_last": 0},  # a decoder block's channels over one second
    make_feeds=_snake_feeds,
    flops=lambda d: 5 * d["B"] * d["C"] * d["L"],  # a*x, sin, square, divide, add
    attributes=lambda d: {"channels_last": d["channels_last"]},
    reference=lambda f, a: [snake_numpy(f["X"], f["alpha"], int(a["channels_last"]))],
    tolerance=SNAKE_TOLERANCE,
    pybind=lambda f, a, threads: [_kernels().snake(f["X"], f["alpha"], channels_last=int(a["channels_last"]),
                                                   threads=threads)],
)


# ---- RMSNorm --------------------------------------------------------------------------------------------------------


def numpy_rms_norm(x: np.ndarray, scale: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * scale).astype(np.float32)


RMS_NORM = OpCase(
    contract.RMS_NORM,
    random_dims=lambda rng: {**_ints(rng, 1, 4, "B"), **_ints(rng, 1, 9, "T"), **_ints(rng, 1, 40, "D")},
    release_dims={"B": 1, "T": 575, "D": 1280},
    make_feeds=lambda rng, d: {"X": _f32(rng, d["B"], d["T"], d["D"]), "scale": _f32(rng, d["D"])},
    flops=lambda d: d["B"] * d["T"] * (4 * d["D"] + 2),  # square, sum, scale twice per element; sqrt, add per row
    reference=lambda f, a: [numpy_rms_norm(f["X"], f["scale"], float(a["epsilon"]))],
    tolerance=Tolerance(rtol=2e-5, atol=2e-6),
    attributes=lambda d: {"epsilon": contract.RMS_NORM.default("epsilon")},
    pybind=lambda f, a, threads: [_kernels().rms_norm(f["X"], f["scale"], float(a["epsilon"]), threads=threads)],
)


# ---- FiLM -----------------------------------------------------------------------------------------------------------


def numpy_film(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return x * (1 + gamma[:, None, :]) + beta[:, None, :]


FILM = OpCase(
    contract.FILM,
    random_dims=lambda rng: _ints(rng, 1, 6, "B", "T", "D"),
    release_dims={"B": 1, "T": 575, "D": 1280},
    make_feeds=lambda rng, d: {"X": _f32(rng, d["B"], d["T"], d["D"]), "gamma": _f32(rng, d["B"], d["D"]),
                               "beta": _f32(rng, d["B"], d["D"])},
    flops=lambda d: d["B"] * d["D"] * (2 * d["T"] + 1),  # 1 + gamma per row; multiply, add per element
    reference=lambda f, a: [numpy_film(f["X"], f["gamma"], f["beta"])],
    tolerance=Tolerance(rtol=1e-6, atol=1e-6),
    pybind=lambda f, a, threads: [_kernels().film(f["X"], f["gamma"], f["beta"], threads=threads)],
)


# ---- CodebookEmbedding ----------------------------------------------------------------------------------------------


def numpy_embedding(codes: np.ndarray, tables: np.ndarray, bias: np.ndarray) -> np.ndarray:
    out = np.broadcast_to(bias.astype(np.float64), (codes.shape[0], codes.shape[2], bias.shape[0])).copy()
    for c in range(codes.shape[1]):
        out += tables[c].astype(np.float64)[codes[:, c, :]]
    return out.astype(np.float32)


CODEBOOK_EMBEDDING = OpCase(
    contract.CODEBOOK_EMBEDDING,
    random_dims=lambda rng: _ints(rng, 1, 6, "B", "C", "T", "V", "D"),
    release_dims={"B": 1, "C": 14, "T": 575, "V": 1024, "D": 1280},
    make_feeds=lambda rng, d: {
        "codes": rng.integers(0, d["V"] + 1, size=(d["B"], d["C"], d["T"])).astype(np.int64),  # MASK = V included
        "tables": _f32(rng, d["C"], d["V"] + 1, d["D"]),
        "bias": _f32(rng, d["D"]),
    },
    flops=lambda d: d["B"] * d["T"] * d["D"] * d["C"],  # one add per codebook per output element (bias included)
    reference=lambda f, a: [numpy_embedding(f["codes"], f["tables"], f["bias"])],
    tolerance=Tolerance(rtol=1e-5, atol=1e-5),
    pybind=lambda f, a, threads: [_kernels().codebook_embedding(f["codes"], f["tables"], f["bias"], threads=threads)],
)


# ---- RelativePositionAttention --------------------------------------------------------------------------------------


def numpy_buckets(t: int, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """T5 bidirectional buckets of key - query, float32 log as upstream (tests/golden/README.md item 10)."""
    rel = np.arange(t)[None, :] - np.arange(t)[:, None]
    half = num_buckets // 2
    exact = half // 2
    out = np.where(rel > 0, half, 0)
    n = np.abs(rel)
    with np.errstate(divide="ignore"):
        ratio = n.astype(np.float32) / np.float32(exact)
        scaled = np.log(ratio) / np.float32(np.log(max_distance / exact)) * np.float32(half - exact)
    large = np.minimum(exact + np.trunc(np.where(n < exact, 0, scaled)).astype(np.int64), half - 1)
    return out + np.where(n < exact, n, large)


def numpy_attention(qkv: np.ndarray, rel_bias: np.ndarray, heads: int, num_buckets: int = 32,
                    max_distance: int = 128) -> np.ndarray:
    """float64 attention with the bias gathered from numpy_buckets."""
    batch, t, packed = qkv.shape
    dim = packed // 3
    dh = dim // heads
    q, k, v = (qkv[..., i * dim:(i + 1) * dim].astype(np.float64).reshape(batch, t, heads, dh).transpose(0, 2, 1, 3)
               for i in range(3))
    bias = rel_bias.astype(np.float64)[numpy_buckets(t, num_buckets, max_distance)].transpose(2, 0, 1)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias
    with np.errstate(invalid="ignore"):
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(-1, keepdims=True)
    return (probs @ v).transpose(0, 2, 1, 3).reshape(batch, t, dim)


def _attention_flops(d: Dims) -> int:
    """QK^T and PV, 2 * T * T * D each per item: the convention of bench_attention.py (the softmax's few operations
    per score, H * T * T, add under 3% at head dim 64 and are left out)."""
    return 4 * d["B"] * d["T"] * d["T"] * d["H"] * d["Dh"]


def _attention_attributes(d: Dims) -> dict[str, object]:
    c = contract.RELATIVE_POSITION_ATTENTION
    return {"num_heads": d["H"], "num_buckets": c.default("num_buckets"), "max_distance": c.default("max_distance")}


def _attention_reference(f: Feeds, a: Mapping[str, object]) -> list[np.ndarray]:
    return [numpy_attention(f["qkv"], f["rel_bias"], int(a["num_heads"]), int(a["num_buckets"]),
                            int(a["max_distance"]))]


RELATIVE_POSITION_ATTENTION = OpCase(
    contract.RELATIVE_POSITION_ATTENTION,
    random_dims=lambda rng: {**_ints(rng, 1, 3, "B"), **_ints(rng, 1, 40, "T"), "H": 4, **_ints(rng, 1, 9, "Dh")},
    release_dims={"B": 1, "T": 575, "H": 20, "Dh": 64},
    make_feeds=lambda rng, d: {
        "qkv": _f32(rng, d["B"], d["T"], 3 * d["H"] * d["Dh"]),
        "rel_bias": _f32(rng, int(contract.RELATIVE_POSITION_ATTENTION.default("num_buckets")), d["H"]),
    },
    flops=_attention_flops,
    # float32 scores up to |q.k| ~ 100 with sharp softmaxes: allow float32 rounding of that size.
    reference=_attention_reference,
    tolerance=Tolerance(rtol=2e-4, atol=5e-5),
    attributes=_attention_attributes,
    pybind=lambda f, a, threads: [_kernels().relative_position_attention(
        f["qkv"], f["rel_bias"], int(a["num_heads"]), int(a["num_buckets"]), int(a["max_distance"]),
        threads=threads)],
)


# ---- RelativePositionAttentionInt8 ----------------------------------------------------------------------------------


def numpy_int8_attention(qkv: np.ndarray, rel_bias: np.ndarray, heads: int, num_buckets: int = 32,
                         max_distance: int = 128) -> np.ndarray:
    """The op's definition in numpy: exact integer products (int64), float64 softmax before the uint8 step
    (written from ops/cpp/relative_position_attention_int8.h)."""
    batch, t, packed = qkv.shape
    dim = packed // 3
    dh = dim // heads
    q, k, v = (qkv[..., i * dim:(i + 1) * dim].reshape(batch, t, heads, dh).transpose(0, 2, 1, 3) for i in range(3))

    def quantize(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        m = np.abs(x).max(axis=axis, keepdims=True)
        scale = np.where(m > 0, m / np.float32(127), np.float32(1)).astype(np.float32)
        return np.clip(np.rint(x * (np.float32(1) / scale)), -127, 127).astype(np.int64), scale

    q8, sq = quantize(q, 3)
    k8, sk = quantize(k, 3)
    v8, sv = quantize(v, 2)
    bias = rel_bias[numpy_buckets(t, num_buckets, max_distance)].transpose(2, 0, 1).astype(np.float64)
    c = (sq * (np.float32(1) / np.sqrt(np.float32(dh)))).astype(np.float32)
    scores = ((q8 @ k8.transpose(0, 1, 3, 2)).astype(np.float64) * (c.astype(np.float64) * sk.transpose(0, 1, 3, 2))
              + bias)
    p8 = np.floor(np.exp(scores - scores.max(-1, keepdims=True)) * 255 + 0.5).astype(np.int64)
    out = (p8 @ v8).astype(np.float64) * sv / p8.sum(-1, keepdims=True)
    return out.transpose(0, 2, 1, 3).reshape(batch, t, dim)


def _int8_attention_reference(f: Feeds, a: Mapping[str, object]) -> list[np.ndarray]:
    return [numpy_int8_attention(f["qkv"], f["rel_bias"], int(a["num_heads"]), int(a["num_buckets"]),
                                 int(a["max_distance"]))]


RELATIVE_POSITION_ATTENTION_INT8 = dataclasses.replace(
    RELATIVE_POSITION_ATTENTION,
    contract=contract.RELATIVE_POSITION_ATTENTION_INT8,
    # The float op's dims, inputs, attributes; FLOPs: the same count (int8 multiply-adds in the two matmuls), so
    # rates compare with the float op directly.
    reference=_int8_attention_reference,
    # numpy's float64 softmax may land a probability on the other side of a uint8 rounding step: up to 2% of the
    # output's largest magnitude (kernel and reference function both; tests/test_relative_position_attention_int8.py)
    tolerance=Tolerance(of_max=2e-2),
    pybind=lambda f, a, threads: [_kernels().relative_position_attention_int8(
        f["qkv"], f["rel_bias"], int(a["num_heads"]), int(a["num_buckets"]), int(a["max_distance"]),
        threads=threads)],
)


# ---- PhiloxUniform --------------------------------------------------------------------------------------------------

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF


def philox_block(counter: tuple[int, ...], key: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Philox4x32-10 in plain Python integers (independent of the C++ and ONNX versions)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = PHILOX_M0 * c0, PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def python_uniforms(seeds: list[int], step: int, predicted: int, time: int) -> np.ndarray:
    """uniforms [2, B, P, T] per the contract, with per-item seeds given explicitly."""
    out = np.empty((2, len(seeds), predicted, time), np.float32)
    for b, seed in enumerate(seeds):
        bits = seed & 0xFFFFFFFFFFFFFFFF  # two's complement
        key = (bits & MASK32, bits >> 32)
        for p in range(predicted):
            for t in range(time):
                for purpose in range(2):
                    word = philox_block((t, p, step, purpose), key)[0]
                    out[purpose, b, p, t] = ((word >> 9) + 0.5) / 2.0**23
    return out


def wrap_int64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def item_seeds(seed: np.ndarray, batch: int) -> list[int]:
    """The per-item seeds of PhiloxUniform's `seed` input: a scalar s gives s, s + 1, ... (wrapping as int64)."""
    if np.ndim(seed) == 0:
        return [wrap_int64(int(seed) + b) for b in range(batch)]
    return [int(s) for s in np.asarray(seed).reshape(-1)]


def _philox_reference(f: Feeds, a: Mapping[str, object]) -> list[np.ndarray]:
    batch, predicted, time = (int(v) for v in f["shape"])
    return [python_uniforms(item_seeds(f["seed"], batch), int(f["step"]), predicted, time)]


PHILOX_UNIFORM = OpCase(
    contract.PHILOX_UNIFORM,
    random_dims=lambda rng: _ints(rng, 1, 5, "B", "P", "T"),
    release_dims={"B": 1, "P": 14, "T": 575},
    make_feeds=lambda rng, d: {
        "seed": np.asarray(int(rng.integers(-(2**63), 2**63 - 1)), np.int64),
        "step": np.asarray(int(rng.integers(0, 40)), np.int64),
        "shape": np.array([d["B"], d["P"], d["T"]], np.int64),
    },
    flops=lambda d: 0,  # 32-bit integer arithmetic only
    reference=_philox_reference,
    tolerance=EXACT,
    pybind=lambda f, a, threads: [_kernels().philox_uniform(f["seed"], int(f["step"]), f["shape"], threads=threads)],
)


# ---- SampleAndRemask ------------------------------------------------------------------------------------------------


def _sample_and_remask_feeds(rng: np.random.Generator, d: Dims) -> Feeds:
    b, p, t, vocab = d["B"], d["P"], d["T"], d["V"]
    c = p + d["conditioning"]
    codes = rng.integers(0, vocab, size=(b, c, t)).astype(np.int64)
    codes[rng.random((b, c, t)) < 0.6] = vocab  # MASK
    num_steps = int(rng.integers(1, 6))
    scalar = lambda v, dt: np.asarray(v, dt)  # noqa: E731
    return {
        "logits": _f32(rng, b, p, t, vocab),
        "codes": codes,
        "start_codes": np.where(codes == vocab, 0, codes),
        "n0": (codes == vocab).sum(axis=(1, 2)).astype(np.int64),
        "step": scalar(int(rng.integers(0, num_steps)), np.int64),
        "num_steps": scalar(num_steps, np.int64),
        "uniforms": rng.uniform(0.01, 0.99, size=(2, b, p, t)).astype(np.float32),
        "temperature": scalar(rng.choice([0.0, 0.7, 1.0]), np.float32),
        "mask_temperature": scalar(rng.choice([0.0, 10.5]), np.float32),
        "top_p": scalar(rng.choice([0.0, 0.9]), np.float32),
        "top_k": scalar(int(rng.integers(0, 4)), np.int64),
        "typical_mass": scalar(rng.choice([0.0, 0.15]), np.float32),
        "typical_min_tokens": scalar(int(rng.integers(1, 4)), np.int64),
        "sample_cutoff": scalar(rng.choice([-1.0, 1.0]), np.float32),
    }


_SAMPLE_INT_SCALARS = ("step", "num_steps", "top_k", "typical_min_tokens")
_SAMPLE_FLOAT_SCALARS = ("temperature", "mask_temperature", "top_p", "typical_mass", "sample_cutoff")


def sample_and_remask_pybind(feeds: Mapping[str, np.ndarray], threads: int = 1) -> Sequence[np.ndarray]:
    """The numpy entry point (scalars as Python numbers) on op feeds."""
    args: dict[str, object] = dict(feeds)
    for name in _SAMPLE_INT_SCALARS:
        args[name] = int(feeds[name])
    for name in _SAMPLE_FLOAT_SCALARS:
        args[name] = float(feeds[name])
    return _kernels().sample_and_remask(**args, threads=threads)


SAMPLE_AND_REMASK = OpCase(
    contract.SAMPLE_AND_REMASK,
    random_dims=lambda rng: {**_ints(rng, 1, 4, "B", "P", "T"), **_ints(rng, 0, 3, "conditioning"),
                             **_ints(rng, 2, 9, "V")},
    release_dims={"B": 1, "P": 10, "T": 575, "conditioning": 4, "V": 1024},  # the c2f model's step
    make_feeds=_sample_and_remask_feeds,
    # Per position: a softmax of V logits at the temperature (divide, max, subtract, exp, sum, divide).
    flops=lambda d: 6 * d["B"] * d["P"] * d["T"] * d["V"],
    reference=None,
    reference_note=("no numpy model: kernel == reference function bit for bit, and upstream's golden sampling data "
                    "and generate traces (tests/test_sample_and_remask.py)"),
    tolerance=EXACT,
    pybind=lambda f, a, threads: sample_and_remask_pybind(f, threads),
)


# ---- DynamicQuantizeIm2Col ------------------------------------------------------------------------------------------


def dynamic_quantize_linear_numpy(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """ONNX DynamicQuantizeLinear (uint8) in float32 numpy, with ONNX Runtime's CPU conventions: the range includes
    0; scale = (max - min) / 255, or 1 when max == min; zero point = round-half-even(clamp(0 - min / scale, 0,
    255)) with std::min/std::max's NaN behaviour (a NaN start gives 255); values round-half-even(x / scale) clamped
    to [-zp, 255 - zp] as MLAS's max/min do (a NaN quotient, 0 / 0 for an underflowed scale, gives -zp), plus zp."""
    f32 = np.float32
    lo = min(f32(np.min(x)), f32(0.0)) if x.size else f32(0.0)
    hi = max(f32(np.max(x)), f32(0.0)) if x.size else f32(0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = f32(1.0) if hi == lo else f32((hi - lo) / f32(255.0))
        start = f32(f32(0.0) - f32(lo / scale))
        start = start if start < f32(255.0) else f32(255.0)  # std::min(255, start): NaN -> 255
        start = start if f32(0.0) < start else f32(0.0)  # std::max(0, start)
        zero_point = np.uint8(np.round(start))
        v = (x / scale).astype(np.float32)
        v = np.where(v > -f32(zero_point), v, -f32(zero_point))  # MLAS max: NaN -> the bound
        v = np.where(v < f32(255) - f32(zero_point), v, f32(255) - f32(zero_point))
        q = np.round(v) + f32(zero_point)
    return q.astype(np.uint8), scale, zero_point


def dynamic_quantize_im2col_numpy(x: np.ndarray, kernel_size: int, dilation: int, padding: int) -> list[np.ndarray]:
    """Y[b, t, j*C + c] = q(X[b, t + j*dilation - padding, c]), the zero point outside [0, L)."""
    q, scale, zero_point = dynamic_quantize_linear_numpy(x)
    batch, length, channels = x.shape
    padded = np.full((batch, length + 2 * padding, channels), zero_point, np.uint8)
    padded[:, padding:padding + length] = q
    out_length = length + 2 * padding - dilation * (kernel_size - 1)
    taps = [padded[:, j * dilation:j * dilation + out_length] for j in range(kernel_size)]
    y = np.concatenate(taps, axis=2)
    return [y, np.array(scale, np.float32), np.array(zero_point, np.uint8)]


def _im2col_dims(rng: np.random.Generator) -> dict[str, int]:
    dims = {**_ints(rng, 1, 3, "B"), **_ints(rng, 1, 9, "C"), **_ints(rng, 1, 12, "kernel_size"),
            **_ints(rng, 1, 5, "dilation")}
    dims["padding"] = int(rng.integers(0, dims["dilation"] * (dims["kernel_size"] - 1) // 2 + 2))
    span = dims["dilation"] * (dims["kernel_size"] - 1) - 2 * dims["padding"]  # L_out = L - span >= 1
    dims["L"] = int(rng.integers(max(1, span + 1), max(1, span + 1) + 40))
    return dims


DYNAMIC_QUANTIZE_IM2COL = OpCase(
    contract.DYNAMIC_QUANTIZE_IM2COL,
    random_dims=_im2col_dims,
    # a 192-channel decoder level's k=7, dilation 3 conv over one 512-frame decode chunk
    release_dims={"B": 1, "C": 192, "L": 131072, "kernel_size": 7, "dilation": 3, "padding": 9},
    make_feeds=lambda rng, d: {"X": (rng.standard_normal((d["B"], d["L"], d["C"])) * rng.uniform(0.1, 10)
                                     + rng.uniform(-1, 1)).astype(np.float32)},
    flops=lambda d: 2 * d["B"] * d["L"] * d["C"],  # a divide and a round per element (the rest is data movement)
    attributes=lambda d: {"kernel_size": d["kernel_size"], "dilation": d["dilation"], "padding": d["padding"]},
    reference=lambda f, a: dynamic_quantize_im2col_numpy(f["X"], int(a["kernel_size"]), int(a["dilation"]),
                                                         int(a["padding"])),
    tolerance=EXACT,
    pybind=lambda f, a, threads: list(_kernels().dynamic_quantize_im2col(
        f["X"], int(a["kernel_size"]), int(a["dilation"]), int(a["padding"]), threads=threads)),
)


def _kernels():
    """The pybind module, imported when a pybind check runs (the fuzzer and the table itself need only numpy)."""
    from vampnet_ort import _kernels as kernels

    return kernels


# Every op's case, keyed by contract name (tests/test_contract.py: one per contract).
CASES: dict[str, OpCase] = {case.name: case for case in (
    SNAKE, RMS_NORM, FILM, CODEBOOK_EMBEDDING, RELATIVE_POSITION_ATTENTION, RELATIVE_POSITION_ATTENTION_INT8,
    PHILOX_UNIFORM, SAMPLE_AND_REMASK, DYNAMIC_QUANTIZE_IM2COL,
)}
