"""SampleAndRemask: upstream golden data, generate traces through the op, kernel == reference function,
statistics of the sampling, determinism and bad inputs."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from onnx import TensorProto
from scipy import stats

from op_cases import sample_and_remask_pybind
from op_testing import GOLDEN, NP_TO_ONNX, golden, native_error, op_model, run_both, run_native
from vampnet_ort import _kernels, ops

V = 1024
FLOAT_INPUTS = ("temperature", "mask_temperature", "top_p", "typical_mass", "sample_cutoff")
INPUT_ORDER = (
    "logits", "codes", "start_codes", "n0", "step", "num_steps", "uniforms", "temperature", "mask_temperature",
    "top_p", "top_k", "typical_mass", "typical_min_tokens", "sample_cutoff",
)  # fmt: skip


def step_feeds(logits, codes, start_codes=None, n0=None, *, step=0, num_steps=1, uniforms=None, temperature=1.0,
               mask_temperature=0.0, top_p=0.0, top_k=0, typical_mass=0.0, typical_min_tokens=0,
               sample_cutoff=-1.0) -> dict[str, np.ndarray]:  # fmt: skip
    logits = np.ascontiguousarray(logits, np.float32)
    codes = np.asarray(codes, np.int64)
    if start_codes is None:
        start_codes = codes
    if n0 is None:
        n0 = (codes == logits.shape[-1]).sum(axis=(1, 2))
    if uniforms is None:
        uniforms = np.full((2, *logits.shape[:3]), 0.5, np.float32)
    feeds = {
        "logits": logits, "codes": codes, "start_codes": np.asarray(start_codes, np.int64),
        "n0": np.asarray(n0, np.int64), "step": np.array(step, np.int64),
        "num_steps": np.array(num_steps, np.int64), "uniforms": np.asarray(uniforms, np.float32),
        "temperature": temperature, "mask_temperature": mask_temperature, "top_p": top_p,
        "top_k": np.array(top_k, np.int64), "typical_mass": typical_mass,
        "typical_min_tokens": np.array(typical_min_tokens, np.int64), "sample_cutoff": sample_cutoff,
    }  # fmt: skip
    for name in FLOAT_INPUTS:
        feeds[name] = np.array(feeds[name], np.float32)
    return {name: feeds[name] for name in INPUT_ORDER}


@lru_cache(maxsize=None)
def step_model(logits_rank: int = 4):
    feeds = step_feeds(np.zeros((1,) * (logits_rank - 1) + (2,)), np.zeros((1, 1, 1)))
    if logits_rank != 4:  # an ill-formed model (the reference function cannot type-check); the kernel must refuse
        inputs = [(name, NP_TO_ONNX[v.dtype], [f"{name}_{i}" for i in range(v.ndim)]) for name, v in feeds.items()]
        outputs = [("next_codes", TensorProto.INT64, ["B", "C", "T"]), ("sampled", TensorProto.INT64, ["B", "C", "T"])]
        return ops.single_op_model("SampleAndRemask", inputs, outputs)
    return op_model(
        "SampleAndRemask", feeds,
        [("next_codes", TensorProto.INT64, ["B", "C", "T"]), ("sampled", TensorProto.INT64, ["B", "C", "T"])],
    )  # fmt: skip


def run_step(feeds, threads=2):
    return run_native(step_model(), feeds, threads=threads)


def pybind_step(feeds, threads=1):
    return sample_and_remask_pybind(feeds, threads)


def logits_with_argmax_prob(tokens: np.ndarray, probs: np.ndarray, vocab: int, temperature: float = 1.0):
    """Logits [..., vocab] whose softmax(./temperature) puts `probs` on `tokens` and spreads the rest evenly."""
    probs = probs.astype(np.float64)
    assert np.all(probs > 1.0 / vocab), "the token must stay the argmax"
    rest = np.log((1.0 - probs) / (vocab - 1))
    logits = np.repeat(rest[..., None], vocab, axis=-1)
    np.put_along_axis(logits, tokens[..., None], np.log(probs)[..., None], axis=-1)
    return (logits * temperature).astype(np.float32)


def golden_gamma_half() -> np.float32:
    """gamma(r = 1/2) as golden/sampling.npz records it (S = 6, step 2)."""
    g = golden("sampling.npz")
    assert g["gamma_S6_r"][2] == np.float32(0.5)
    return g["gamma_S6"][2]


# ---- golden/sampling.npz ------------------------------------------------------------------------------------------


def test_golden_argmax_tokens_and_probs():
    g = golden("sampling.npz")
    rows = g["logits"].reshape(-1, V)
    u = np.full(len(rows), 0.5, np.float32)
    for tau, name in [(1.0, "t1"), (0.7, "t0p7")]:
        tokens, probs = _kernels.sample_rows(rows, u, tau, 0.0, 0, 0.0, 0, False)
        np.testing.assert_array_equal(tokens, g[f"sfl_{name}_tokens"].ravel())
        np.testing.assert_allclose(probs, g[f"sfl_{name}_probs"].ravel(), rtol=0, atol=1e-6)
    # Typical filtering is a no-op upstream; with it off we give upstream's probabilities.
    np.testing.assert_allclose(
        _kernels.sample_rows(rows, u, 1.0, 0.0, 0, 0.0, 0, False)[1], g["sfl_typical_probs"].ravel(), atol=1e-6
    )


def test_golden_top_p():
    g = golden("sampling.npz")
    rows = g["logits"].reshape(-1, V)
    u = np.full(len(rows), 0.5, np.float32)
    tokens, probs = _kernels.sample_rows(rows, u, 1.0, 0.9, 0, 0.0, 0, False)
    np.testing.assert_array_equal(tokens, g["sfl_topp0p9_tokens"].ravel())
    np.testing.assert_allclose(probs, g["sfl_topp0p9_probs"].ravel(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(_kernels.filter_rows(rows, 0.9, 0, 0.0, 0), g["sfl_topp0p9_logits_after"].reshape(-1, V))


def test_golden_typical_filter_really_filters():
    g = golden("sampling.npz")
    rows = g["logits"].reshape(-1, V)
    filtered = _kernels.filter_rows(rows, 0.0, 0, 0.15, 64)
    expected = g["typical_filter_out"].reshape(-1, V)
    np.testing.assert_array_equal(filtered, expected)
    assert np.isinf(filtered).sum() > rows.size // 2  # it removes most of the vocabulary


@pytest.mark.parametrize("case", ["a", "b", "c", "ties"])
def test_golden_mask_by_random_topk(case):
    g = golden("sampling.npz")
    probs = g["topk_ties_probs"] if case == "ties" else g["topk_probs"]
    num_to_mask = g[f"topk_{case}_num_to_mask"].ravel()
    mask = _kernels.remask_rows(np.log(probs), num_to_mask)
    np.testing.assert_array_equal(mask, g[f"topk_{case}_mask"])
    # Through the op: the masked positions get logits whose softmax gives these probabilities.
    for row in range(probs.shape[0]):
        k = int(num_to_mask[row])
        masked = np.isfinite(probs[row])
        if k == 0:
            step, num_steps, n0 = 0, 1, 0  # the last step: gamma = 1e-10, k = 0
        elif k <= masked.sum() - 1:
            step, num_steps = 0, 2  # k = max(1, min(masked - 1, floor(gamma(1/2) * n0)))
            n0 = next(n for n in range(4 * k + 4) if _kernels.schedule_num_to_mask(0, 2, n, int(masked.sum())) == k)
        else:
            continue  # k = masked count (case c) is not a schedule value the decode can produce
        assert _kernels.schedule_num_to_mask(step, num_steps, n0, int(masked.sum())) == k
        n = probs.shape[1]
        p = np.where(masked, probs[row], 0.5)
        logits = logits_with_argmax_prob(np.zeros(n, np.int64), p, V)[None, None]
        codes = np.where(masked, V, 7)[None, None]
        next_codes, sampled = run_step(step_feeds(logits, codes, n0=[n0], step=step, num_steps=num_steps))
        np.testing.assert_array_equal(next_codes[0, 0] == V, g[f"topk_{case}_mask"][row])
        np.testing.assert_array_equal(sampled[0, 0], np.where(masked, 0, 7))


@pytest.mark.parametrize("num_steps", [1, 3, 6, 8, 12, 24])
def test_golden_gamma_schedule(num_steps):
    g = golden("sampling.npz")
    gammas = np.array([_kernels.schedule_gamma(i, num_steps) for i in range(num_steps)], np.float32)
    np.testing.assert_array_equal(gammas, g[f"gamma_S{num_steps}"])
    r = (np.arange(num_steps, dtype=np.float32) + 1) / np.float32(num_steps)
    np.testing.assert_array_equal(r, g[f"gamma_S{num_steps}_r"])


@pytest.mark.parametrize(
    "temperature,top_p,name", [(1.0, 0.0, "t1"), (0.7, 0.0, "t0p7"), (1.0, 0.9, "topp0p9")]
)
def test_golden_through_op(temperature, top_p, name):
    """Argmax tokens exact, and the re-mask picks exactly the lowest-probability positions by golden probs."""
    g = golden("sampling.npz")
    logits = g["logits"][:, None]  # [2, 1, 50, V]: B=2, P=1, T=50
    codes = np.full((2, 1, 50), V)
    feeds = step_feeds(logits, codes, n0=[50, 50], step=0, num_steps=2, temperature=temperature, top_p=top_p)
    next_codes, sampled = run_step(feeds)
    np.testing.assert_array_equal(sampled[:, 0], g[f"sfl_{name}_tokens"])
    k = int(np.floor(golden_gamma_half() * np.float32(50)))  # 35 < 50 - 1
    probs = g[f"sfl_{name}_probs"]
    cutoff = np.sort(np.log(probs), axis=1)[:, k : k + 1]
    np.testing.assert_array_equal(next_codes[:, 0] == V, np.log(probs) < cutoff)
    np.testing.assert_array_equal(next_codes[:, 0], np.where(np.log(probs) < cutoff, V, sampled[:, 0]))
    # The numpy entry point runs the same kernel.
    for a, b in zip(pybind_step(feeds), (next_codes, sampled)):
        np.testing.assert_array_equal(a, b)


# ---- golden/generate.npz traces -----------------------------------------------------------------------------------


def deterministic_runs() -> list[str]:
    runs = json.loads((GOLDEN / "manifest.json").read_text())["generate_runs"]
    return [name for name, run in runs.items() if isinstance(run, dict) and not run["rng_dependent"]]


@pytest.mark.parametrize("run", deterministic_runs())
def test_generate_trace_steps_through_op(run):
    g = golden("generate.npz")
    call = json.loads((GOLDEN / "manifest.json").read_text())["generate_runs"][run]["call"]
    temperature = 0.8 if "temperature=0.8" in call else 1.0
    start = g[f"{run}__start_tokens"]
    codes_in = g[f"{run}__trace_codes_in"]
    num_steps, batch, codebooks, time = codes_in.shape
    predicted = g[f"{run}__trace_sampled"].shape[-1] // time
    # Upstream counts N0 over the whole batch; the op takes N0 per item, so give each item the batch total.
    n0 = np.full(batch, (codes_in[0] == V).sum())
    for i in range(num_steps):
        topk_probs = g[f"{run}__trace_topk_probs"][i].reshape(batch, time, predicted).transpose(0, 2, 1)
        tokens = g[f"{run}__trace_sampled"][i].reshape(batch, time, predicted).transpose(0, 2, 1)
        masked = np.isfinite(topk_probs)
        np.testing.assert_array_equal(masked, codes_in[i][:, codebooks - predicted :] == V)
        probs = np.where(masked, topk_probs, 0.5)
        logits = logits_with_argmax_prob(np.where(masked, tokens, 0), probs, V, temperature)
        feeds = step_feeds(logits, codes_in[i], start, n0, step=i, num_steps=num_steps, temperature=temperature)
        next_codes, sampled = run_step(feeds)
        # Schedule and re-mask decision.
        for b in range(batch):
            k = _kernels.schedule_num_to_mask(i, num_steps, int(n0[b]), int(masked[b].sum()))
            assert k == g[f"{run}__trace_num_to_mask"][i, b, 0]
        new_mask = g[f"{run}__trace_new_mask"][i].reshape(batch, time, predicted).transpose(0, 2, 1)
        np.testing.assert_array_equal(next_codes[:, codebooks - predicted :] == V, new_mask)
        # Token bookkeeping: conditioning from the start tokens, sampled tokens merged into the codes.
        expected_sampled = np.concatenate(
            [start[:, : codebooks - predicted], np.where(masked, tokens, codes_in[i][:, codebooks - predicted :])],
            axis=1,
        )
        np.testing.assert_array_equal(sampled, expected_sampled)
        if i + 1 < num_steps:
            np.testing.assert_array_equal(next_codes, codes_in[i + 1])
        else:
            np.testing.assert_array_equal(sampled, g[f"{run}__output"])


# ---- kernel == reference function ---------------------------------------------------------------------------------


def random_case(rng, batch=2, codebooks=5, predicted=3, time=40, vocab=64, masked_fraction=0.6):
    logits = (rng.standard_normal((batch, predicted, time, vocab)) * 2.5).astype(np.float32)
    start = rng.integers(0, vocab, (batch, codebooks, time))
    codes = start.copy()
    codes[:, codebooks - predicted :][rng.random((batch, predicted, time)) < masked_fraction] = vocab
    n0 = (codes == vocab).sum(axis=(1, 2)) + rng.integers(0, 5, batch)
    return logits, codes, start, n0


SETTINGS = [
    dict(),
    dict(temperature=0.7, mask_temperature=3.0, sample_cutoff=1.0),
    dict(temperature=1.3, mask_temperature=10.5, sample_cutoff=0.5, step=1, num_steps=3),
    dict(temperature=1.0, mask_temperature=1.0, sample_cutoff=1.0, top_k=5),
    dict(temperature=0.9, mask_temperature=0.5, sample_cutoff=1.0, top_p=0.8),
    dict(temperature=1.0, mask_temperature=2.0, sample_cutoff=1.0, typical_mass=0.3, typical_min_tokens=4),
    dict(temperature=1.0, mask_temperature=2.0, sample_cutoff=1.0, typical_mass=0.5, typical_min_tokens=1,
         top_k=20, top_p=0.9),  # fmt: skip
    dict(temperature=0.0, mask_temperature=1.0, sample_cutoff=1.0, step=2, num_steps=3),
    dict(temperature=-1.0, top_p=0.7, step=0, num_steps=12),
]


@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_kernel_matches_reference_function(setting):
    rng = np.random.default_rng(100 + setting)
    logits, codes, start, n0 = random_case(rng)
    options = dict(step=1, num_steps=4) | SETTINGS[setting]
    uniforms = _kernels.philox_uniform(np.array(setting, np.int64), options["step"], np.array(logits.shape[:3]))
    feeds = step_feeds(logits, codes, start, n0, uniforms=uniforms, **options)
    native, reference = run_both(step_model(), feeds)
    for a, b in zip(native, reference):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(pybind_step(feeds, threads=2), native):
        np.testing.assert_array_equal(a, b)
    remasked = (native[0] == 64).sum()
    assert 0 < remasked < (codes == 64).sum() or options["step"] == options["num_steps"] - 1


# ---- statistics ---------------------------------------------------------------------------------------------------


def draws(row: np.ndarray, count: int, seed: int, **options) -> np.ndarray:
    """`count` sampled tokens for one logits row (one per frame, Philox uniforms)."""
    vocab = row.size
    logits = np.broadcast_to(row.astype(np.float32), (1, 1, count, vocab))
    codes = np.full((1, 1, count), vocab)
    uniforms = _kernels.philox_uniform(np.array(seed, np.int64), 0, np.array([1, 1, count]))
    feeds = step_feeds(logits, codes, uniforms=uniforms, sample_cutoff=1.0, **options)
    next_codes, sampled = run_step(feeds)
    np.testing.assert_array_equal(next_codes, sampled)  # single step: nothing re-masked
    return sampled.ravel()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x[np.isfinite(x)].max())
    return e / e.sum()


def assert_frequencies(tokens: np.ndarray, probs: np.ndarray) -> None:
    counts = np.bincount(tokens, minlength=probs.size)
    assert counts[probs == 0].sum() == 0, "a filtered token was emitted"
    keep = probs > 0
    result = stats.chisquare(counts[keep], probs[keep] * tokens.size)
    assert result.pvalue > 1e-4, (counts, probs * tokens.size)


ROW = np.array([1.5, -0.3, 0.2, 2.1, -1.0, 0.9, 0.0, 1.2, -2.0, 0.5, 1.9, -0.5], np.float32)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.8])
def test_sampling_frequencies_match_softmax(temperature):
    tokens = draws(ROW, 20000, seed=int(temperature * 10), temperature=temperature)
    assert_frequencies(tokens, softmax(ROW.astype(np.float64) / temperature))


def numpy_top_p_keep(row: np.ndarray, top_p: float) -> np.ndarray:
    order = np.argsort(-row, kind="stable")
    cum = np.cumsum(softmax(row.astype(np.float64))[order])
    last = int(np.argmax(cum > top_p))
    keep = np.zeros(row.size, bool)
    keep[order[: last + 1]] = True
    return keep


def numpy_typical_keep(row: np.ndarray, mass: float, min_tokens: int) -> np.ndarray:
    logp = np.log(softmax(row.astype(np.float64)))
    entropy = -(np.exp(logp) * logp).sum()
    gap = np.abs(-logp - entropy)
    order = np.argsort(gap, kind="stable")
    cum = np.cumsum(np.exp(logp)[order])
    last = int((cum < mass).sum())
    threshold = gap[order[min(max(last, min_tokens - 1), row.size - 1)]]
    return gap <= threshold


@pytest.mark.parametrize(
    "options,keep",
    [
        (dict(top_k=4), np.argsort(-ROW)[:4]),
        (dict(top_p=0.6), np.nonzero(numpy_top_p_keep(ROW, 0.6))[0]),
        (dict(typical_mass=0.3, typical_min_tokens=2), np.nonzero(numpy_typical_keep(ROW, 0.3, 2))[0]),
        (dict(typical_mass=0.2, typical_min_tokens=5), np.nonzero(numpy_typical_keep(ROW, 0.2, 5))[0]),
    ],
)
def test_filters_never_emit_filtered_tokens(options, keep):
    assert 1 < keep.size < ROW.size
    temperature = 0.8
    tokens = draws(ROW, 12000, seed=7, temperature=temperature, **options)
    probs = np.zeros(ROW.size)
    probs[keep] = softmax(ROW[keep].astype(np.float64) / temperature)
    assert_frequencies(tokens, probs)


def test_gumbel_noise_statistics():
    u = _kernels.philox_uniform(np.array(99, np.int64), 4, np.array([2, 10, 5000]))[1].ravel()
    gumbel = -np.log(-np.log(u.astype(np.float64)))
    standard_error = np.sqrt(np.pi**2 / 6 / gumbel.size)
    assert abs(gumbel.mean() - np.euler_gamma) < 5 * standard_error
    assert abs(gumbel.var() - np.pi**2 / 6) < 0.05
    assert stats.kstest(gumbel, "gumbel_r").pvalue > 1e-3


def test_remask_uses_gumbel_noise_from_uniforms():
    """confidence = log p + mask_temperature * (1 - r) * g with g = -log(-log(uniforms[1]))."""
    rng = np.random.default_rng(5)
    batch, predicted, time = 2, 4, 50
    logits = (rng.standard_normal((batch, predicted, time, 16)) * 1.5).astype(np.float32)
    codes = np.full((batch, predicted, time), 16)
    uniforms = _kernels.philox_uniform(np.array([3, 4], np.int64), 2, np.array([batch, predicted, time]))
    feeds = step_feeds(logits, codes, uniforms=uniforms, step=2, num_steps=12, mask_temperature=6.0)
    next_codes, sampled = run_step(feeds)
    r = np.float32(3) / np.float32(12)
    log_p = np.log(np.take_along_axis(softmax_last(logits), sampled[..., None], -1)[..., 0])
    confidence = log_p + np.float32(6.0) * (1 - r) * -np.log(-np.log(uniforms[1].astype(np.float64)))
    for b in range(batch):
        k = _kernels.schedule_num_to_mask(2, 12, predicted * time, predicted * time)
        cutoff = np.sort(confidence[b].ravel())[k]
        np.testing.assert_array_equal(next_codes[b] == 16, confidence[b] < cutoff)
    assert not np.array_equal(next_codes, run_step(step_feeds(logits, codes, uniforms=uniforms, step=2, num_steps=12))[0])


def softmax_last(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---- determinism --------------------------------------------------------------------------------------------------


def test_same_seed_same_result_threads_and_batch_composition():
    rng = np.random.default_rng(11)
    logits, codes, start, _ = random_case(rng, batch=3, predicted=4, time=120, vocab=128)
    n0 = (codes == 128).sum(axis=(1, 2))
    seeds = np.array([1001, 2002, 3003], np.int64)
    options = dict(step=0, num_steps=6, temperature=1.0, mask_temperature=10.5, sample_cutoff=1.0, typical_mass=0.3,
                   typical_min_tokens=8)  # fmt: skip
    uniforms = _kernels.philox_uniform(seeds, 0, np.array([3, 4, 120]))
    feeds = step_feeds(logits, codes, start, n0, uniforms=uniforms, **options)
    one, two = run_step(feeds, threads=1), run_step(feeds, threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    alone_uniforms = _kernels.philox_uniform(seeds[1:2], 0, np.array([1, 4, 120]))
    alone = run_step(step_feeds(logits[1:2], codes[1:2], start[1:2], n0[1:2], uniforms=alone_uniforms, **options))
    for a, b in zip(alone, one):
        np.testing.assert_array_equal(a[0], b[1])
    other_uniforms = _kernels.philox_uniform(seeds + 1, 0, np.array([3, 4, 120]))
    other = run_step(step_feeds(logits, codes, start, n0, uniforms=other_uniforms, **options))
    assert not np.array_equal(other[1], one[1])
    assert not np.array_equal(other[0] == 128, one[0] == 128)


# ---- parameter semantics ------------------------------------------------------------------------------------------


def test_temperature_at_most_zero_is_argmax_with_plain_softmax():
    rng = np.random.default_rng(2)
    logits, codes, start, n0 = random_case(rng)
    reference = run_step(step_feeds(logits, codes, start, n0, step=0, num_steps=4, temperature=1.0))
    for temperature in (0.0, -2.0):
        got = run_step(step_feeds(logits, codes, start, n0, step=0, num_steps=4, temperature=temperature,
                                  sample_cutoff=1.0))  # fmt: skip
        for a, b in zip(got, reference):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        reference[1][:, 2:], np.where(codes[:, 2:] == 64, logits.argmax(-1), codes[:, 2:])
    )


@pytest.mark.parametrize("off", [dict(top_p=0.0), dict(top_p=1.0), dict(top_k=-3),
                                 dict(top_k=64), dict(top_k=1000), dict(typical_mass=-1.0), dict(typical_mass=1.0)])  # fmt: skip
def test_out_of_range_filter_values_mean_off(off):
    rng = np.random.default_rng(3)
    logits, codes, start, n0 = random_case(rng)
    options = dict(step=0, num_steps=4, temperature=1.0, sample_cutoff=1.0, mask_temperature=1.0)
    uniforms = _kernels.philox_uniform(np.array(5, np.int64), 0, np.array(logits.shape[:3]))
    plain = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, **options))
    got = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, **options, **off))
    for a, b in zip(got, plain):
        np.testing.assert_array_equal(a, b)


def test_sample_cutoff_switches_between_draw_and_argmax():
    rng = np.random.default_rng(4)
    logits, codes, start, n0 = random_case(rng, vocab=32)
    uniforms = _kernels.philox_uniform(np.array(8, np.int64), 2, np.array(logits.shape[:3]))
    argmax = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, step=2, num_steps=4, sample_cutoff=0.4))
    drawn = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, step=2, num_steps=4, sample_cutoff=0.5))
    masked = codes[:, 2:] == 32
    np.testing.assert_array_equal(argmax[1][:, 2:][masked], logits.argmax(-1)[masked])
    assert (drawn[1][:, 2:][masked] != logits.argmax(-1)[masked]).sum() > 10  # 2/4 <= 0.5: sampled


def test_conditioning_and_fixed_tokens_pass_through():
    rng = np.random.default_rng(6)
    logits, codes, start, n0 = random_case(rng)
    codes[:, :2] = 64  # MASK in conditioning codebooks (step 0 of a run whose mask covered them)
    next_codes, sampled = run_step(step_feeds(logits, codes, start, n0, step=0, num_steps=3))
    for out in (next_codes, sampled):
        np.testing.assert_array_equal(out[:, :2], start[:, :2])
    fixed = codes[:, 2:] != 64
    np.testing.assert_array_equal(next_codes[:, 2:][fixed], codes[:, 2:][fixed])
    np.testing.assert_array_equal(sampled[:, 2:][fixed], codes[:, 2:][fixed])


def test_last_step_remasks_nothing_and_one_masked_token_stays_masked():
    rng = np.random.default_rng(9)
    logits, codes, start, n0 = random_case(rng)
    next_codes, sampled = run_step(step_feeds(logits, codes, start, n0, step=3, num_steps=4))
    np.testing.assert_array_equal(next_codes, sampled)
    assert (sampled == 64).sum() == 0
    one = start.copy()
    one[0, 3, 5] = 64
    next_codes, _ = run_step(step_feeds(logits, one, start, [1, 0], step=0, num_steps=4))
    assert next_codes[0, 3, 5] == 64 and (next_codes == 64).sum() == 1


def test_non_finite_logits():
    rng = np.random.default_rng(10)
    logits, codes, start, n0 = random_case(rng)
    masked = np.argwhere(codes[:, 2:] == 64)[0]
    fixed = np.argwhere(codes[:, 2:] != 64)[0]
    # -inf (a token ruled out) is fine; it is never chosen.
    ok = logits.copy()
    ok[tuple(masked)][:10] = -np.inf
    ok[tuple(masked)][10] = 50.0
    assert run_step(step_feeds(ok, codes, start, n0, step=0, num_steps=4))[1][masked[0], 2 + masked[1], masked[2]] == 10
    # A temperature so small that logits / temperature overflows is reported as such (not as NaN).
    tiny = step_feeds(logits, codes, start, n0, step=0, num_steps=4, temperature=1e-38, sample_cutoff=1.0)
    assert "overflows float32" in native_error(step_model(), tiny)
    # NaN / +inf at a position that is not masked is never read.
    ignored = logits.copy()
    ignored[tuple(fixed)][3] = np.nan
    run_step(step_feeds(ignored, codes, start, n0, step=0, num_steps=4))
    for value, message in [(np.nan, "NaN"), (np.inf, r"\+inf"), (None, "only -inf")]:
        bad = logits.copy()
        if value is None:
            bad[tuple(masked)][:] = -np.inf
        else:
            bad[tuple(masked)][7] = value
        feeds = step_feeds(bad, codes, start, n0, step=0, num_steps=4)
        error = native_error(step_model(), feeds)
        assert "SampleAndRemask" in error and "masked position" in error
        with pytest.raises(ValueError, match=message):
            pybind_step(feeds)


def bad_cases():
    rng = np.random.default_rng(12)
    logits, codes, start, n0 = random_case(rng)
    base = dict(logits=logits, codes=codes, start_codes=start, n0=n0)

    def with_(**changes):
        args = {**base, **{k: v for k, v in changes.items() if k in base}}
        options = {k: v for k, v in changes.items() if k not in base}
        options = dict(step=0, num_steps=4) | options
        return step_feeds(args["logits"], args["codes"], args["start_codes"], args["n0"], **options)

    too_big = codes.copy()
    too_big[0, 3, 3] = 65
    negative = start.copy()
    negative[1, 0, 0] = -1
    return [
        (with_(step=4, num_steps=4), "'step' must be in"),
        (with_(step=-1), "'step' must be in"),
        (with_(num_steps=0), "'num_steps' must be >= 1"),
        (with_(codes=too_big), "'codes' holds token 65"),
        (with_(start_codes=negative), "'start_codes' holds token -1"),
        (with_(codes=codes[:, :, :-1]), "'codes' dim 2"),
        (with_(codes=codes[:, :2]), "fewer than the P = 3"),
        (with_(start_codes=start[:, :4]), "'start_codes' must have the shape"),
        (with_(n0=n0[:1]), "'n0' dim 0"),
        (with_(n0=np.array([-1, 3])), "'n0' must be in"),
        (with_(n0=np.array([2**24 + 1, 3])), "'n0' must be in"),
        (with_(temperature=np.nan), "'temperature' must be finite"),
        (with_(temperature=np.inf), "'temperature' must be finite"),
        (with_(mask_temperature=-1.0), "'mask_temperature' must be finite and >= 0"),
        (with_(top_p=np.nan), r"'top_p' must be in \[0, 1\]"),
        (with_(top_p=-0.5), r"'top_p' must be in \[0, 1\]"),
        (with_(top_p=1.5), r"'top_p' must be in \[0, 1\]"),
        (with_(typical_mass=np.nan), "'typical_mass' is NaN"),
        (with_(sample_cutoff=np.nan), "'sample_cutoff' is NaN"),
        (with_(uniforms=np.zeros((2, 2, 3, 40), np.float32)), "strictly inside"),
        (with_(uniforms=np.ones((2, 2, 3, 40), np.float32)), "strictly inside"),
        (with_(uniforms=np.full((2, 2, 3, 39), 0.5, np.float32)), "'uniforms' dim 3"),
        (with_(logits=logits[0]), "'logits' must have rank 4"),
    ]


@pytest.mark.parametrize("case", range(21))
def test_bad_inputs(case):
    feeds, message = bad_cases()[case]
    error = native_error(step_model(feeds["logits"].ndim), feeds)
    assert "SampleAndRemask" in error and message.replace("\\", "") in error, error
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        pybind_step(feeds)


def test_non_scalar_parameter_is_rejected():
    rng = np.random.default_rng(13)
    feeds = step_feeds(*random_case(rng), step=0, num_steps=2)
    feeds["temperature"] = np.array([1.0, 1.0], np.float32)
    assert "'temperature' must be a scalar" in native_error(step_model(), feeds)


@pytest.mark.parametrize("num_steps,step,n0", [(8, 0, 3591), (16, 1, 3591), (7, 4, 6481), (13, 5, 5372)])
def test_schedule_matches_upstream_where_correct_rounding_would_not(num_steps, step, n0):
    """Upstream's float32 cos (torch CPU) is not correctly rounded; at these (step, S, N0) the correctly rounded
    gamma gives a different k. Kernel and reference function compute the same (SLEEF-style) cos; for S = 8 and 16
    golden/sampling.npz confirms it is upstream's value."""
    time = n0 + 10
    logits = np.zeros((1, 1, time, 2), np.float32)
    logits[0, 0, :, 0] = np.linspace(0.0, 4.0, time, dtype=np.float32)  # distinct confidences, no ties
    feeds = step_feeds(logits, np.full((1, 1, time), 2), n0=[n0], step=step, num_steps=num_steps)
    native, reference = run_both(step_model(), feeds)
    k = _kernels.schedule_num_to_mask(step, num_steps, n0, time)
    assert (native[0] == 2).sum() == k and (reference[0] == 2).sum() == k
    r = np.float32(step + 1) / np.float32(num_steps)
    correctly_rounded = np.float32(np.cos(np.float64((r * np.float32(np.pi)) / np.float32(2))))
    assert k != int(np.floor(correctly_rounded * np.float32(n0)))
    if num_steps in (8, 16):  # r = 1/8: golden gamma_S8[0] is upstream's value
        assert k == int(np.floor(golden("sampling.npz")["gamma_S8"][0] * np.float32(n0)))


