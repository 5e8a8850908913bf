// Mask builders of the vamp pipeline, ported from vampnet_ort/masks.py (same results bit for bit: the random ones
// follow the counter-based contract of docs/PIPELINE.md, "Mask random numbers"). Onset and beat masks need librosa
// and are Python-only. A mask is {data: Uint8Array, shape: [B, C, T]} (row-major), 1 = regenerate, 0 = keep.

import SCHEMA from './options.json' with { type: 'json' };
import { philox4x32_10, itemKey, uniformFromWord } from './philox.js';

export const PURPOSE_INTENSITY = 0x4d534b01;
export const PURPOSE_ROLL = 0x4d534b02;
export const PURPOSE_DROPOUT = 0x4d534b03;

export class MaskError extends Error {
  constructor(message) {
    super(message);
    this.name = 'MaskError';
  }
}

/** The defaults of Python's MaskOptions (the upstream app's), from options.json (written by vampnet_ort/options.py). */
export const MASK_DEFAULTS = Object.freeze({ ...SCHEMA.defaults.mask });

function checkShape(shape) {
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new MaskError(`mask shape must be (batch, codebooks, frames), got ${JSON.stringify(shape)}`);
  }
  return shape;
}

function checkProbability(value, name) {
  const v = Number(value);
  if (!(v >= 0 && v <= 1)) throw new MaskError(`${name} must be in [0, 1], got ${value}`);
  return v;
}

export function fullMask(shape) {
  const [b, c, t] = checkShape(shape);
  return { data: new Uint8Array(b * c * t).fill(1), shape: [b, c, t] };
}

export function emptyMask(shape) {
  const [b, c, t] = checkShape(shape);
  return { data: new Uint8Array(b * c * t), shape: [b, c, t] };
}

/** The mask random numbers of one pass of a run seeded `seed` (item b keyed seed + b). */
export class MaskRng {
  constructor(seed, passIndex = 0) {
    const s = BigInt(seed);
    if (s < -(2n ** 63n) || s >= 2n ** 63n) throw new MaskError(`seed must fit in a signed 64-bit integer, got ${seed}`);
    if (!Number.isInteger(passIndex) || passIndex < 0 || passIndex >= 2 ** 32) {
      throw new MaskError(`pass index must be in [0, 2^32), got ${passIndex}`);
    }
    this.seed = s;
    this.passIndex = passIndex;
  }

  /** Word 0 of the block with counter (t, c, pass, purpose) and item b's key. */
  word(purpose, b, c, t) {
    return philox4x32_10([t, c, this.passIndex, purpose], itemKey(this.seed, b))[0];
  }

  /** Float64Array [B*C*T] of uniforms u(purpose; b, c, t). */
  uniform(purpose, shape) {
    const [nb, nc, nt] = checkShape(shape);
    const out = new Float64Array(nb * nc * nt);
    let i = 0;
    for (let b = 0; b < nb; b++) {
      const key = itemKey(this.seed, b);
      for (let c = 0; c < nc; c++) {
        for (let t = 0; t < nt; t++) {
          out[i++] = uniformFromWord(philox4x32_10([t, c, this.passIndex, purpose], key)[0]);
        }
      }
    }
    return out;
  }

  /** One integer in [0, modulus) per item: word (counter (0, 0, pass, purpose)) mod modulus. */
  offsets(purpose, batch, modulus) {
    const out = [];
    for (let b = 0; b < batch; b++) out.push(this.word(purpose, b, 0, 0) % modulus);
    return out;
  }
}

function checkRng(rng, what) {
  if (!(rng instanceof MaskRng)) throw new MaskError(`${what} needs a MaskRng`);
  return rng;
}

export function randomMask(shape, intensity, rng) {
  const p = checkProbability(intensity, 'mask intensity');
  checkRng(rng, 'randomMask');
  const [b, c, t] = checkShape(shape);
  if (p === 0 || p === 1) return { data: new Uint8Array(b * c * t).fill(p), shape: [b, c, t] };
  const u = rng.uniform(PURPOSE_INTENSITY, shape);
  const data = new Uint8Array(u.length);
  for (let i = 0; i < u.length; i++) data[i] = u[i] < p ? 1 : 0;
  return { data, shape: [b, c, t] };
}

