"""float32 vs int8 (vs int4) bundles at release size, side by side in one run (docs/QUANTIZATION.md).

Sections (``--only`` picks some; default all, in this order):
  gemm     ORT's GEMMs alone at the transformer's shapes (M=575): float32 MatMul, DynamicQuantizeMatMul (int8),
           MatMulNBits (4-bit, block 32/128, accuracy_level 0/4): ms, GOP/s, error vs float64; the int8 peak is
           the best DynamicQuantizeMatMul GOP/s of the run.
  codec    the LAC decoder's convolutions (release-like widths): float32 Conv vs DynamicQuantizeLinear + ConvInteger
           (int8): ms and SNR of the int8 output.
  build    release-size random bundles (coarse 20 layers d=1280, c2f 16 layers, release-like codec), float32, int8
           and int4, with the logits graphs, under bench-out/quantize/ (reused when present); bundle bytes.
  speed    coarse forward T=575; coarse decode 12 steps T=575; c2f decode 2 steps T=173; each variant in its own
           process, rounds alternating; peak RSS of a fresh process running a 2-step coarse decode (bundle loader
           settings: prepacking off), and int8 with prepacking on vs off (speed and RSS).
  quality  logits (rel. error, mean KL(fp32 || q) of the per-position softmax, argmax agreement) and a
           deterministic 12-step coarse decode (argmax, mask temperature 0): tokens differing from float32, on the
           release-size random bundle and on a heavy-tailed random coarse model (Student-t weights, outlier input
           channels, outlier RMSNorm gains).
  e2e      benchmarks/bench_pipeline.py (10 s of audio, app defaults: 36 coarse steps) on the float32 and int8 bundles.
  wasm     one coarse decode step (T=575) of a float32 and an int8 graph in onnxruntime-web under Node
           (benchmarks/bench_wasm_step.mjs; ORT_WEB_NODE_MODULES = a node_modules holding onnxruntime-web);
           medium size by default (--wasm-size 8x768): a release-size float32 step takes ~30 s in wasm.

    python benchmarks/bench_quantize.py [--threads 2] [--only gemm,speed] [--keep] [--rounds 2]
        [--speed-precisions none,int8,int4] [--speed-cases forward,coarse,c2f,rss,prepack] [--quality-frames 575]
        [--wasm-size 8x768]

Random weights only (the real VampNet weights are not available here). Timings on a shared machine are noisy;
never assert on them in tests. Release-size runs need ~6-8 GB of RAM and ~6 GB of disk (deleted unless --keep).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
WORK = ROOT / "bench-out" / "quantize"
PRECISIONS = ("none", "int8", "int4", "w8")  # w8: weight-only 8-bit MatMulNBits, the browser GPU bundle (docs/WEB.md)
M = 575
GEMM_SHAPES = ((1280, 3840), (1280, 1280), (1280, 5120), (2560, 1280), (1280, 4096))

# ---- gemm -----------------------------------------------------------------------------------------------------


def gemm_model(kind: str, k: int, n: int, w: np.ndarray) -> bytes:
    from vampnet_ort.export.quantize import quantize_int4_blocks, quantize_int8_columns

    inits: list[TensorProto] = []
    if kind == "fp32 MatMul":
        inits = [numpy_helper.from_array(w, "w")]
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
    elif kind == "int8 DynamicQuantizeMatMul":
        q, s = quantize_int8_columns(w)
        inits = [numpy_helper.from_array(q, "w"), numpy_helper.from_array(s, "s")]
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "s"], ["y"], domain="com.microsoft")
    else:  # "int4 MatMulNBits bs=B al=A"
        bs = int(kind.split("bs=")[1].split()[0])
        al = int(kind.split("al=")[1])
        q, s = quantize_int4_blocks(w, bs)
        inits = [numpy_helper.from_array(q, "w"), numpy_helper.from_array(s, "s")]
        node = helper.make_node("MatMulNBits", ["x", "w", "s"], ["y"], domain="com.microsoft", K=k, N=n, bits=4,
                                block_size=bs, accuracy_level=al)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, n])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    return model.SerializeToString()


GEMM_KINDS = ("fp32 MatMul", "int8 DynamicQuantizeMatMul", "int4 MatMulNBits bs=32 al=4",
              "int4 MatMulNBits bs=128 al=4", "int4 MatMulNBits bs=128 al=0")


def section_gemm(threads: int) -> float:
    import onnxruntime as ort

    print(f"\n== GEMMs alone, M={M}, {threads} threads (min of 9 runs after 3 warm-ups, kinds interleaved) ==")
    rng = np.random.default_rng(0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    peak = 0.0
    print(f"  {'K x N':12s} {'kind':30s} {'ms':>8s} {'GOP/s':>8s} {'vs fp32':>8s} {'rel err':>8s}")
    for k, n in GEMM_SHAPES:
        w = (rng.standard_normal((k, n)) * k**-0.5).astype(np.float32)
        x = rng.standard_normal((M, k)).astype(np.float32)
        ref = x.astype(np.float64) @ w.astype(np.float64)
        sessions = {kind: ort.InferenceSession(gemm_model(kind, k, n, w), options, providers=["CPUExecutionProvider"])
                    for kind in GEMM_KINDS}
        times: dict[str, list[float]] = {kind: [] for kind in GEMM_KINDS}
        errors = {}
        for kind, s in sessions.items():
            y = s.run(None, {"x": x})[0]
            errors[kind] = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
            for _ in range(2):
                s.run(None, {"x": x})
        for _ in range(9):
            for kind, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"x": x})
                times[kind].append(time.perf_counter() - t)
        base = min(times["fp32 MatMul"])
        for kind in GEMM_KINDS:
            t = min(times[kind])
            gops = 2.0 * M * k * n / t / 1e9
            if kind.startswith("int8"):
                peak = max(peak, gops)
            print(f"  {f'{k}x{n}':12s} {kind:30s} {t * 1e3:8.2f} {gops:8.1f} {base / t:7.2f}x {errors[kind]:8.4f}")
    print(f"  int8 GEMM peak (DynamicQuantizeMatMul) in this run: {peak:.1f} GOP/s")
    return peak


# Codec decoder convolutions (release-like LAC decoder, decoder_dim 1536): (channels, length, kernel, dilation)
# of residual-unit convs at each upsampling stage for a 1.5 s chunk (docs/CODEC.md profile).
CODEC_CONVS = ((768, 1044, 7, 3), (384, 8352, 7, 1), (192, 33408, 7, 9), (384, 8352, 1, 1))


def conv_model(kind: str, c: int, k: int, dilation: int, w: np.ndarray, b: np.ndarray) -> bytes:
    """fp32 Conv, or int8: DynamicQuantizeLinear(x) -> ConvInteger(x_q, W_q uint8, zero points) -> Cast -> x scale."""
    pad = dilation * (k - 1) // 2
    conv_attrs = dict(kernel_shape=[k], dilations=[dilation], pads=[pad, pad])
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, "L"])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, "L"])
    if kind == "fp32 Conv":
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], **conv_attrs)]
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    else:  # uint8 weights with zero point 128 (ORT's CPU ConvInteger kernel takes uint8 x and uint8 w)
        absmax = np.abs(w).max()
        scale = np.float32(absmax / 127.0)
        wq = (np.clip(np.rint(w / scale), -127, 127) + 128).astype(np.uint8)
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node("ConvInteger", ["xq", "wq", "xz", "wz"], ["acc"], **conv_attrs),
            helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["xs", "ws"], ["s"]),
            helper.make_node("Mul", ["accf", "s"], ["ys"]),
            helper.make_node("Add", ["ys", "b3"], ["y"]),
        ]
        inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(np.array(128, np.uint8), "wz"),
                 numpy_helper.from_array(scale, "ws"), numpy_helper.from_array(b.reshape(1, c, 1), "b3")]
    graph = helper.make_graph(nodes, "conv", [x_info], [y_info], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10).SerializeToString()


def section_codec(threads: int) -> None:
    import onnxruntime as ort

    print(f"\n== codec decoder convs: fp32 Conv vs int8 ConvInteger (per-tensor scales), {threads} threads ==")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    rng = np.random.default_rng(0)
    print(f"  {'C x L, k, dilation':26s} {'fp32 ms':>9s} {'int8 ms':>9s} {'speed-up':>9s} {'SNR dB':>8s}")
    for c, length, k, dilation in CODEC_CONVS:
        w = (rng.standard_normal((c, c, k)) * (c * k) ** -0.5).astype(np.float32)
        b = (rng.standard_normal(c) * 0.01).astype(np.float32)
        x = np.sin(np.linspace(0, 300, length))[None, None, :] * rng.standard_normal((1, c, 1))
        x = (x + 0.1 * rng.standard_normal((1, c, length))).astype(np.float32)
        sessions = {kind: ort.InferenceSession(conv_model(kind, c, k, dilation, w, b), options,
                                               providers=["CPUExecutionProvider"]) for kind in ("fp32 Conv", "int8")}
        outs = {kind: s.run(None, {"x": x})[0] for kind, s in sessions.items()}
        times: dict[str, list[float]] = {kind: [] for kind in sessions}
        for _ in range(5):
            for kind, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"x": x})
                times[kind].append(time.perf_counter() - t)
        ref = outs["fp32 Conv"].astype(np.float64)
        snr = 10 * np.log10(np.sum(ref**2) / np.sum((outs["int8"] - ref) ** 2))
        t32, t8 = min(times["fp32 Conv"]), min(times["int8"])
        print(f"  {f'{c} x {length}, k{k}, d{dilation}':26s} {t32 * 1e3:9.2f} {t8 * 1e3:9.2f} {t32 / t8:8.2f}x "
              f"{snr:8.1f}")


# ---- build ----------------------------------------------------------------------------------------------------

BUILD_CHILD = """
import sys
from pathlib import Path
from vampnet_ort.export.bundle import export_bundle
from vampnet_ort.export.random_checkpoint import RELEASE_C2F_KWARGS, RELEASE_COARSE_KWARGS, random_vampnet_checkpoint
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec
out, quantize = Path(sys.argv[1]), sys.argv[2]
codec = random_codec({**RELEASE_LIKE_CONFIG, "encoder_dim": 64, "decoder_dim": 1536}, seed=1)
export_bundle(out, codec=codec, coarse=random_vampnet_checkpoint(RELEASE_COARSE_KWARGS, seed=2, name="bench coarse"),
              c2f=random_vampnet_checkpoint(RELEASE_C2F_KWARGS, seed=3, name="bench c2f"), logits=True, quantize=quantize)