def test_scalars_of_shape_one_in_kernel_and_reference():
    rng = np.random.default_rng(1)
    logits, codes, start, n0 = random_case(rng)
    uniforms = _kernels.philox_uniform(np.array(3, np.int64), 1, np.array(logits.shape[:3]))
    feeds = step_feeds(logits, codes, start, n0, uniforms=uniforms, step=1, num_steps=4, temperature=0.9,
                       mask_temperature=2.0, sample_cutoff=1.0, top_p=0.9, typical_mass=0.4, typical_min_tokens=3,
                       top_k=30)  # fmt: skip
    scalars = {name: value.reshape(1) for name, value in feeds.items() if value.ndim == 0}
    reshaped = feeds | scalars
    model = op_model("SampleAndRemask", reshaped, [("next_codes", TensorProto.INT64, ["B", "C", "T"]),
                                                   ("sampled", TensorProto.INT64, ["B", "C", "T"])])  # fmt: skip
    native, reference = run_both(model, reshaped)
    expected = run_step(feeds)
    for a, b, c in zip(native, reference, expected):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("min_tokens", [-(2**63), -(2**63) + 1, -5])
def test_typical_min_tokens_at_int64_min_is_like_one(min_tokens):
    """typical_min_tokens <= 1 all mean "no minimum": INT64_MIN once overflowed `min_tokens - 1` (undefined
    behaviour, reported by UBSan; the optimised build happened to compute the intended value). This test catches
    it when run under UBSan (scripts/sanitize.sh)."""
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((6, 64)).astype(np.float32) * 3
    expected = _kernels.filter_rows(rows, 0.0, 0, 0.15, 1)
    assert np.isneginf(expected).any()  # the filter really removes tokens at this mass
    np.testing.assert_array_equal(_kernels.filter_rows(rows, 0.0, 0, 0.15, min_tokens), expected)
    logits, codes, start, n0 = random_case(rng)
    options = dict(step=0, num_steps=4, temperature=1.0, sample_cutoff=1.0, mask_temperature=1.0, typical_mass=0.15)
    uniforms = _kernels.philox_uniform(np.array(5, np.int64), 0, np.array(logits.shape[:3]))
    one = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, typical_min_tokens=1, **options))
    got = run_step(step_feeds(logits, codes, start, n0, uniforms=uniforms, typical_min_tokens=min_tokens, **options))
    for a, b in zip(got, one):
        np.testing.assert_array_equal(a, b)


