"""The int8 codec decoder for onnxruntime-web (tests/web/codec_int8.test.mjs): model, codes and native audio.

    python tests/web/make_codec_int8_vectors.py OUT_DIR

Exports the decoder of a random codec of decoder width 384 with ``--quantize int8`` (the residual convs of its 192-
and 96-channel levels run as vampnet.DynamicQuantizeIm2Col + MatMulInteger, channels-last, with channels-last
Snakes) to OUT_DIR/codec_int8_decoder.onnx, and writes OUT_DIR/codec_int8.json: the codes the float32 encoder makes
of a test signal and the audio native ONNX Runtime decodes from them with the C++ op library. In onnxruntime-web the
same graph runs the ops' reference functions (no library), so its audio is compared by SNR.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

import vampnet_ort
from vampnet_ort.export.codec import decoder_model, encoder_model
from vampnet_ort.export.random_codec import GOLDEN_LIKE_CONFIG, random_codec


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    codec = random_codec({**GOLDEN_LIKE_CONFIG, "decoder_dim": 384}, seed=3)
    model = decoder_model(codec, quantize="int8")
    assert any(n.op_type == "DynamicQuantizeIm2Col" for n in model.graph.node)
    (out / "codec_int8_decoder.onnx").write_bytes(model.SerializeToString())
    t = np.arange(int(0.5 * 44100)) / 44100
    signal = (0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.2 * np.sin(2 * np.pi * 1330.0 * t)).astype(np.float32)
    encoder = vampnet_ort.create_session(encoder_model(codec).SerializeToString())
    codes = encoder.run(None, {"audio": signal[None, None]})[0].astype(np.int64)
    decoder = vampnet_ort.create_session(model.SerializeToString())
    audio = decoder.run(None, {"codes": codes})[0].astype(np.float32)
    (out / "codec_int8.json").write_text(json.dumps({
        "model": "codec_int8_decoder.onnx", "codes": b64(codes), "codes_shape": list(codes.shape),
        "audio": b64(audio), "audio_shape": list(audio.shape)}))


if __name__ == "__main__":
    main()
