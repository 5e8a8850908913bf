// The JS pipeline's orchestration == Python's, exactly and independently of float rounding: the JS pipeline runs
// against the model calls recorded from the Python pipeline (tests/web/make_pipeline_vectors.py); every call must
// have the same model and bit-identical inputs (codes, masks, seeds, sampling settings, audio chunks), in the same
// order, and gets Python's output back. The final codes, mask and audio must then equal Python's exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../../vampnet_ort/web/pipeline.js';
import { vectors, decode } from './vectors.mjs';

const TYPES = { int64: BigInt64Array, float32: Float32Array };

function replayRunner(calls) {
  let i = 0;
  return {
    calls: () => i,
    async run(model, feeds) {
      assert.ok(i < calls.length, `call ${i} (${model}) was not made by Python`);
      const call = calls[i++];
      assert.equal(model, call.model, `call ${i - 1}`);
      assert.deepEqual(Object.keys(feeds).sort(), Object.keys(call.feeds).sort(), `call ${i - 1} ${model}: inputs`);
      for (const [name, f] of Object.entries(call.feeds)) {
        const ours = feeds[name];
        assert.equal(ours.type, f.dtype, `${model} ${name} type`);
        assert.deepEqual(ours.dims, f.dims, `call ${i - 1} ${model} ${name} dims`);
        assert.deepEqual(ours.data, decode(f.data, TYPES[f.dtype]), `call ${i - 1} ${model} ${name} values`);
      }
      return { data: decode(call.out.data, TYPES[call.out.dtype]), dims: call.out.dims };
    },
  };
}

test('orchestration: every model call and the result equal the Python pipeline', async () => {
  const { manifest, cases } = vectors('pipeline.json');
  for (const c of cases) {
    const runner = replayRunner(c.calls);
    const result = await new Pipeline(manifest, runner).vampSamples(decode(c.samples, Float32Array), c.options);
    assert.equal(runner.calls(), c.calls.length, 'JS made fewer model calls than Python');
    assert.deepEqual(result.codes.data, decode(c.codes, Int32Array));
    assert.deepEqual(result.mask.data, decode(c.mask, Uint8Array));
    assert.deepEqual(result.audio, decode(c.audio, Float32Array));
  }
});