# ---- float32-only helpers and the sort-free path (issue 25: onnxruntime-web WebGPU) ------------------------------


def _helper_session(op_type: str, inputs: dict[str, np.ndarray], out_type: int):
    import onnx
    from onnx import helper

    import vampnet_ort

    node = helper.make_node(op_type, list(inputs), ["out"], domain=ops.DOMAIN)
    graph = helper.make_graph(
        [node], op_type,
        [helper.make_tensor_value_info(name, NP_TO_ONNX[v.dtype], ["n"]) for name, v in inputs.items()],
        [helper.make_tensor_value_info("out", out_type, ["n"])],
    )  # fmt: skip
    model = ops.make_model(graph)
    onnx.checker.check_model(model, full_check=True)
    return vampnet_ort.create_session(model.SerializeToString(), with_library=False).run(None, inputs)[0]


def test_schedule_gamma_equals_the_kernel_for_every_step_of_up_to_1000_steps():
    """float32 FusedMultiplyAdd instead of double: bit-identical gamma for all 0 <= step < S <= 1000 (a one-off run
    found no difference up to S = 10000 either, docs/SAMPLING.md)."""
    num_steps = np.concatenate([np.full(s, s) for s in range(1, 1001)])
    step = np.concatenate([np.arange(s) for s in range(1, 1001)])
    r = (step + 1).astype(np.float32) / num_steps.astype(np.float32)
    gamma = _helper_session("ScheduleGamma", {"r": r}, TensorProto.FLOAT)
    kernel = np.array([_kernels.schedule_gamma(int(a), int(b)) for a, b in zip(step, num_steps)], np.float32)
    np.testing.assert_array_equal(gamma.view(np.int32), kernel.view(np.int32))


