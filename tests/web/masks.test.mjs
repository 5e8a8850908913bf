import { test } from 'node:test';
import assert from 'node:assert/strict';
import { philox4x32_10, mulhilo32 } from '../../vampnet_ort/web/philox.js';
import * as masks from '../../vampnet_ort/web/masks.js';
import { resolveOptions, VAMP_DEFAULTS, OptionsError } from '../../vampnet_ort/web/options.js';
import { vectors, decode } from './vectors.mjs';

test('mulhilo32 is the exact 64-bit product', () => {
  for (const [a, b] of [[0xffffffff, 0xffffffff], [0xd2511f53, 0x12345678], [1, 0], [0x80000000, 2]]) {
    const p = BigInt(a) * BigInt(b);
    assert.deepEqual(mulhilo32(a, b), [Number(p >> 32n), Number(p & 0xffffffffn)]);
  }
});

test('Philox4x32-10: Random123 known answers and the Python implementation', () => {
  assert.deepEqual(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  const all = 0xffffffff;
  assert.deepEqual(philox4x32_10([all, all, all, all], [all, all]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  const v = vectors('philox.json');
  for (const c of v.philox) assert.deepEqual(philox4x32_10(c.counter, c.key), c.words);
  for (const r of v.mask_rng) {
    const rng = new masks.MaskRng(BigInt(r.seed), r.pass);
    assert.deepEqual(rng.uniform(masks.PURPOSE_INTENSITY, r.shape), decode(r.uniform, Float64Array));
    assert.deepEqual(rng.offsets(masks.PURPOSE_ROLL, 3, 13), r.offsets);
  }
});

test('build_mask: bit for bit the Python masks for the same seed, pass and options', () => {
  const { cases } = vectors('masks.json');
  let n = 0;
  for (const c of cases) {
    if (c.stretch) {
      const codes = { data: decode(c.codes, Int32Array), shape: c.shape };
      const mask = { data: decode(c.mask_in, Uint8Array), shape: c.shape };
      const [sc, sm] = masks.stretch(codes, mask, c.stretch);
      assert.deepEqual(sc.data, decode(c.codes_out, Int32Array));
      assert.deepEqual(sm.data, decode(c.mask, Uint8Array));
      continue;
    }
    const got = masks.buildMask(c.options, c.shape, new masks.MaskRng(BigInt(c.seed), c.pass));
    assert.deepEqual(got.shape, c.shape);
    assert.deepEqual(got.data, decode(c.mask, Uint8Array), JSON.stringify(c.options));
    n++;
  }
  assert.ok(n >= 20, `only ${n} mask cases`);
});

test('options: Python defaults, nesting, and the same refusals', () => {
  const { defaults, invalid_options: invalid } = vectors('masks.json');
  const resolved = resolveOptions({}, 14);
  assert.deepEqual(JSON.parse(JSON.stringify(resolved)), defaults);
  assert.deepEqual(JSON.parse(JSON.stringify(VAMP_DEFAULTS)), defaults);
  const partial = resolveOptions({ seed: 5, coarse: { steps: 4 }, c2f: { steps: 2 }, mask: { periodic_period: 5 } }, 14);
  assert.equal(partial.coarse.steps, 4);
  assert.equal(partial.coarse.temperature, 1.0);
  assert.equal(partial.mask.periodic_period, 5);
  assert.equal(partial.mask.upper_codebook_mask, 3);
  for (const c of invalid) {
    const prefix = c.message.split(', got')[0].split(' is beyond')[0];
    assert.throws(() => resolveOptions(c.options, 14), (err) => err instanceof OptionsError && err.message.startsWith(prefix),
      `${JSON.stringify(c.options)}: expected "${c.message}"`);
  }
  assert.throws(() => resolveOptions({ mask: { periodc_period: 3 } }, 14), /unknown option mask.periodc_period/);
  assert.throws(() => resolveOptions({ mask: { onset_width: 2 } }, 14), /Python only/);
});