export function inpaint(shape, nPrefix, nSuffix) {
  if (nPrefix < 0 || nSuffix < 0) {
    throw new MaskError(`prefix and suffix must be >= 0 frames, got ${nPrefix} and ${nSuffix}`);
  }
  const mask = fullMask(shape);
  const [nb, nc, nt] = mask.shape;
  for (let row = 0; row < nb * nc; row++) {
    const base = row * nt;
    for (let t = 0; t < Math.min(nPrefix, nt); t++) mask.data[base + t] = 0;
    // numpy's mask[..., -n:] with n > T clears the whole row, as here
    for (let t = Math.max(0, nt - nSuffix); t < nt && nSuffix > 0; t++) mask.data[base + t] = 0;
  }
  return mask;
}

function rollRow(data, base, n, shift) {
  if (n === 0 || shift % n === 0) return;
  const row = data.slice(base, base + n);
  for (let t = 0; t < n; t++) data[base + ((t + shift) % n)] = row[t];
}

export function periodicMask(shape, period, width = 1, randomRoll = false, rng = null) {
  if (!Number.isInteger(period) || period < 0) throw new MaskError(`periodic prompt period must be >= 0, got ${period}`);
  if (!Number.isInteger(width) || width < 0) throw new MaskError(`periodic prompt width must be >= 0, got ${width}`);
  const mask = fullMask(shape);
  if (period === 0) return mask;
  const [nb, nc, nt] = mask.shape;
  const half = Math.floor(width / 2);
  const row = new Uint8Array(nt).fill(1);
  for (let j = 0; j < nt; j += period) {
    for (let t = Math.max(0, j - half); t <= Math.min(nt - 1, j + half); t++) row[t] = 0;
  }
  for (let r = 0; r < nb * nc; r++) mask.data.set(row, r * nt);
  if (randomRoll) {
    if (rng === null) throw new MaskError('periodicMask(randomRoll=true) needs a MaskRng');
    const offsets = checkRng(rng, 'periodicMask').offsets(PURPOSE_ROLL, nb, period);
    for (let b = 0; b < nb; b++) {
      for (let c = 0; c < nc; c++) rollRow(mask.data, (b * nc + c) * nt, nt, offsets[b]);
    }
  }
  return mask;
}

export function timeStretchMask(shape, factor) {
  if (!Number.isInteger(factor) || factor < 1) throw new MaskError(`time stretch factor must be >= 1, got ${factor}`);
  return periodicMask(shape, factor, 1);
}

function sameShape(a, b) {
  if (a.shape.join() !== b.shape.join()) {
    throw new MaskError(`mask shapes differ: ${JSON.stringify(a.shape)} vs ${JSON.stringify(b.shape)}`);
  }
}

export function maskAnd(a, b) {
  sameShape(a, b);
  const data = new Uint8Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i] & b.data[i];
  return { data, shape: [...a.shape] };
}

export function maskOr(a, b) {
  sameShape(a, b);
  const data = new Uint8Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i] | b.data[i];
  return { data, shape: [...a.shape] };
}

export function dropout(mask, probability, rng) {
  const p = checkProbability(probability, 'dropout');
  checkRng(rng, 'dropout');
  const data = mask.data.slice();
  if (p === 0 || !data.includes(0)) return { data, shape: [...mask.shape] };
  if (p === 1) return { data: data.fill(1), shape: [...mask.shape] };
  const u = rng.uniform(PURPOSE_DROPOUT, mask.shape);
  for (let i = 0; i < data.length; i++) if (u[i] < p) data[i] = 1;
  return { data, shape: [...mask.shape] };
}

function setCodebooks(mask, from, to, value) {
  const [nb, nc, nt] = mask.shape;
  const data = mask.data.slice();
  for (let b = 0; b < nb; b++) {
    for (let c = Math.max(0, from); c < Math.min(nc, to); c++) data.fill(value, (b * nc + c) * nt, (b * nc + c + 1) * nt);
  }
  return { data, shape: [...mask.shape] };
}

/** Regenerate every codebook >= upperCodebook (null: unchanged). */
export function codebookMask(mask, upperCodebook) {
  if (upperCodebook === null || upperCodebook === undefined) return { data: mask.data.slice(), shape: [...mask.shape] };
  if (upperCodebook < 0) throw new MaskError(`upper codebook mask must be >= 0, got ${upperCodebook}`);
  return setCodebooks(mask, upperCodebook, mask.shape[1], 1);
}

/** Keep every codebook < nConditioning (null: unchanged). */
export function codebookUnmask(mask, nConditioning) {
  if (nConditioning === null || nConditioning === undefined) return { data: mask.data.slice(), shape: [...mask.shape] };
  if (nConditioning < 0) throw new MaskError(`number of conditioning codebooks must be >= 0, got ${nConditioning}`);
  return setCodebooks(mask, 0, nConditioning, 0);
}

