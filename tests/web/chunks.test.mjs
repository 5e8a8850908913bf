import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChunks, decodeChunks, numSamples, deriveSeed, coarseChunks, c2fChunks } from '../../vampnet_ort/web/chunks.js';
import { vectors } from './vectors.mjs';

test('codec chunk plans and seams equal vampnet_ort.codec for three codecs', () => {
  const { codecs } = vectors('chunks.json');
  for (const { geometry, encode, decode } of codecs) {
    for (const c of encode) assert.deepEqual(encodeChunks(geometry, c.n, c.chunk), c.plan, `encode n=${c.n} chunk=${c.chunk}`);
    for (const c of decode) {
      assert.deepEqual(decodeChunks(geometry, c.total, c.chunk), c.plan, `decode T=${c.total} chunk=${c.chunk}`);
      assert.equal(numSamples(geometry, c.total), c.samples);
    }
  }
});

test('derive_seed equals Python (splitmix64 chain, signed wrap-around)', () => {
  const { seeds } = vectors('chunks.json');
  for (const s of seeds) assert.equal(deriveSeed(BigInt(s.seed), ...s.labels), BigInt(s.derived));
});

test('stage chunks: coarse 575 (last shorter), c2f 173 fixed with padding', () => {
  assert.deepEqual(coarseChunks(1200, 575), [[0, 575], [575, 1150], [1150, 1200]]);
  assert.deepEqual(coarseChunks(575, 575), [[0, 575]]);
  assert.deepEqual(c2fChunks(400, 173), { chunks: [[0, 173], [173, 346], [346, 519]], padded: 519 });
});
