"""Reference function of ``vampnet.SampleAndRemask``: one step of VampNet's iterative decode (docs/SAMPLING.md).

logits float [B, P, T, V], codes int64 [B, C, T], start_codes int64 [B, C, T], n0 int64 [B], step int64 [],
num_steps int64 [], uniforms float [2, B, P, T], temperature, mask_temperature, top_p float [], top_k int64 [],
typical_mass float [], typical_min_tokens int64 [], sample_cutoff float [] -> (next_codes, sampled) int64 [B, C, T].

Given the same uniforms it picks the same tokens and re-masks the same positions as the native kernel, except
where float rounding differs at an exact decision boundary (the two evaluate exp/log/sums in different orders).
It does not validate value ranges (the kernel does); on invalid values its output is unspecified.

Written for onnxruntime-web's WebGPU builds too (docs/WEB.md, "WebGPU"): float32 only (the schedule's fused
multiply-adds and the sample-cutoff comparison are exact float32 constructions, no float64), and the two filters
that sort the vocabulary (typical, top-p) run inside If branches only when they are on.
"""

from __future__ import annotations

from onnxscript import BOOL, FLOAT, INT64, script

from ._opset import op, vampnet

_FLOAT = 1  # TensorProto.FLOAT
_INT64 = 7  # TensorProto.INT64
_INF = float("inf")
_NEG_INF = float("-inf")
_PI = 3.1415927410125732  # float32(pi)


@script(vampnet, default_opset=op)
def FusedMultiplyAdd(a: FLOAT, b: FLOAT, c: FLOAT) -> FLOAT:
    """a * b + c rounded once, in float32 ops only (no float64: onnxruntime-web's WebGPU build has none).

    a * b = product + error exactly (Dekker's product with Veltkamp's split; |a|, |b| < 2^100), product + c = s + t
    exactly (Knuth's two-sum); the result is s + (t + error). Equal to std::fma wherever the last rounding is not
    a near tie; tests/test_sample_and_remask.py checks every schedule value the decode can meet against the kernel.
    """
    split = op.Constant(value_float=4097.0)  # 2^12 + 1
    a_big = split * a
    a_hi = a_big - (a_big - a)
    a_lo = a - a_hi
    b_big = split * b
    b_hi = b_big - (b_big - b)
    b_lo = b - b_hi
    product = a * b
    error = (((a_hi * b_hi - product) + a_hi * b_lo) + a_lo * b_hi) + a_lo * b_lo
    s = product + c
    v = s - product
    t = (product - (s - v)) + (c - v)
    return s + (t + error)


@script(vampnet, default_opset=op)
def WithinSampleCutoff(step: INT64, num_steps: INT64, sample_cutoff: FLOAT) -> BOOL:
    """step / num_steps <= sample_cutoff for 0 <= step < num_steps < 2^24, decided exactly in float32.

    The kernel compares the double quotient; for these ranges that equals the exact comparison, which this makes:
    cutoff * S = product + error exactly (FusedMultiplyAdd(cutoff, S, -product) is the exact error), and
    step - product is exact (Sterbenz) wherever the comparison is close. cutoff >= 1 always samples, cutoff < 0
    never does (and keeps the product away from overflow).
    """
    f0 = op.Constant(value_float=0.0)
    f1 = op.Constant(value_float=1.0)
    steps_f = op.Cast(num_steps, to=_FLOAT)
    step_f = op.Cast(step, to=_FLOAT)
    product = sample_cutoff * steps_f
    product_error = FusedMultiplyAdd(sample_cutoff, steps_f, op.Neg(product))
    within = op.LessOrEqual(step_f - product, product_error)
    result = op.Or(op.GreaterOrEqual(sample_cutoff, f1), op.And(op.Not(op.Less(sample_cutoff, f0)), within))
    return result