/** Python's seconds_to_frames: ceil(seconds * sample_rate / hop). */
export function secondsToFrames(seconds, sampleRate, hopLength) {
  return Math.ceil((Number(seconds) * sampleRate) / hopLength);
}

const { MAX_SECONDS, MAX_INT_OPTION, MAX_SECONDS_TEXT, MAX_BEAT_MS_TEXT } = SCHEMA.limits;

/** Python's MaskOptions.validate, same rules and messages. */
export function validateMaskOptions(o, nCodebooks) {
  checkProbability(o.intensity, 'mask intensity');
  checkProbability(o.dropout, 'dropout');
  // MAX_SECONDS and MAX_INT_OPTION of vampnet_ort/options.py; the bounds as Python's '{high:g}' prints them
  for (const [name, label, high, shown] of [['prefix_s', 'prefix (seconds)', MAX_SECONDS, MAX_SECONDS_TEXT],
    ['suffix_s', 'suffix (seconds)', MAX_SECONDS, MAX_SECONDS_TEXT],
    ['beat_width_ms', 'beat width (ms)', MAX_SECONDS * 1000, MAX_BEAT_MS_TEXT]]) {
    const v = Number(o[name]);
    if (!Number.isFinite(v) || v < 0 || v > high) throw new MaskError(`${label} must be between 0 and ${shown}, got ${o[name]}`);
  }
  for (const name of ['periodic_period', 'periodic_width', 'onset_width', 'n_conditioning_codebooks', 'upper_codebook_mask']) {
    if (!Number.isInteger(o[name])) throw new MaskError(`${name.replaceAll('_', ' ')} must be an integer, got ${o[name]}`);
    if (o[name] < 0 || o[name] > MAX_INT_OPTION) {
      throw new MaskError(`${name.replaceAll('_', ' ')} must be between 0 and ${MAX_INT_OPTION}, got ${o[name]}`);
    }
  }
  if (o.upper_codebook_mask > nCodebooks) {
    throw new MaskError(`upper codebook mask ${o.upper_codebook_mask} is beyond the model's ${nCodebooks} codebooks`);
  }
  if (o.onset_width > 0 || o.beat_width_ms > 0) {
    throw new MaskError('onset and beat masks need librosa: they run in Python only (vampnet-ort vamp --onset-width / --beat-width)');
  }
  if (o.n_conditioning_codebooks > nCodebooks) {
    throw new MaskError(`conditioning codebooks ${o.n_conditioning_codebooks} is beyond the model's ${nCodebooks} codebooks`);
  }
}

/** The app's recipe (Python build_mask without onset/beat masks). */
export function buildMask(options, shape, rng, sampleRate = 44100, hopLength = 768) {
  const o = { ...MASK_DEFAULTS, ...options };
  checkShape(shape);
  validateMaskOptions(o, shape[1]);
  let mask = randomMask(shape, o.intensity, rng);
  mask = maskAnd(mask, inpaint(shape, secondsToFrames(o.prefix_s, sampleRate, hopLength),
    secondsToFrames(o.suffix_s, sampleRate, hopLength)));
  mask = maskAnd(mask, periodicMask(shape, o.periodic_period, o.periodic_width, Boolean(o.periodic_random_roll), rng));
  mask = dropout(mask, o.dropout, rng);
  mask = codebookUnmask(mask, o.n_conditioning_codebooks);
  mask = codebookMask(mask, o.upper_codebook_mask);
  return mask;
}

/** Time stretch by an integer factor (Python masks.stretch): codes {data, shape} and mask -> stretched pair. */
export function stretch(codes, mask, factor) {
  if (!Number.isInteger(factor) || factor < 1) throw new MaskError(`time stretch factor must be >= 1, got ${factor}`);
  if (codes.shape.join() !== mask.shape.join()) throw new MaskError('codes and mask differ in shape');
  const [nb, nc, nt] = mask.shape;
  const shape = [nb, nc, nt * factor];
  const sCodes = new codes.data.constructor(nb * nc * nt * factor);
  const sMask = new Uint8Array(nb * nc * nt * factor);
  for (let row = 0; row < nb * nc; row++) {
    for (let t = 0; t < nt; t++) {
      for (let k = 0; k < factor; k++) {
        sCodes[row * nt * factor + t * factor + k] = codes.data[row * nt + t];
        sMask[row * nt * factor + t * factor + k] = k === 0 ? mask.data[row * nt + t] : 1;
      }
    }
  }
  return [{ data: sCodes, shape }, { data: sMask, shape }];
}
