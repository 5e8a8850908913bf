import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loudness, prepare, finish } from '../../vampnet_ort/web/loudness.js';
import { vectors, decode } from './vectors.mjs';

test('BS.1770 loudness, -24 LUFS and back: the Python pipeline (pyloudnorm) on the same samples', () => {
  const cases = vectors('loudness.json');
  for (const c of cases) {
    const x = decode(c.samples, Float32Array);
    const lufs = loudness(x, c.rate);
    assert.ok(Math.abs(lufs - c.loudness) <= 1e-9 * Math.max(1, Math.abs(c.loudness)), `${lufs} vs ${c.loudness}`);
    const p = prepare(x, c.rate, c.hop);
    assert.equal(p.length, c.length);
    const expected = decode(c.prepared, Float32Array);
    assert.equal(p.samples.length, expected.length);
    let differ = 0;
    for (let i = 0; i < expected.length; i++) if (p.samples[i] !== expected[i]) differ++;
    assert.equal(differ, 0, `${differ} prepared samples differ (rate ${c.rate}, ${x.length} samples)`);
    const done = finish(decode(c.decoded, Float32Array), c.rate, x.length, p.inputLoudness);
    assert.deepEqual(done, decode(c.finished, Float32Array));
  }
});