"""


def bundle_dir(quantize: str) -> Path:
    return WORK / f"bundle-{quantize}"


def section_build() -> None:
    print("\n== release-size random bundles (export in a child process each) ==")
    WORK.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for q in PRECISIONS:
        out = bundle_dir(q)
        if not (out / "vampnet.json").is_file():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", BUILD_CHILD, str(out), q], check=True, cwd=WORK)
            print(f"  exported {q:5s} in {time.perf_counter() - t:6.1f} s")
        files = json.loads((out / "vampnet.json").read_text())["files"]
        vamp_files = [n for n in files if not n.endswith("_logits.onnx")]  # what `export` writes without --logits
        sizes[q] = {n: files[n]["bytes"] for n in vamp_files}
    base = sum(sizes["none"].values())
    for q in PRECISIONS:
        total = sum(sizes[q].values())
        transformer = sum(b for n, b in sizes[q].items() if not n.startswith("codec"))
        base_t = sum(b for n, b in sizes["none"].items() if not n.startswith("codec"))
        print(f"  bundle {q:5s}: {total / 1e9:6.3f} GB = {total / base:.3f}x float32 "
              f"(transformer files {transformer / 1e9:.3f} GB = {transformer / base_t:.3f}x; codec float32 "
              f"{(total - transformer) / 1e9:.3f} GB)")


# ---- speed ----------------------------------------------------------------------------------------------------

SPEED_CHILD = """
import sys, threading, time, numpy as np, onnxruntime as ort, vampnet_ort
sys.path.insert(0, sys.argv[1])
from bench_decode import decode_feeds
path, what, threads, repeats, prepack = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
peak = {"VmRSS": 0}
done = False
def sample():
    while not done:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                peak["VmRSS"] = max(peak["VmRSS"], int(line.split()[1]) * 1024)
        time.sleep(0.005)
