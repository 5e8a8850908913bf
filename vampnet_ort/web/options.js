// VampOptions of vampnet_ort.pipeline as a plain object: same field names, same nesting, same defaults, same
// validation rules. Missing fields take the Python defaults; unknown fields are refused (a typo never passes
// silently).

import { MASK_DEFAULTS, validateMaskOptions, MaskError } from './masks.js';

export const MAX_VARIATIONS = 64;
export const MAX_TIME_STRETCH = 16;

export class OptionsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OptionsError';
  }
}

const SAMPLING_DEFAULTS = Object.freeze({
  steps: 36,
  temperature: 1.0,
  mask_temperature: 10.5,
  top_p: 0.0,
  typical_mass: 0.0,
  typical_min_tokens: 64,
  sample_cutoff: 1.0,
});

export const VAMP_DEFAULTS = Object.freeze({
  mask: MASK_DEFAULTS,
  coarse: SAMPLING_DEFAULTS,
  c2f: Object.freeze({ ...SAMPLING_DEFAULTS, steps: 2 }),
  use_c2f: true,
  seed: 0,
  variations: 1,
  feedback_steps: 1,
  time_stretch: 1,
});

function merge(defaults, given, where) {
  if (given === undefined || given === null) return { ...defaults };
  if (typeof given !== 'object' || Array.isArray(given)) throw new OptionsError(`${where || 'options'} must be an object`);
  for (const key of Object.keys(given)) {
    if (!(key in defaults)) {
      throw new OptionsError(`unknown option ${where ? `${where}.` : ''}${key} (known: ${Object.keys(defaults).join(', ')})`);
    }
  }
  const out = {};
  for (const [key, value] of Object.entries(defaults)) {
    const v = given[key];
    if (value !== null && typeof value === 'object') out[key] = merge(value, v, where ? `${where}.${key}` : key);
    else out[key] = v === undefined ? value : v;
  }
  return out;
}

const FLOAT32_MAX = 3.4028234663852886e38;
const INT64_MAX = 2 ** 63 - 1;  // rounds to 2**63 as a Number: the bound of Python's check

function validateSampling(o, stage) {
  if (!Number.isInteger(o.steps) || o.steps < 1 || o.steps > 10000) {
    throw new OptionsError(`${stage} steps must be between 1 and 10000, got ${o.steps}`);
  }
  for (const name of ['temperature', 'mask_temperature', 'top_p', 'typical_mass', 'sample_cutoff']) {
    if (typeof o[name] !== 'number' || !Number.isFinite(o[name])) {
      throw new OptionsError(`${stage} ${name.replaceAll('_', ' ')} must be finite, got ${o[name]}`);
    }
    if (Math.abs(o[name]) > FLOAT32_MAX) {  // the graphs take float32: it would become infinite
      throw new OptionsError(`${stage} ${name.replaceAll('_', ' ')} must be at most 3.403e+38 in magnitude (a float32), got ${o[name]}`);
    }
  }
  if (o.temperature < 0) throw new OptionsError(`${stage} temperature must be >= 0 (0 = argmax), got ${o.temperature}`);
  if (o.mask_temperature < 0) throw new OptionsError(`${stage} mask temperature must be >= 0, got ${o.mask_temperature}`);
  if (!(o.top_p >= 0 && o.top_p <= 1)) throw new OptionsError(`${stage} top-p must be in [0, 1] (0 or 1: off), got ${o.top_p}`);
  if (!(o.typical_mass >= 0 && o.typical_mass < 1)) {
    throw new OptionsError(`${stage} typical mass must be in [0, 1) (0: off), got ${o.typical_mass}`);
  }
  if (!Number.isInteger(o.typical_min_tokens) || o.typical_min_tokens < 1 || o.typical_min_tokens > INT64_MAX) {
    throw new OptionsError(`${stage} typical min tokens must be between 1 and 9223372036854775807, got ${o.typical_min_tokens}`);
  }
}

function isInt(v) {
  return Number.isInteger(v) || typeof v === 'bigint';
}

/** Complete `options` with the defaults and validate it (as VampOptions.validate); throws OptionsError. */
export function resolveOptions(options, nCodebooks) {
  const o = merge(VAMP_DEFAULTS, options ?? {}, '');
  try {
    validateMaskOptions(o.mask, nCodebooks);
  } catch (err) {
    if (err instanceof MaskError) throw new OptionsError(err.message);
    throw err;
  }
  validateSampling(o.coarse, 'coarse');
  validateSampling(o.c2f, 'c2f');
  if (!isInt(o.seed) || BigInt(o.seed) < -(2n ** 63n) || BigInt(o.seed) >= 2n ** 63n) {
    throw new OptionsError(`seed must fit in a signed 64-bit integer, got ${o.seed}`);
  }
  if (!Number.isInteger(o.variations) || o.variations < 1 || o.variations > MAX_VARIATIONS) {
    throw new OptionsError(`variations must be between 1 and ${MAX_VARIATIONS}, got ${o.variations}`);
  }
  if (!Number.isInteger(o.feedback_steps) || o.feedback_steps < 1 || o.feedback_steps > 100) {
    throw new OptionsError(`feedback steps must be between 1 and 100, got ${o.feedback_steps}`);
  }
  if (!Number.isInteger(o.time_stretch) || o.time_stretch < 1 || o.time_stretch > MAX_TIME_STRETCH) {
    throw new OptionsError(`time stretch must be an integer between 1 and ${MAX_TIME_STRETCH}, got ${o.time_stretch}`);
  }
  if (typeof o.use_c2f !== 'boolean') throw new OptionsError(`use_c2f must be true or false, got ${o.use_c2f}`);
  return o;
}
