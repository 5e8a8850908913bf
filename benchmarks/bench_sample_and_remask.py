"""Benchmark one decode step (sampling + re-masking): SampleAndRemask kernel vs the same step in numpy on the host
vs the inlined reference function (ONNX Runtime without the op library).

Shapes: the coarse chunk (B=1, C=P=4, T=575, V=1024) and the c2f chunk (B=1, C=14, P=10, T=173, V=1024), every
predicted position masked (step 0: the most sampling work). Two settings: plain sampling (temperature 1,
mask_temperature 10.5, sample_cutoff 1) and the same with typical filtering (mass 0.15, min 64 tokens) and top-p 0.9.
Prints best (and median) times and ratios of the best times measured side by side in one run; "differ" counts output codes where the kernel and
the reference function disagree (float-rounding boundaries of the inverse CDF only).

    python benchmarks/bench_sample_and_remask.py [--repeats 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto

import vampnet_ort
from vampnet_ort import _kernels, ops

INPUTS = [
    ("logits", TensorProto.FLOAT, ["B", "P", "T", "V"]),
    ("codes", TensorProto.INT64, ["B", "C", "T"]),
    ("start_codes", TensorProto.INT64, ["B", "C", "T"]),
    ("n0", TensorProto.INT64, ["B"]),
    ("step", TensorProto.INT64, []),
    ("num_steps", TensorProto.INT64, []),
    ("uniforms", TensorProto.FLOAT, [2, "B", "P", "T"]),
    ("temperature", TensorProto.FLOAT, []),
    ("mask_temperature", TensorProto.FLOAT, []),
    ("top_p", TensorProto.FLOAT, []),
    ("top_k", TensorProto.INT64, []),
    ("typical_mass", TensorProto.FLOAT, []),
    ("typical_min_tokens", TensorProto.INT64, []),
    ("sample_cutoff", TensorProto.FLOAT, []),
]
OUTPUTS = [("next_codes", TensorProto.INT64, ["B", "C", "T"]), ("sampled", TensorProto.INT64, ["B", "C", "T"])]


def step_model() -> onnx.ModelProto:
    return ops.single_op_model("SampleAndRemask", INPUTS, OUTPUTS)


def make_feeds(codebooks: int, predicted: int, time_: int, vocab: int, filters: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((1, predicted, time_, vocab)) * 2.0).astype(np.float32)
    start = rng.integers(0, vocab, (1, codebooks, time_))
    codes = start.copy()
    codes[:, codebooks - predicted :] = vocab
    uniforms = _kernels.philox_uniform(np.array(7, np.int64), 0, np.array([1, predicted, time_]))
    f32, i64 = np.float32, np.int64
    return {
        "logits": logits, "codes": codes, "start_codes": start, "n0": (codes == vocab).sum(axis=(1, 2)),
        "step": np.array(0, i64), "num_steps": np.array(12, i64), "uniforms": uniforms,
        "temperature": np.array(1.0, f32), "mask_temperature": np.array(10.5, f32),
        "top_p": np.array(0.9 if filters else 0.0, f32), "top_k": np.array(0, i64),
        "typical_mass": np.array(0.15 if filters else 0.0, f32), "typical_min_tokens": np.array(64, i64),
        "sample_cutoff": np.array(1.0, f32),
    }  # fmt: skip


def numpy_step(f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same step as a host-side numpy implementation would do it (softmax, sorts, inverse-CDF sampling)."""
    logits = f["logits"]
    vocab = logits.shape[-1]
    codes, start = f["codes"], f["start_codes"]
    predicted = logits.shape[1]
    conditioning = codes.shape[1] - predicted
    current = codes[:, conditioning:]
    masked = current == vocab
    x = logits.copy()
    if 0 < f["typical_mass"] < 1:
        log_p = x - x.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        p = np.exp(log_p)
        entropy = -(p * log_p).sum(-1, keepdims=True)
        gap = np.abs(-log_p - entropy)
        order = np.argsort(gap, axis=-1)
        cum = np.cumsum(np.take_along_axis(p, order, -1), -1)
        last = (cum < f["typical_mass"]).sum(-1, keepdims=True)
        last = np.minimum(np.maximum(last, f["typical_min_tokens"] - 1), vocab - 1)
        threshold = np.take_along_axis(np.take_along_axis(gap, order, -1), last, -1)
        x = np.where(gap > threshold, -np.inf, x).astype(np.float32)
    if 0 < f["top_p"] < 1:
        order = np.argsort(-x, axis=-1)
        sorted_x = np.take_along_axis(x, order, -1)
        e = np.exp(sorted_x - sorted_x[..., :1])
        cum = np.cumsum(e / e.sum(-1, keepdims=True), -1)
        remove = np.zeros_like(cum, bool)
        remove[..., 1:] = cum[..., :-1] > f["top_p"]
        np.put_along_axis(x, order, np.where(remove, -np.inf, sorted_x), -1)
    tau = float(f["temperature"])
    s = x / tau
    w = np.exp(s - s.max(-1, keepdims=True))
    total = w.sum(-1, keepdims=True)
    cdf = np.cumsum(w, -1)
    token = np.minimum((cdf <= f["uniforms"][0][..., None] * total).sum(-1), vocab - 1)
    p_sel = np.take_along_axis(w, token[..., None], -1)[..., 0] / total[..., 0]
    sampled_pred = np.where(masked, token, current)
    r = np.float32(f["step"] + 1) / np.float32(f["num_steps"])
    gamma = np.clip(np.cos(r * np.float32(np.pi) / np.float32(2)), 1e-10, 1)
    k = np.floor(gamma * f["n0"].astype(np.float32)).astype(np.int64)
    if f["step"] != f["num_steps"] - 1:
        k = np.maximum(1, np.minimum(masked.sum((1, 2)) - 1, k))
    gumbel = -np.log(-np.log(f["uniforms"][1]))
    confidence = np.where(masked, np.log(p_sel) + f["mask_temperature"] * (1 - r) * gumbel, np.inf)
    flat = confidence.reshape(confidence.shape[0], -1)
    cutoff = np.take_along_axis(np.sort(flat, -1), k[:, None], -1)
    remask = (flat < cutoff).reshape(confidence.shape)
    next_pred = np.where(remask, vocab, sampled_pred)
    fixed = start[:, :conditioning]
    return np.concatenate([fixed, next_pred], 1), np.concatenate([fixed, sampled_pred], 1)