@script(vampnet, default_opset=op)
def ScheduleGamma(r: FLOAT) -> FLOAT:
    """gamma = clamp(cos(r * pi / 2), 1e-10, 1) elementwise, bit for bit as the kernel's schedule_gamma.

    cos is upstream's torch CPU cos (SLEEF's 1-ulp float algorithm, as the kernel's schedule_cos): reduction around
    the nearest odd multiple of pi/2 and a double-float polynomial; every fused multiply-add of the kernel is one
    FusedMultiplyAdd here, every other float op one ONNX float op.
    """
    f1 = op.Constant(value_float=1.0)
    angle = r * op.Constant(value_float=_PI) / op.Constant(value_float=2.0)
    nearest = op.Round(FusedMultiplyAdd(angle, op.Constant(value_float=0.31830987334251404), op.Constant(value_float=-0.5)))
    dq = nearest * op.Constant(value_float=2.0) + f1  # exact: a small odd integer
    y1 = dq * op.Constant(value_float=-1.57073974609375)
    sh = angle + y1
    v1 = sh - angle
    sl = (angle - (sh - v1)) + (y1 - v1)
    y2 = dq * op.Constant(value_float=-5.657970905303955078e-05)
    sh2 = sh + y2
    v2 = sh2 - sh
    sl2 = ((sh - (sh2 - v2)) + (y2 - v2)) + sl
    y3 = dq * op.Constant(value_float=-9.920936294705029468e-10)
    th = sh2 + y3
    v3 = th - sh2
    tl = ((sh2 - (th - v3)) + (y3 - v3)) + sl2
    s2h = th * th
    s2l = FusedMultiplyAdd(th + th, tl, FusedMultiplyAdd(th, th, op.Neg(s2h)))
    u = FusedMultiplyAdd(op.Constant(value_float=2.6083159809786593541503e-06), s2h,
                         op.Constant(value_float=-0.0001981069071916863322258))
    u = FusedMultiplyAdd(u, s2h, op.Constant(value_float=0.00833307858556509017944336))
    c3 = op.Constant(value_float=-0.166666597127914428710938)
    us = u * s2h
    ih = c3 + us
    il = (c3 - ih) + us
    mh = ih * s2h
    ml = FusedMultiplyAdd(ih, s2l, FusedMultiplyAdd(il, s2h, FusedMultiplyAdd(ih, s2h, op.Neg(mh))))
    xh = f1 + mh
    xl = ((f1 - xh) + mh) + ml
    cos_value = FusedMultiplyAdd(th, xh, FusedMultiplyAdd(tl, xh, th * xl))
    # (int(dq) & 2) == 0  <=>  dq mod 4 == 1 (dq odd; mod with the sign of the divisor, as Python's %)
    four = op.Constant(value_float=4.0)
    quadrant = dq - four * op.Floor(dq / four)
    cos_value = op.Where(op.Equal(quadrant, f1), op.Neg(cos_value), cos_value)
    gamma = op.Clip(cos_value, op.Constant(value_float=1e-10), f1)
    return gamma


@script(vampnet, default_opset=op)
def TypicalFilter(x: FLOAT, typical_mass: FLOAT, typical_min_tokens: INT64) -> FLOAT:
    """Typical filtering of logits x [..., V] (upstream's typical_filter): -inf outside the typical set."""
    last_axis = op.Constant(value_ints=[-1])
    one_s = op.Constant(value_int=1)
    f0 = op.Constant(value_float=0.0)
    inf = op.Constant(value_float=_INF)
    vocab_1d = op.Slice(op.Shape(x), last_axis, op.Constant(value_ints=[2**62]))
    vocab = op.Squeeze(vocab_1d, op.Constant(value_ints=[0]))
    is_neg_inf = op.IsInf(x, detect_positive=0)
    log_probs = op.LogSoftmax(x, axis=-1)
    probs_raw = op.Exp(log_probs)
    entropy = op.Neg(op.ReduceSum(op.Where(is_neg_inf, f0, probs_raw * log_probs), last_axis, keepdims=1))
    gap = op.Where(is_neg_inf, inf, op.Abs(op.Neg(log_probs) - entropy))
    gap_sorted, gap_order = op.TopK(gap, vocab_1d, axis=-1, largest=0, sorted=1)
    mass_cum = op.CumSum(op.GatherElements(probs_raw, gap_order, axis=-1), op.Constant(value_int=-1))
    last_ind = op.ReduceSum(op.Cast(op.Less(mass_cum, typical_mass), to=_INT64), last_axis, keepdims=1)
    # max(min_tokens, 1) - 1: any value <= 1 means no minimum, and INT64_MIN cannot wrap around.
    threshold_pos = op.Min(op.Max(last_ind, op.Max(typical_min_tokens, one_s) - one_s), vocab - one_s)
    gap_threshold = op.GatherElements(gap_sorted, threshold_pos, axis=-1)
    filtered = op.Where(op.Greater(gap, gap_threshold), op.Constant(value_float=_NEG_INF), x)
    return filtered


