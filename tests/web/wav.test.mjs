import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeWav } from '../../vampnet_ort/web/wav.js';
import { vectors, decode } from './vectors.mjs';

test('WAV writer: the samples soundfile (libsndfile PCM_16) writes, in a valid RIFF header', () => {
  for (const c of vectors('wav.json')) {
    const x = decode(c.samples, Float32Array);
    const ours = encodeWav(x, c.rate);
    const theirs = new Uint8Array(Buffer.from(c.wav, 'base64'));
    const view = new DataView(ours.buffer);
    assert.equal(String.fromCharCode(...ours.slice(0, 4)), 'RIFF');
    assert.equal(view.getUint32(24, true), c.rate);
    // locate libsndfile's data chunk (it may write extra chunks before it)
    let pos = 12;
    const tv = new DataView(theirs.buffer);
    while (String.fromCharCode(...theirs.slice(pos, pos + 4)) !== 'data') pos += 8 + tv.getUint32(pos + 4, true);
    const theirSamples = new Int16Array(theirs.slice(pos + 8, pos + 8 + x.length * 2).buffer);
    const ourSamples = new Int16Array(ours.slice(44).buffer);
    assert.equal(ourSamples.length, theirSamples.length);
    const bad = [];
    for (let i = 0; i < x.length; i++) if (ourSamples[i] !== theirSamples[i]) bad.push([i, x[i], ourSamples[i], theirSamples[i]]);
    assert.deepEqual(bad.slice(0, 5), []);
  }
});