def best_and_median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = step_model().SerializeToString()
    native = vampnet_ort.create_session(model, with_library=True, intra_op_threads=args.threads)
    inlined = vampnet_ort.create_session(model, with_library=False, intra_op_threads=args.threads)
    print(f"SampleAndRemask, one decode step, {args.threads} intra-op threads; best (median) of {args.repeats} runs")
    print(f"{'case':<30}{'op ms':>16}{'numpy ms':>16}{'ref fn ms':>18}{'numpy/op':>10}{'ref/op':>8}{'differ':>8}")
    for name, (codebooks, predicted, time_) in {"coarse P=4 T=575": (4, 4, 575), "c2f P=10 T=173": (14, 10, 173)}.items():
        for filters in (False, True):
            feeds = make_feeds(codebooks, predicted, time_, 1024, filters)
            op_out = native.run(None, feeds)
            ref_out = inlined.run(None, feeds)
            np_out = numpy_step(feeds)
            same_tokens = float(np.mean(op_out[1] == np_out[1]))
            differ = sum(int((a != b).sum()) for a, b in zip(op_out, ref_out))
            op = best_and_median_seconds(lambda: native.run(None, feeds), args.repeats)
            host = best_and_median_seconds(lambda: numpy_step(feeds), max(3, args.repeats // 2))
            ref = best_and_median_seconds(lambda: inlined.run(None, feeds), max(3, args.repeats // 4))

            def cell(t: tuple[float, float]) -> str:
                return f"{t[0] * 1e3:.2f} ({t[1] * 1e3:.2f})"

            label = f"{name} {'typical+top-p' if filters else 'plain'}"
            print(
                f"{label:<30}{cell(op):>16}{cell(host):>16}{cell(ref):>18}{host[0] / op[0]:10.1f}"
                f"{ref[0] / op[0]:8.1f}{differ:>8}"
            )
            print(f"{'':<30}(sampled tokens identical to numpy's: {same_tokens:.4%})")


if __name__ == "__main__":
    main()
