"""Reference function of ``vampnet.SampleAndRemask``: one step of VampNet's iterative decode (docs/SAMPLING.md).

logits float [B, P, T, V], codes int64 [B, C, T], start_codes int64 [B, C, T], n0 int64 [B], step int64 [],
num_steps int64 [], uniforms float [2, B, P, T], temperature, mask_temperature, top_p float [], top_k int64 [],
typical_mass float [], typical_min_tokens int64 [], sample_cutoff float [] -> (next_codes, sampled) int64 [B, C, T].

Given the same uniforms it picks the same tokens and re-masks the same positions as the native kernel, except
where float rounding differs at an exact decision boundary (the two evaluate exp/log/sums in different orders).
It does not validate value ranges (the kernel does); on invalid values its output is unspecified.
"""

from __future__ import annotations

from onnxscript import FLOAT, INT64, script

from ._opset import op, vampnet

_FLOAT = 1  # TensorProto.FLOAT
_INT64 = 7  # TensorProto.INT64
_DOUBLE = 11  # TensorProto.DOUBLE
_INF = float("inf")
_NEG_INF = float("-inf")
_PI = 3.1415927410125732  # float32(pi)


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

    # Filters on the raw logits: typical, then top-k, then top-p (each sees the previous one's output).
    x = logits
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
    typical_on = op.And(op.Greater(typical_mass, f0), op.Less(typical_mass, f1))
    x = op.Where(typical_on, op.Where(op.Greater(gap, gap_threshold), neg_inf, x), x)

    top_k_on = op.And(op.Greater(top_k, zero_s), op.Less(top_k, vocab))
    k_safe = op.Reshape(op.Min(op.Max(top_k, one_s), vocab), i1)
    top_values, top_order = op.TopK(x, k_safe, axis=-1, largest=1, sorted=1)
    kth_value = op.Slice(top_values, k_safe - one_s, k_safe, last_axis)
    x = op.Where(top_k_on, op.Where(op.Less(x, kth_value), neg_inf, x), x)

    top_p_on = op.And(op.Greater(top_p, f0), op.Less(top_p, f1))
    x_sorted, x_order = op.TopK(x, vocab_1d, axis=-1, largest=1, sorted=1)
    nucleus_cum = op.CumSum(op.Softmax(x_sorted, axis=-1), op.Constant(value_int=-1))
    over = op.Greater(nucleus_cum, top_p)
    first_over = op.Slice(over, i0, i1, last_axis)
    removed = op.Concat(op.And(first_over, op.Not(first_over)), op.Slice(over, i0, vocab_1d - i1, last_axis), axis=-1)
    x = op.Where(top_p_on, op.ScatterElements(x, x_order, op.Where(removed, neg_inf, x_sorted), axis=-1), x)

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
    fraction = op.Div(op.Cast(step, to=_DOUBLE), op.Cast(num_steps, to=_DOUBLE))
    do_sample = op.And(tau_on, op.LessOrEqual(fraction, op.Cast(sample_cutoff, to=_DOUBLE)))
    token = op.Where(do_sample, drawn_token, argmax_token)
    selected_prob = op.Squeeze(op.GatherElements(probs, token, axis=-1), last_axis)
    sampled_pred = op.Where(masked, op.Squeeze(token, last_axis), current)

    # Schedule: r = (step + 1) / S, gamma = clamp(cos(r * pi / 2), 1e-10, 1), all in float32.
    r = op.Cast(step + one_s, to=_FLOAT) / op.Cast(num_steps, to=_FLOAT)
    angle = r * op.Constant(value_float=_PI) / op.Constant(value_float=2.0)
    # cos(angle) exactly as upstream's torch CPU cos computes it (SLEEF's 1-ulp float algorithm, as the kernel's
    # schedule_cos): reduction around the nearest odd multiple of pi/2 and a double-float polynomial. Every float
    # op below is one ONNX float op; a fused multiply-add is one double multiply-add rounded to float.
    dq = op.Cast(op.Cast(op.Round(op.Cast(op.Cast(angle, to=_DOUBLE) * op.Cast(op.Constant(value_float=0.31830987334251404), to=_DOUBLE)
                                          - op.Cast(op.Constant(value_float=0.5), to=_DOUBLE), to=_FLOAT)), to=_DOUBLE)
                 * op.Cast(op.Constant(value_float=2.0), to=_DOUBLE) + op.Cast(op.Constant(value_float=1.0), to=_DOUBLE), to=_FLOAT)
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
    th_d = op.Cast(th, to=_DOUBLE)
    s2h = th * th
    s2h_d = op.Cast(s2h, to=_DOUBLE)
    s2l_inner = op.Cast(th_d * th_d - s2h_d, to=_DOUBLE)
    s2l = op.Cast(op.Cast(th + th, to=_DOUBLE) * op.Cast(tl, to=_DOUBLE) + s2l_inner, to=_FLOAT)
    u = op.Cast(op.Cast(op.Constant(value_float=2.6083159809786593541503e-06), to=_DOUBLE) * s2h_d
                + op.Cast(op.Constant(value_float=-0.0001981069071916863322258), to=_DOUBLE), to=_FLOAT)
    u = op.Cast(op.Cast(u, to=_DOUBLE) * s2h_d
                + op.Cast(op.Constant(value_float=0.00833307858556509017944336), to=_DOUBLE), to=_FLOAT)
    c3 = op.Constant(value_float=-0.166666597127914428710938)
    us = u * s2h
    ih = c3 + us
    il = (c3 - ih) + us
    ih_d = op.Cast(ih, to=_DOUBLE)
    mh = ih * s2h
    ml = op.Cast(ih_d * s2h_d - op.Cast(mh, to=_DOUBLE), to=_FLOAT)
    ml = op.Cast(op.Cast(il, to=_DOUBLE) * s2h_d + op.Cast(ml, to=_DOUBLE), to=_FLOAT)
    ml = op.Cast(ih_d * op.Cast(s2l, to=_DOUBLE) + op.Cast(ml, to=_DOUBLE), to=_FLOAT)
    xh = f1 + mh
    xl = ((f1 - xh) + mh) + ml
    xh_d = op.Cast(xh, to=_DOUBLE)
    inner = op.Cast(op.Cast(tl, to=_DOUBLE) * xh_d + op.Cast(th * xl, to=_DOUBLE), to=_FLOAT)
    cos_value = op.Cast(th_d * xh_d + op.Cast(inner, to=_DOUBLE), to=_FLOAT)
    quadrant = op.BitwiseAnd(op.Cast(dq, to=_INT64), op.Constant(value_int=2))
    cos_value = op.Where(op.Equal(quadrant, zero_s), op.Neg(cos_value), cos_value)
    gamma = op.Clip(cos_value, op.Constant(value_float=1e-10), f1)
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


__all__ = ["SampleAndRemask"]