@script(vampnet, default_opset=op)
def TopPFilter(x: FLOAT, top_p: FLOAT) -> FLOAT:
    """Nucleus filtering of logits x [..., V]: -inf after the smallest prefix (by value) whose mass exceeds top_p."""
    i0 = op.Constant(value_ints=[0])
    i1 = op.Constant(value_ints=[1])
    last_axis = op.Constant(value_ints=[-1])
    vocab_1d = op.Slice(op.Shape(x), last_axis, op.Constant(value_ints=[2**62]))
    x_sorted, x_order = op.TopK(x, vocab_1d, axis=-1, largest=1, sorted=1)
    nucleus_cum = op.CumSum(op.Softmax(x_sorted, axis=-1), op.Constant(value_int=-1))
    over = op.Greater(nucleus_cum, top_p)
    first_over = op.Slice(over, i0, i1, last_axis)
    removed = op.Concat(op.And(first_over, op.Not(first_over)), op.Slice(over, i0, vocab_1d - i1, last_axis), axis=-1)
    filtered = op.ScatterElements(x, x_order, op.Where(removed, op.Constant(value_float=_NEG_INF), x_sorted), axis=-1)
    return filtered



@script(vampnet, default_opset=op)
def SampleAndRemask(
    logits: FLOAT,
    codes: INT64,
    start_codes: INT64,
    n0: INT64,
    step: INT64,
    num_steps: INT64,
    uniforms: FLOAT,
    temperature: FLOAT,
    mask_temperature: FLOAT,
    top_p: FLOAT,
    top_k: INT64,
    typical_mass: FLOAT,
    typical_min_tokens: INT64,
    sample_cutoff: FLOAT,
) -> tuple[INT64, INT64]:
    """One decode step -> (next_codes with MASK at re-masked positions, sampled tokens)."""
    i0 = op.Constant(value_ints=[0])
    i1 = op.Constant(value_ints=[1])
    i2 = op.Constant(value_ints=[2])
    i3 = op.Constant(value_ints=[3])
    i4 = op.Constant(value_ints=[4])
    last_axis = op.Constant(value_ints=[-1])
    one_s = op.Constant(value_int=1)
    zero_s = op.Constant(value_int=0)
    f0 = op.Constant(value_float=0.0)
    f1 = op.Constant(value_float=1.0)
    inf = op.Constant(value_float=_INF)
    neg_inf = op.Constant(value_float=_NEG_INF)
    logits_shape = op.Shape(logits)
    batch = op.Slice(logits_shape, i0, i1)
    predicted = op.Slice(logits_shape, i1, i2)
    vocab_1d = op.Slice(logits_shape, i3, i4)
    vocab = op.Squeeze(vocab_1d, i0)
    codebooks = op.Slice(op.Shape(codes), i1, i2)
    conditioning = codebooks - predicted
    current = op.Slice(codes, conditioning, codebooks, i1)  # [B, P, T]
    masked = op.Equal(current, vocab)

    # Filters on the raw logits: typical, then top-k, then top-p (each sees the previous one's output). Typical and
    # top-p sort the vocabulary at every position; each sits in an If branch that runs only when it is on, so the
    # default decode (both off) sorts nothing and keeps the same tokens (the else branches pass x through).
    typical_on = op.And(op.Greater(typical_mass, f0), op.Less(typical_mass, f1))
    if typical_on:
        x = TypicalFilter(logits, typical_mass, typical_min_tokens)
    else:
        x = op.Identity(logits)

    top_k_on = op.And(op.Greater(top_k, zero_s), op.Less(top_k, vocab))
    k_safe = op.Reshape(op.Min(op.Max(top_k, one_s), vocab), i1)
    top_values, top_order = op.TopK(x, k_safe, axis=-1, largest=1, sorted=1)
    kth_value = op.Slice(top_values, k_safe - one_s, k_safe, last_axis)
    x = op.Where(top_k_on, op.Where(op.Less(x, kth_value), neg_inf, x), x)

    top_p_on = op.And(op.Greater(top_p, f0), op.Less(top_p, f1))
    if top_p_on:
        x_filtered = TopPFilter(x, top_p)
    else:
        x_filtered = op.Identity(x)
    x = x_filtered

    # Token choice: inverse-CDF draw with uniforms[0], or argmax (first index on ties).
    tau_on = op.Greater(temperature, f0)
    tau = op.Where(tau_on, temperature, f1)
    x_max = op.ReduceMax(x, last_axis, keepdims=1)
    weights = op.Exp(x / tau - x_max / tau)
    total = op.ReduceSum(weights, last_axis, keepdims=1)
    probs = weights / total
    argmax_token = op.ArgMax(x, axis=-1, keepdims=1, select_last_index=0)
    draw = op.Unsqueeze(op.Squeeze(op.Slice(uniforms, i0, i1, i0), i0), last_axis)
    crossed = op.Greater(op.CumSum(weights, op.Constant(value_int=-1)), draw * total)
    positive = op.Cast(op.Greater(weights, f0), to=_FLOAT)
    last_positive = op.ArgMax(positive, axis=-1, keepdims=1, select_last_index=1)
    token_index = op.Range(zero_s, vocab, one_s)
    chosen = op.Or(crossed, op.Equal(token_index, last_positive))
    drawn_token = op.ArgMax(op.Cast(chosen, to=_FLOAT), axis=-1, keepdims=1, select_last_index=0)
    do_sample = op.And(tau_on, WithinSampleCutoff(step, num_steps, sample_cutoff))
    token = op.Where(do_sample, drawn_token, argmax_token)
    selected_prob = op.Squeeze(op.GatherElements(probs, token, axis=-1), last_axis)
    sampled_pred = op.Where(masked, op.Squeeze(token, last_axis), current)

    # Schedule: r = (step + 1) / S, gamma = clamp(cos(r * pi / 2), 1e-10, 1), all in float32 (ScheduleGamma).
    r = op.Cast(step + one_s, to=_FLOAT) / op.Cast(num_steps, to=_FLOAT)
    gamma = ScheduleGamma(r)
    num_to_mask = op.Cast(op.Floor(gamma * op.Cast(n0, to=_FLOAT)), to=_INT64)  # [B]
    masked_in_row = op.ReduceSum(op.Cast(masked, to=_INT64), op.Constant(value_ints=[1, 2]), keepdims=0)
    clamped = op.Max(one_s, op.Min(masked_in_row - one_s, num_to_mask))
    num_to_mask = op.Where(op.Equal(step, num_steps - one_s), num_to_mask, clamped)

    # Confidence and the strict cut-off at the k-th smallest (0-based) of each item's P*T positions.
    gumbel = op.Neg(op.Log(op.Neg(op.Log(op.Squeeze(op.Slice(uniforms, i1, i2, i0), i0)))))
    noise_scale = mask_temperature * (f1 - r)
    confidence = op.Where(masked, op.Log(selected_prob) + noise_scale * gumbel, inf)
    flat = op.Reshape(confidence, op.Concat(batch, last_axis, axis=0))
    per_item = op.Slice(op.Shape(flat), i1, i2)
    sorted_conf, sorted_order = op.TopK(flat, per_item, axis=-1, largest=0, sorted=1)
    k_col = op.Unsqueeze(num_to_mask, last_axis)
    k_index = op.Min(op.Max(k_col, zero_s), op.Squeeze(per_item, i0) - one_s)
    cutoff = op.GatherElements(sorted_conf, k_index, axis=1)
    cutoff = op.Where(op.LessOrEqual(k_col, zero_s), neg_inf, cutoff)
    cutoff = op.Where(op.GreaterOrEqual(k_col, op.Squeeze(per_item, i0)), inf, cutoff)
    remask = op.Less(confidence, op.Unsqueeze(cutoff, last_axis))
    next_pred = op.Where(remask, vocab, sampled_pred)

    fixed = op.Slice(start_codes, i0, conditioning, i1)
    next_codes = op.Concat(fixed, next_pred, axis=1)
    sampled = op.Concat(fixed, sampled_pred, axis=1)
    return next_codes, sampled


__all__ = [
    "FusedMultiplyAdd", "SampleAndRemask", "ScheduleGamma", "TopPFilter", "TypicalFilter", "WithinSampleCutoff",
]
