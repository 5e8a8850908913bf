// The int8 codec decoder (DynamicQuantizeIm2Col + MatMulInteger, channels-last Snakes) in onnxruntime-web's wasm
// build under Node, against native ONNX Runtime with the C++ op library (tests/web/make_codec_int8_vectors.py).
// onnxruntime-web runs the ops' reference functions; their float rounding can move a dynamic activation scale, so
// the audio is compared by SNR with the int8 quality goal (30 dB, docs/QUANTIZATION.md "Codec").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vectors, decode } from './vectors.mjs';
import { loadOrt } from './node_runner.mjs';

test('int8 codec decoder in onnxruntime-web == native ORT with the op library (>= 30 dB)', async () => {
  const v = vectors('codec_int8.json');
  const ort = await loadOrt();
  ort.env.wasm.numThreads = 1;
  const bytes = readFileSync(join(process.env.VAMPNET_WEB_VECTORS, v.model));
  const session = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['wasm'] });
  const codes = new ort.Tensor('int64', decode(v.codes, BigInt64Array), v.codes_shape);
  const { audio } = await session.run({ codes });
  assert.deepEqual(audio.dims, v.audio_shape);
  const expected = decode(v.audio, Float32Array);
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < expected.length; i++) {
    signal += expected[i] * expected[i];
    noise += (audio.data[i] - expected[i]) ** 2;
  }
  const snr = noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
  console.log(`# int8 decoder, wasm vs native: SNR ${snr.toFixed(1)} dB over ${expected.length} samples`);
  assert.ok(snr >= 30, `SNR ${snr} dB`);
  await session.release();
});