def test_fused_multiply_add_is_exact_where_the_result_is_representable():
    rng = np.random.default_rng(7)
    a = rng.standard_normal(20000).astype(np.float32)
    b = rng.standard_normal(20000).astype(np.float32)
    product = a * b
    error = (a.astype(np.float64) * b.astype(np.float64) - product.astype(np.float64)).astype(np.float32)
    got = _helper_session("FusedMultiplyAdd", {"a": a, "b": b, "c": -product}, TensorProto.FLOAT)
    np.testing.assert_array_equal(got, error)  # the product's rounding error, exactly
    c = rng.standard_normal(20000).astype(np.float32)
    exact = (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64))
    got = _helper_session("FusedMultiplyAdd", {"a": a, "b": b, "c": c}, TensorProto.FLOAT)
    ulp = np.spacing(np.abs(exact).astype(np.float32))
    assert np.all(np.abs(got - exact) <= 0.5 * ulp * (1 + 1e-6))  # correctly rounded on these


def test_sample_cutoff_comparison_equals_the_double_one():
    """step / S <= cutoff: float32-only WithinSampleCutoff == the kernel's double comparison, at and next to every
    boundary step / S (S <= 200) and for the special values."""
    steps, totals, cutoffs = [], [], []
    for s in range(1, 201):
        for k in range(s):
            boundary = np.float32(k / s)
            for c in (boundary, np.nextafter(boundary, np.float32(-1)), np.nextafter(boundary, np.float32(2))):
                steps.append(k)
                totals.append(s)
                cutoffs.append(c)
    specials = np.array([0.0, -0.0, -1e-45, 1e-45, 1.0, 2.0, -1.0, np.inf, -np.inf, 3e38, -3e38], np.float32)
    for c in specials:
        steps += [0, 3, 9]
        totals += [1, 7, 10]
        cutoffs += [c, c, c]
    step = np.array(steps, np.int64)
    num_steps = np.array(totals, np.int64)
    cutoff = np.array(cutoffs, np.float32)
    got = _helper_session("WithinSampleCutoff", {"step": step, "num_steps": num_steps, "sample_cutoff": cutoff},
                          TensorProto.BOOL)  # fmt: skip
    expected = step.astype(np.float64) / num_steps.astype(np.float64) <= cutoff.astype(np.float64)
    np.testing.assert_array_equal(got, expected)


