"""Decoder convolutions of the release-size LAC codec: ORT Conv/ConvTranspose vs MatMul reformulations.

    python benchmarks/bench_codec_conv_forms.py [--frames 32] [--rounds 3] [--threads 2]

For every distinct (channels, kernel, dilation, length) of the decoder's MRF convs (kernels 3/7/11; dilation 1 and
the largest, 5, plus 7/3) and every ConvTranspose, at the lengths one chunk of `--frames` codec frames produces,
this times side by side, in interleaved rounds (form order rotated each round):

  conv     ORT Conv, channels-first [1, C, L] (what the exported decoder uses)
  im2col   channels-last [1, L, C]: Pad, k Slices of the dilated taps, Concat -> [1, L, k*C], one MatMul with
           [k*C, C'] (MLAS sgemm), Add bias
  kmatmul  channels-last: Pad, then k MatMuls [1, L, C] x [C, C'] on shifted Slices, accumulated with Add
  convT    ORT ConvTranspose (kernel 2s, stride s, padding s//2: the decoder's upsamplers)
  mm_fold  channels-last ConvTranspose: one MatMul [1, T, C] x [C, 2s*C'], split into the two kernel halves,
           overlap-add of the shifted halves (Pad + Add), Reshape to [1, (T+1)s, C'], Slice off the padding

Each reformulation is checked against the ORT op on the same input (max |diff| printed). Prints per shape the
time range over rounds and GFLOP/s at the best round. The machine is shared: read ranges, not single numbers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from vampnet_ort.codec_geometry import MRF_KERNELS, CodecConfig
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG


def _session(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], shape: list[int],
             threads: int) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def conv_forms(c: int, k: int, d: int, length: int, threads: int,
               rng: np.random.Generator) -> tuple[dict[str, tuple[ort.InferenceSession, np.ndarray]], float]:
    w = (rng.standard_normal((c, c, k)) / np.sqrt(c * k)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    x = rng.standard_normal((1, c, length)).astype(np.float32)
    x_last = np.ascontiguousarray(x.transpose(0, 2, 1))
    pad = d * (k - 1) // 2
    forms = {"conv": (_session([helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k], dilations=[d],
                                                 pads=[pad, pad])], {"w": w, "b": bias}, [1, c, length], threads), x)}
    base = {"pads": _i64(0, pad, 0, 0, pad, 0), "axis": _i64(1), "b": bias}
    taps = [helper.make_node("Pad", ["x", "pads"], ["xp"], mode="constant")]
    for j in range(k):
        base[f"s{j}"], base[f"e{j}"] = _i64(j * d), _i64(j * d + length)
        taps.append(helper.make_node("Slice", ["xp", f"s{j}", f"e{j}", "axis"], [f"t{j}"]))
    im2col = {**base, "w": np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c, c))}
    nodes = taps + [helper.make_node("Concat", [f"t{j}" for j in range(k)], ["col"], axis=2),
                    helper.make_node("MatMul", ["col", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    forms["im2col"] = (_session(nodes, im2col, [1, length, c], threads), x_last)
    kmm = dict(base)
    nodes, acc = list(taps), ""
    for j in range(k):
        kmm[f"w{j}"] = np.ascontiguousarray(w[:, :, j].T)
        nodes.append(helper.make_node("MatMul", [f"t{j}", f"w{j}"], [f"m{j}"]))
        if j:
            nodes.append(helper.make_node("Add", [acc, f"m{j}"], [f"a{j}"]))
        acc = f"a{j}" if j else "m0"
    nodes.append(helper.make_node("Add", [acc, "b"], ["y"]))
    forms["kmatmul"] = (_session(nodes, kmm, [1, length, c], threads), x_last)
    return forms, 2.0 * c * c * k * length


def conv_transpose_forms(c_in: int, c_out: int, s: int, frames: int, threads: int,
                         rng: np.random.Generator) -> tuple[dict[str, tuple[ort.InferenceSession, np.ndarray]], float]:
    k, p = 2 * s, s // 2
    w = (rng.standard_normal((c_in, c_out, k)) / np.sqrt(c_in * k)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    x = rng.standard_normal((1, c_in, frames)).astype(np.float32)
    forms = {"convT": (_session([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[k],
                                                  strides=[s], pads=[p, p])], {"w": w, "b": bias},
                                [1, c_in, frames], threads), x)}
    # y_full[t*s + j] = x[t] . w[:, :, j] + x[t-1] . w[:, :, s + j], t in [0, T], j in [0, s); then crop p each side.
    n_out = frames * s + s - 2 * p
    inits = {"w": np.ascontiguousarray(w.transpose(0, 2, 1).reshape(c_in, k * c_out)),
             "shape4": _i64(1, frames, k, c_out), "half": _i64(s, s), "pad_a": _i64(0, 0, 0, 0, 0, 1, 0, 0),
             "pad_b": _i64(0, 1, 0, 0, 0, 0, 0, 0), "shape3": _i64(1, (frames + 1) * s, c_out),
             "crop_s": _i64(p), "crop_e": _i64(p + n_out), "axis": _i64(1), "b": bias}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Reshape", ["m", "shape4"], ["m4"]),
             helper.make_node("Split", ["m4", "half"], ["a", "bb"], axis=2),
             helper.make_node("Pad", ["a", "pad_a"], ["ap"], mode="constant"),
             helper.make_node("Pad", ["bb", "pad_b"], ["bp"], mode="constant"),
             helper.make_node("Add", ["ap", "bp"], ["sum"]), helper.make_node("Reshape", ["sum", "shape3"], ["full"]),
             helper.make_node("Slice", ["full", "crop_s", "crop_e", "axis"], ["cut"]),
             helper.make_node("Add", ["cut", "b"], ["y"])]
    forms["mm_fold"] = (_session(nodes, inits, [1, frames, c_in], threads), np.ascontiguousarray(x.transpose(0, 2, 1)))
    return forms, 2.0 * c_in * c_out * k * frames


def run_case(label: str, forms: dict[str, tuple[ort.InferenceSession, np.ndarray]], flops: float,
             rounds: int) -> dict[str, list[float]]:
    names = list(forms)
    outputs = {n: forms[n][0].run(None, {"x": forms[n][1]})[0] for n in names}  # warm-up + check
    reference = outputs[names[0]]
    diffs = {n: float(np.max(np.abs(outputs[n].transpose(0, 2, 1) - reference))) for n in names[1:]}
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            session, x = forms[n]
            start = time.perf_counter()
            session.run(None, {"x": x})
            times[n].append(time.perf_counter() - start)
    cells = []
    for n in names:
        lo, hi = min(times[n]), max(times[n])
        diff = f", diff {diffs[n]:.1e}" if n in diffs else ""
        cells.append(f"{n} {lo * 1e3:6.1f}-{hi * 1e3:6.1f} ms ({flops / lo / 1e9:4.0f} GF/s{diff})")
    print(f"{label:32s} " + " | ".join(cells), flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32, help="codec frames of one decode chunk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = CodecConfig.from_kwargs(RELEASE_LIKE_CONFIG)
    rng = np.random.default_rng(0)
    totals: dict[str, float] = {}
    length, channels = args.frames, config.decoder_dim
    print(f"release-size decoder, {args.frames} frames, {args.threads} threads, {args.rounds} interleaved rounds")
    for stride in config.decoder_rates:
        forms, flops = conv_transpose_forms(channels, channels // 2, stride, length, args.threads, rng)
        times = run_case(f"ConvT {channels}->{channels // 2} s={stride} T={length}", forms, flops, args.rounds)
        for name, samples in times.items():
            totals[name] = totals.get(name, 0.0) + min(samples)
        length, channels = length * stride, channels // 2
        for kernel in MRF_KERNELS:
            for dilation in sorted({1, 5, 3 if kernel == 7 else 1}):
                forms, flops = conv_forms(channels, kernel, dilation, length, args.threads, rng)
                times = run_case(f"Conv C={channels} k={kernel} d={dilation} L={length}", forms, flops, args.rounds)
                for name, samples in times.items():
                    totals[name] = totals.get(name, 0.0) + min(samples)
    print("sum of best rounds over the shapes above: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in totals.items()))


if __name__ == "__main__":
    main()