sampler = threading.Thread(target=sample); sampler.start()
options = vampnet_ort.session_options(intra_op_threads=threads)
if prepack == "off":
    options.add_session_config_entry("session.disable_prepacking", "1")
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
if what == "forward":
    feeds = {"codes": np.random.default_rng(0).integers(0, 1025, (1, 4, 575)).astype(np.int64)}
elif what.startswith("coarse"):
    feeds = decode_feeds(4, 575, 0, int(what.split(":")[1]))
else:
    feeds = decode_feeds(14, 173, 4, int(what.split(":")[1]))
warm = dict(feeds)
if "num_steps" in warm:
    warm["num_steps"] = np.array(1, np.int64)
session.run(None, warm)
times = []
for _ in range(repeats):
    t = time.perf_counter(); session.run(None, feeds); times.append(time.perf_counter() - t)
done = True; sampler.join()
print(" ".join(map(str, times)), peak["VmRSS"])
"""


def speed_child(path: Path, what: str, threads: int, repeats: int, prepack: str = "off") -> tuple[list[float], int]:
    out = subprocess.run([sys.executable, "-c", SPEED_CHILD, str(BENCH), str(path), what, str(threads), str(repeats),
                          prepack], check=True, capture_output=True, text=True, cwd=WORK).stdout.split()
    return [float(v) for v in out[:-1]], int(out[-1])


def section_speed(threads: int, rounds: int, int8_peak: float | None, precisions: tuple[str, ...],
                  cases_wanted: tuple[str, ...]) -> None:
    sys.path.insert(0, str(BENCH))
    from bench_forward import forward_flops

    from vampnet_ort.export.random_checkpoint import RELEASE_C2F_KWARGS, RELEASE_COARSE_KWARGS
    from vampnet_ort.export.vampnet_weights import VampNetConfig

    coarse_cfg = VampNetConfig.from_kwargs(RELEASE_COARSE_KWARGS)
    c2f_cfg = VampNetConfig.from_kwargs(RELEASE_C2F_KWARGS)
    cases = [
        ("coarse forward T=575", "coarse_logits.onnx", "forward", 3, forward_flops(coarse_cfg, 575)),
        ("coarse decode 12 steps T=575", "coarse.onnx", "coarse:12", 1, 12 * forward_flops(coarse_cfg, 575)),
        ("c2f decode 2 steps T=173", "c2f.onnx", "c2f:2", 2, 2 * forward_flops(c2f_cfg, 173)),
    ]
    print(f"\n== speed, {threads} threads, one process per measurement, {rounds} alternating rounds (median) ==")
    print(f"  {'case':30s} {'precision':9s} {'s':>8s} {'vs fp32':>8s} {'GOP/s':>8s} {'of int8 peak':>13s}")
    for label, file_name, what, repeats, flops in cases:
        if what.split(":")[0] not in cases_wanted:
            continue
        times: dict[str, list[float]] = {q: [] for q in precisions}
        for _ in range(rounds):
            for q in precisions:
                times[q] += speed_child(bundle_dir(q) / file_name, what, threads, repeats)[0]
        base = statistics.median(times["none"])
        for q in precisions:
            s = statistics.median(times[q])
            frac = f"{flops / s / 1e9 / int8_peak:12.1%}" if int8_peak and q == "int8" else ""
            print(f"  {label:30s} {q:9s} {s:8.2f} {base / s:7.2f}x {flops / s / 1e9:8.1f} {frac:>13s}")

    if "prepack" in cases_wanted:
        print("\n== coarse forward T=575 with ORT's weight prepacking off vs on (fresh process each, alternating) ==")
        for q in precisions:
            times = {"off": [], "on": []}
            rss = {}
            for _ in range(rounds):
                for prepack in ("off", "on"):
                    t, peak = speed_child(bundle_dir(q) / "coarse_logits.onnx", "forward", threads, 2, prepack)
                    times[prepack] += t
                    rss[prepack] = peak
            off, on = statistics.median(times["off"]), statistics.median(times["on"])
            print(f"  {q:5s} prepacking off {off:7.2f} s (peak RSS {rss['off'] / 2**30:.2f} GiB), on {on:7.2f} s "
                  f"(peak RSS {rss['on'] / 2**30:.2f} GiB): on is {off / on:.2f}x faster")
    if "rss" not in cases_wanted:
        return
    print("\n== peak RSS of a fresh process: load coarse.onnx, 2-step decode T=575 ==")
    weights = (bundle_dir("none") / "coarse.onnx.data").stat().st_size
    rss = {}
    for q, prepack in (("none", "off"), ("int8", "off"), ("int8", "on"), ("int4", "off"), ("int4", "on")):
        if q not in precisions:
            continue
        t, peak = speed_child(bundle_dir(q) / "coarse.onnx", "coarse:2", threads, 2, prepack)
        rss[(q, prepack)] = peak
        print(f"  {q:5s} prepacking {prepack:3s}: peak RSS {peak / 2**30:6.2f} GiB = "
              f"{peak / rss[('none', 'off')]:.3f}x float32 (bundle loader settings); {peak / weights:.2f}x the float32 "
              f"weights; 2-step decode {statistics.median(t):6.2f} s")


# ---- quality --------------------------------------------------------------------------------------------------


def heavy_tailed_state(kwargs: dict, seed: int) -> dict[str, np.ndarray]:
    """Release-size random state with heavy tails: Student-t (df 3) linear weights at the same std, 8 input
    channels per linear scaled x8 (outlier columns of the torch weight), 8 RMSNorm gains per norm x8."""
    from vampnet_ort.export.random_checkpoint import random_vampnet_state

    state = random_vampnet_state(kwargs, seed=seed, lora_rank=0)
    rng = np.random.default_rng(seed + 100)
    for key in list(state):
        value = state[key]
        is_linear = key.endswith(".weight") and (".self_attn.w_" in key or ".self_attn.fc." in key
                                                  or ".feed_forward." in key)
        if is_linear and value.ndim == 2:
            std = float(value.std())
            t = rng.standard_t(3, size=value.shape).astype(np.float32)
            t *= np.float32(std / t.std())
            cols = rng.choice(value.shape[1], 8, replace=False)
            t[:, cols] *= np.float32(8.0)
            state[key] = t
        elif key.endswith(("norm_1.weight", "norm_3.weight")):
            idx = rng.choice(value.shape[0], 8, replace=False)
            value = value.copy()
            value[idx] *= np.float32(8.0)
            state[key] = value
    return state


HEAVY_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench_quantize import heavy_tailed_state
from vampnet_ort.export.checkpoint import Checkpoint
from vampnet_ort.export.decode_graph import decode_graph
from vampnet_ort.export.random_checkpoint import RELEASE_COARSE_KWARGS
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec
from vampnet_ort.export.vampnet_export import export_stage, logits_graph
out, quantize = Path(sys.argv[1]), sys.argv[2]
out.mkdir(parents=True, exist_ok=True)
state = heavy_tailed_state(dict(RELEASE_COARSE_KWARGS), 7)
ckpt = Checkpoint(path=Path("<heavy-tailed coarse>"), sha256="0" * 64, kwargs=dict(RELEASE_COARSE_KWARGS), state=state)
codec = random_codec({**RELEASE_LIKE_CONFIG, "encoder_dim": 8, "decoder_dim": 32}, seed=1)
export_stage(out, "coarse", ckpt, codec, graphs={"coarse.onnx": decode_graph, "coarse_logits.onnx": logits_graph},
             quantize=quantize)
"""

