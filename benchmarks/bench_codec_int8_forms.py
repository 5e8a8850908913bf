"""Decoder convolutions of the release-size LAC codec: float32 Conv vs int8 forms, per layer shape.

    python benchmarks/bench_codec_int8_forms.py [--frames 32] [--rounds 5] [--threads 2] [--only conv,convT]

For every distinct decoder conv shape (channels, kernel, dilation) and ConvTranspose at the lengths one chunk of
`--frames` codec frames produces, this times side by side, in interleaved rounds (form order rotated each round),
every form with the same input and output layout as the exported graph ([1, C, L] in, [1, C', L] out):

  conv     float32 ORT Conv (the float32 decoder)
  dqmm     Transpose -> Pad -> k Slices of the dilated taps -> Concat [1, L, k*C] -> DynamicQuantizeMatMul with
           int8 weights [k*C, C'] (one scale per output channel) and the bias -> Transpose
  mmi      DynamicQuantizeLinear once on [1, C, L] -> Transpose (uint8) -> Pad with the zero point -> Slices ->
           Concat (uint8, a quarter of the bytes of the float im2col) -> MatMulInteger -> Cast -> Mul by
           x_scale * w_scale[C'] -> Add bias -> Transpose (the pattern ORT fuses into MatMulIntegerToFloat)
  fused    the exported form (channels-last [1, L, C] in, [1, L, C'] out: the int8 levels have no Transposes):
           vampnet.DynamicQuantizeIm2Col (quantize + im2col in one pass, the op library registered) ->
           MatMulInteger -> Cast -> Mul -> Add bias
  qconv    DynamicQuantizeLinear -> QLinearConv (int8 weights, per-channel scales) -> DequantizeLinear -> Add bias,
           with the output scale taken from this very input's float32 output (an oracle: a graph would need a
           calibrated static scale); speed reference only
  convT    float32 ORT ConvTranspose (the upsamplers)
  dqmmT    channels-last ConvTranspose: Transpose -> DynamicQuantizeMatMul [T, C] x [C, 2s*C'] -> overlap-add of the
           two kernel halves -> crop -> bias -> Transpose

Each int8 form is checked against float32 on the same input: SNR of that one layer in dB. Prints per shape the best
round, the speed-up over float32 and the 1-minute load average. Ratios of forms measured side by side are what this
is for; absolute times on a shared machine are not evidence.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import vampnet_ort
import vampnet_ort.ops
from vampnet_ort.codec_geometry import MRF_DILATIONS, MRF_KERNELS, CodecConfig
from vampnet_ort.export.quantize import quantize_int8_columns
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_model  # noqa: E402  (benchmarks/_timing.py)

Form = tuple[ort.InferenceSession, np.ndarray]


def _session(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], shape: list[int], threads: int,
             library: bool = False) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1),
              helper.make_opsetid(vampnet_ort.ops.DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if library:
        vampnet_ort.register(options)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _taps(src: str, k: int, d: int, length: int, inits: dict[str, np.ndarray], pad_value: str = "") -> tuple[list[onnx.NodeProto], str]:
    """Channels-last im2col of [1, L, C] `src`: Pad, k Slices, Concat -> [1, L, k*C] (identity for k = 1)."""
    if k == 1:
        return [], src
    pad = d * (k - 1) // 2
    inits["pads"], inits["axis1"] = _i64(0, pad, 0, 0, pad, 0), _i64(1)
    nodes = [helper.make_node("Pad", [src, "pads"] + ([pad_value] if pad_value else []), ["xp"], mode="constant")]
    for j in range(k):
        inits[f"s{j}"], inits[f"e{j}"] = _i64(j * d), _i64(j * d + length)
        nodes.append(helper.make_node("Slice", ["xp", f"s{j}", f"e{j}", "axis1"], [f"t{j}"]))
    nodes.append(helper.make_node("Concat", [f"t{j}" for j in range(k)], ["col"], axis=2))
    return nodes, "col"


def conv_forms(c: int, k: int, d: int, length: int, threads: int, rng: np.random.Generator) -> dict[str, Form]:
    w = (rng.standard_normal((c, c, k)) / np.sqrt(c * k)).astype(np.float32)
    bias = (0.05 * rng.standard_normal(c)).astype(np.float32)
    x = rng.standard_normal((1, c, length)).astype(np.float32)
    pad = d * (k - 1) // 2
    forms = {"conv": (_session([helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k], dilations=[d],
                                                 pads=[pad, pad])], {"w": w, "b": bias}, [1, c, length], threads), x)}
    w_q, w_scale = quantize_int8_columns(np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c, c)))
    # dqmm: float im2col, quantized inside DynamicQuantizeMatMul
    inits: dict[str, np.ndarray] = {"wq": w_q, "ws": w_scale, "b": bias}
    taps, col = _taps("xt", k, d, length, inits)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1])] + taps + [
        helper.make_node("DynamicQuantizeMatMul", [col, "wq", "ws", "", "b"], ["m"], domain="com.microsoft"),
        helper.make_node("Transpose", ["m"], ["y"], perm=[0, 2, 1])]
    forms["dqmm"] = (_session(nodes, inits, [1, c, length], threads), x)
    # mmi: quantize once, uint8 im2col, MatMulInteger
    inits = {"wq": w_q, "ws": w_scale, "b": bias}
    taps, col = _taps("qt", k, d, length, inits, pad_value="zp")
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "xs", "zp"]),
             helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1])] + taps + [
        helper.make_node("MatMulInteger", [col, "wq", "zp"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["sc"]),
        helper.make_node("Mul", ["accf", "sc"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["mb"]),
        helper.make_node("Transpose", ["mb"], ["y"], perm=[0, 2, 1])]
    forms["mmi"] = (_session(nodes, inits, [1, c, length], threads), x)
    # fused: the exported form, channels-last in and out
    inits = {"wq": w_q, "ws": w_scale, "b": bias}
    nodes = [helper.make_node("DynamicQuantizeIm2Col", ["x"], ["col", "xs", "zp"], domain=vampnet_ort.ops.DOMAIN,
                              kernel_size=k, dilation=d, padding=pad),
             helper.make_node("MatMulInteger", ["col", "wq", "zp"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "ws"], ["sc"]),
             helper.make_node("Mul", ["accf", "sc"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["y"])]
    forms["fused"] = (_session(nodes, inits, [1, length, c], threads, library=True),
                      np.ascontiguousarray(x.transpose(0, 2, 1)))
    # qconv: QLinearConv with per-channel int8 weights and an oracle output scale
    wq_conv, ws_conv = quantize_int8_columns(w.reshape(c, c * k).T)
    ref = forms["conv"][0].run(None, {"x": x})[0] - bias[None, :, None]
    y_scale = np.float32(2.0 * np.abs(ref).max() / 255.0)
    inits = {"wq": np.ascontiguousarray(wq_conv.T.reshape(c, c, k)), "ws": ws_conv, "wz": np.zeros(c, np.int8),
             "ys": np.array(y_scale, np.float32), "yz": np.array(128, np.uint8), "b": bias.reshape(1, c, 1)}
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "xs", "zp"]),
             helper.make_node("QLinearConv", ["q", "xs", "zp", "wq", "ws", "wz", "ys", "yz"], ["yq"],
                              kernel_shape=[k], dilations=[d], pads=[pad, pad]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["yf"]),
             helper.make_node("Add", ["yf", "b"], ["y"])]
    try:
        forms["qconv"] = (_session(nodes, inits, [1, c, length], threads), x)
    except Exception as exc:  # noqa: BLE001 - report and go on: this form is a speed reference only
        print(f"  qconv not available for this shape: {str(exc).splitlines()[0][:120]}")
    return forms


def conv_transpose_forms(c_in: int, c_out: int, s: int, frames: int, threads: int,
                         rng: np.random.Generator) -> dict[str, Form]:
    k, p = 2 * s, s // 2
    w = (rng.standard_normal((c_in, c_out, k)) / np.sqrt(c_in * k)).astype(np.float32)
    bias = (0.05 * rng.standard_normal(c_out)).astype(np.float32)
    x = rng.standard_normal((1, c_in, frames)).astype(np.float32)
    forms = {"convT": (_session([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[k],
                                                  strides=[s], pads=[p, p])], {"w": w, "b": bias},
                                [1, c_in, frames], threads), x)}
    n_out = frames * s + s - 2 * p
    w_q, w_scale = quantize_int8_columns(np.ascontiguousarray(w.transpose(0, 2, 1).reshape(c_in, k * c_out)))
    inits = {"wq": w_q, "ws": w_scale, "shape4": _i64(1, frames, k, c_out), "half": _i64(s, s),
             "pad_a": _i64(0, 0, 0, 0, 0, 1, 0, 0), "pad_b": _i64(0, 1, 0, 0, 0, 0, 0, 0),
             "shape3": _i64(1, (frames + 1) * s, c_out), "crop_s": _i64(p), "crop_e": _i64(p + n_out),
             "axis": _i64(1), "b": bias}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("DynamicQuantizeMatMul", ["xt", "wq", "ws"], ["m"], domain="com.microsoft"),
             helper.make_node("Reshape", ["m", "shape4"], ["m4"]),
             helper.make_node("Split", ["m4", "half"], ["a", "bb"], axis=2),
             helper.make_node("Pad", ["a", "pad_a"], ["ap"], mode="constant"),
             helper.make_node("Pad", ["bb", "pad_b"], ["bp"], mode="constant"),
             helper.make_node("Add", ["ap", "bp"], ["sum"]), helper.make_node("Reshape", ["sum", "shape3"], ["full"]),
             helper.make_node("Slice", ["full", "crop_s", "crop_e", "axis"], ["cut"]),
             helper.make_node("Add", ["cut", "b"], ["yl"]),
             helper.make_node("Transpose", ["yl"], ["y"], perm=[0, 2, 1])]
    forms["dqmmT"] = (_session(nodes, inits, [1, c_in, frames], threads), x)
    return forms


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((test.astype(np.float64) - ref) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / noise)


def run_case(label: str, forms: dict[str, Form], rounds: int) -> dict[str, float]:
    names = list(forms)
    outputs = {n: forms[n][0].run(None, {"x": forms[n][1]})[0] for n in names}  # warm-up + check
    reference = outputs[names[0]]
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            session, x = forms[n]
            start = time.perf_counter()
            session.run(None, {"x": x})
            times[n].append(time.perf_counter() - start)
    best = {n: min(times[n]) for n in names}
    cells = [f"{names[0]} {best[names[0]] * 1e3:7.1f} ms"]
    for n in names[1:]:
        out = outputs[n] if outputs[n].shape == reference.shape else outputs[n].transpose(0, 2, 1)  # channels-last
        cells.append(f"{n} {best[n] * 1e3:7.1f} ms {best[names[0]] / best[n]:4.2f}x {snr_db(reference, out):4.1f} dB")
    print(f"{label:30s} load {os.getloadavg()[0]:4.1f} | " + " | ".join(cells), flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32, help="codec frames of one decode chunk")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="conv,convT", help="conv, convT or both")
    parser.add_argument("--levels", default="", help="decoder levels to run (0-based, comma-separated); all by default")
    args = parser.parse_args()
    config = CodecConfig.from_kwargs(RELEASE_LIKE_CONFIG)
    only = set(args.only.split(","))
    levels = {int(v) for v in args.levels.split(",") if v} or set(range(len(config.decoder_rates)))
    rng = np.random.default_rng(0)
    totals: dict[str, float] = {}
    print(f"{cpu_model()}; onnxruntime {ort.__version__}; release-size decoder, {args.frames} frames, "
          f"{args.threads} threads, {args.rounds} interleaved rounds (best round); load {os.getloadavg()}")
    length, channels = args.frames, config.decoder_dim
    for level, stride in enumerate(config.decoder_rates):
        cases = []
        if "convT" in only:
            cases.append((f"L{level} ConvT {channels}->{channels // 2} s={stride}", 1,
                          lambda: conv_transpose_forms(channels, channels // 2, stride, length, args.threads, rng)))
        out_len, out_ch = length * stride, channels // 2
        if "conv" in only:
            for kernel in MRF_KERNELS:
                # each MRF unit: one conv at every dilation, then one at dilation 1 -> count per (k, d)
                counts = {dil: 1 for dil in MRF_DILATIONS}
                counts[1] += len(MRF_DILATIONS)
                for dilation, count in counts.items():
                    cases.append((f"L{level} Conv C={out_ch} k={kernel} d={dilation} x{count}", count,
                                  lambda k=kernel, d=dilation: conv_forms(out_ch, k, d, out_len, args.threads, rng)))
        if level in levels:
            for label, count, make in cases:
                best = run_case(f"{label} L={out_len if 'Conv C' in label else length}", make(), args.rounds)
                for name, seconds in best.items():
                    totals[name] = totals.get(name, 0.0) + count * seconds
        length, channels = out_len, out_ch
    print("weighted sum over the decoder's layers (count x best round): "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in totals.items()))


if __name__ == "__main__":
    main()