def test_no_reference_function_uses_float64():
    """onnxruntime-web's native WebGPU build cannot load a graph with a float64 Cast (docs/WEB.md)."""
    from vampnet_ort.ops._model import _walk_nodes, function_protos

    for proto in function_protos():
        for node in _walk_nodes(proto.node):
            for attr in node.attribute:
                assert not (node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.DOUBLE), proto.name
                assert attr.t.data_type != TensorProto.DOUBLE, (proto.name, node.op_type)


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_sort_free_path_equals_the_sorted_path_and_the_kernel(temperature):
    """Typical and top-p off: the function skips their sorts (If branches). The same tokens come out of the sorted
    path (typical on with typical_min_tokens = V keeps every token, so its filter is the identity) and of the
    native kernel."""
    rng = np.random.default_rng(11)
    logits, codes, start, n0 = random_case(rng)
    uniforms = _kernels.philox_uniform(np.array(5, np.int64), 1, np.array(logits.shape[:3]))
    common = dict(step=1, num_steps=4, uniforms=uniforms, temperature=temperature, mask_temperature=3.0,
                  sample_cutoff=1.0)  # fmt: skip
    off = step_feeds(logits, codes, start, n0, **common)
    sorted_path = step_feeds(logits, codes, start, n0, typical_mass=0.5, typical_min_tokens=logits.shape[-1],
                             **common)  # fmt: skip
    native_off, reference_off = run_both(step_model(), off)
    _, reference_sorted = run_both(step_model(), sorted_path)
    for a, b, c in zip(reference_off, reference_sorted, native_off):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