QUALITY_CHILD = """
import sys, numpy as np, vampnet_ort
sys.path.insert(0, sys.argv[1])
from bench_decode import decode_feeds
path, kind, out, threads, frames = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
session = vampnet_ort.create_session(path, intra_op_threads=threads)
if kind == "logits":
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, (2, 4, frames)).astype(np.int64)
    codes[1, :, rng.random(frames) < 0.7] = 1024  # the second item is 70% MASK, as in a decode's first steps
    np.save(out, session.run(None, {"codes": codes})[0])
else:
    feeds = decode_feeds(4, frames, 0, 12)
    feeds["mask_temperature"] = np.array(0.0, np.float32)
    feeds["sample_cutoff"] = np.array(-1.0, np.float32)  # argmax every step
    np.save(out, np.stack([session.run(None, feeds)[0], feeds["mask"]]))
"""


def section_quality(threads: int, frames: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from quality_metrics import logits_metrics  # the tests' metrics (not part of the shipped exporter)

    print("\n== quality vs float32 (random weights, NOT real VampNet) ==")
    models = {}
    for q in PRECISIONS:
        models[("release random coarse", q)] = bundle_dir(q)
        heavy = WORK / f"heavy-{q}"
        if not (heavy / "coarse.onnx").is_file():
            if heavy.exists():
                shutil.rmtree(heavy)
            subprocess.run([sys.executable, "-c", HEAVY_CHILD, str(heavy), q, str(BENCH)], check=True, cwd=WORK)
        models[("heavy-tailed coarse", q)] = heavy
    results = {}
    for (label, q), directory in models.items():
        for kind, file_name in (("logits", "coarse_logits.onnx"), ("decode", "coarse.onnx")):
            out = WORK / f"q_{label.split()[0]}_{q}_{kind}.npy"
            subprocess.run([sys.executable, "-c", QUALITY_CHILD, str(BENCH), str(directory / file_name), kind,
                            str(out), str(threads), str(frames)], check=True, cwd=WORK)
            results[(label, q, kind)] = np.load(out)
    print(f"  {'model':24s} {'prec':5s} {'logits rel err':>15s} {'mean KL':>10s} {'argmax agree':>13s} "
          f"{'decode tokens != fp32':>22s}")
    for label in ("release random coarse", "heavy-tailed coarse"):
        ref_logits = results[(label, "none", "logits")]
        ref_decode = results[(label, "none", "decode")]
        for q in ("int8", "int4", "w8"):
            m = logits_metrics(ref_logits, results[(label, q, "logits")])
            dec, mask = results[(label, q, "decode")][0], ref_decode[1]
            regenerated = mask == 1
            diff = float((dec != ref_decode[0])[regenerated].mean())
            print(f"  {label:24s} {q:5s} {m['rel']:15.4f} {m['kl']:10.2e} {m['argmax']:13.4f} {diff:22.2%}")
    print(f"  (logits: B=2 x T={frames}, item 0 random codes, item 1 70% MASK; decode: 12 argmax steps, mask "
          f"temperature 0, T={frames}, 6 of 7 frames masked; share of the regenerated tokens that differ)")


# ---- e2e ------------------------------------------------------------------------------------------------------


def section_e2e(threads: int) -> None:
    print(f"\n== end to end: bench_pipeline.py, 10 s of audio, app defaults (36 coarse steps), {threads} threads ==")
    for q in ("none", "int8"):
        proc = subprocess.run([sys.executable, str(BENCH / "bench_pipeline.py"), "--bundle", str(bundle_dir(q)),
                               "--threads", str(threads)], check=True, capture_output=True, text=True, cwd=WORK)
        print(f"  -- {q} --")
        for line in proc.stdout.strip().splitlines()[-12:]:
            print("  " + line)


WASM_CHILD = """
import sys
from pathlib import Path
from vampnet_ort.export.decode_graph import decode_graph
from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
from vampnet_ort.export.random_codec import RELEASE_LIKE_CONFIG, random_codec
from vampnet_ort.export.vampnet_export import export_stage
out, quantize, layers, width = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
kwargs = vampnet_kwargs(n_heads=width // 64, n_layers=layers, n_codebooks=4, embedding_dim=width)
codec = random_codec({**RELEASE_LIKE_CONFIG, "encoder_dim": 8, "decoder_dim": 32}, seed=1)
export_stage(out, "coarse", random_vampnet_checkpoint(kwargs, seed=2), codec, graphs={"coarse.onnx": decode_graph},
             quantize=quantize)
"""


def section_wasm(layers: int, width: int) -> None:
    import os

    modules = os.environ.get("ORT_WEB_NODE_MODULES")
    print(f"\n== onnxruntime-web (wasm, Node), one coarse step T=575, {layers} layers width {width} ==")
    if not modules:
        print("  skipped: set ORT_WEB_NODE_MODULES to a node_modules with onnxruntime-web (npm install onnxruntime-web)")
        return
    for q in ("none", "int8"):
        out = WORK / f"wasm-{layers}x{width}-{q}"
        if not (out / "coarse.onnx").is_file():
            subprocess.run([sys.executable, "-c", WASM_CHILD, str(out), q, str(layers), str(width)], check=True,
                           cwd=WORK)
    proc = subprocess.run(["node", str(BENCH / "bench_wasm_step.mjs"), str(WORK / f"wasm-{layers}x{width}-none"),
                           str(WORK / f"wasm-{layers}x{width}-int8"), "575", "3"], check=True, capture_output=True,
                          text=True, cwd=WORK)
    for line in proc.stdout.strip().splitlines():
        print("  " + line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="gemm,codec,build,speed,quality,e2e,wasm")
    ap.add_argument("--quality-frames", type=int, default=575, help="T of the quality logits and decode (default 575)")
    ap.add_argument("--speed-precisions", default="none,int8,int4")
    ap.add_argument("--speed-cases", default="forward,coarse,c2f,rss", help="subset of forward,coarse,c2f,rss,prepack")
    ap.add_argument("--wasm-size", default="8x768", help="LAYERSxWIDTH of the wasm step model (release: 20x1280)")
    ap.add_argument("--keep", action="store_true", help="keep bench-out/quantize (several GB) for later runs")
    args = ap.parse_args()
    only = args.only.split(",")
    WORK.mkdir(parents=True, exist_ok=True)  # children run here: the checkout's vampnet_ort/ must not shadow the install
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}; CPU: {_cpu_name()}; {args.threads} intra-op threads")
    peak = section_gemm(args.threads) if "gemm" in only else None
    if "codec" in only:
        section_codec(args.threads)
    if "build" in only or any(s in only for s in ("speed", "quality", "e2e")):
        section_build()
    if "speed" in only:
        section_speed(args.threads, args.rounds, peak, tuple(args.speed_precisions.split(",")),
                      tuple(args.speed_cases.split(",")))
    if "quality" in only:
        section_quality(args.threads, args.quality_frames)
    if "e2e" in only:
        section_e2e(args.threads)
    if "wasm" in only:
        layers, width = (int(v) for v in args.wasm_size.split("x"))
        section_wasm(layers, width)
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
