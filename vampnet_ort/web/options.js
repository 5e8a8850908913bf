// VampOptions of vampnet_ort/options.py as a plain object: same field names, same nesting, same defaults, same
// validation rules. The defaults, bounds and limits come from options.json, which Python writes from its one option
// table (`python -m vampnet_ort.options --web-json vampnet_ort/web/options.json`; tests/test_options.py checks the
// file is current). Missing fields take the defaults; unknown fields are refused (a typo never passes silently).

import SCHEMA from './options.json' with { type: 'json' };
import { validateMaskOptions, MaskError } from './masks.js';

const LIMITS = SCHEMA.limits;
export const MAX_VARIATIONS = LIMITS.MAX_VARIATIONS;
export const MAX_TIME_STRETCH = LIMITS.MAX_TIME_STRETCH;

export class OptionsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OptionsError';
  }
}

function deepFreeze(o) {
  for (const v of Object.values(o)) if (v !== null && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}

export const VAMP_DEFAULTS = deepFreeze(structuredClone(SCHEMA.defaults));

function atPath(object, path) {
  return path.split('.').reduce((o, key) => (o === undefined ? undefined : o[key]), object);
}

const UI_BOUND = 1e15; // wider bounds (int64, float32 max) stay in the validation, not on the input element

/** Set every option control under `root` (elements with data-option="field.path") to the default, bounds and
 * step of options.json: the page states no option value of its own. */
export function fillControls(root) {
  for (const el of root.querySelectorAll('[data-option]')) {
    const path = el.dataset.option;
    const value = atPath(VAMP_DEFAULTS, path);
    if (value === undefined) throw new OptionsError(`the page names an unknown option ${path}`);
    if (el.type === 'checkbox') {
      el.checked = Boolean(value);
      continue;
    }
    const bounds = SCHEMA.bounds[path];
    const step = bounds.step ?? 'any';
    el.step = String(step);
    const low = Number(bounds.min);
    let high = Number(bounds.max);
    if (bounds.max_open && typeof step === 'number') high -= step;
    if (bounds.min !== null && Math.abs(low) <= UI_BOUND) el.min = String(low);
    if (bounds.max !== null && Math.abs(high) <= UI_BOUND) el.max = String(Number(high.toFixed(6)));
    el.value = String(value);
  }
}

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

const FLOAT32_MAX = LIMITS.FLOAT32_MAX;
const INT64_MAX_TEXT = LIMITS.INT64_MAX; // 2^63 - 1 as text: not exact as a Number
const INT64_MAX = Number(INT64_MAX_TEXT); // rounds to 2**63 as a Number: the bound of Python's check
const MAX_STEPS = LIMITS.MAX_STEPS;
const MAX_FEEDBACK_STEPS = LIMITS.MAX_FEEDBACK_STEPS;

function validateSampling(o, stage) {
  if (!Number.isInteger(o.steps) || o.steps < 1 || o.steps > MAX_STEPS) {
    throw new OptionsError(`${stage} steps must be between 1 and ${MAX_STEPS}, got ${o.steps}`);
  }
  for (const name of ['temperature', 'mask_temperature', 'top_p', 'typical_mass', 'sample_cutoff']) {
    if (typeof o[name] !== 'number' || !Number.isFinite(o[name])) {
      throw new OptionsError(`${stage} ${name.replaceAll('_', ' ')} must be finite, got ${o[name]}`);
    }
    if (Math.abs(o[name]) > FLOAT32_MAX) {  // the graphs take float32: it would become infinite
      throw new OptionsError(`${stage} ${name.replaceAll('_', ' ')} must be at most ${FLOAT32_MAX.toPrecision(4)} in magnitude (a float32), got ${o[name]}`);
    }
  }
  if (o.temperature < 0) throw new OptionsError(`${stage} temperature must be >= 0 (0 = argmax), got ${o.temperature}`);
  if (o.mask_temperature < 0) throw new OptionsError(`${stage} mask temperature must be >= 0, got ${o.mask_temperature}`);
  if (!(o.top_p >= 0 && o.top_p <= 1)) throw new OptionsError(`${stage} top-p must be in [0, 1] (0 or 1: off), got ${o.top_p}`);
  if (!(o.typical_mass >= 0 && o.typical_mass < 1)) {
    throw new OptionsError(`${stage} typical mass must be in [0, 1) (0: off), got ${o.typical_mass}`);
  }
  if (!Number.isInteger(o.typical_min_tokens) || o.typical_min_tokens < 1 || o.typical_min_tokens > INT64_MAX) {
    throw new OptionsError(`${stage} typical min tokens must be between 1 and ${INT64_MAX_TEXT}, got ${o.typical_min_tokens}`);
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
  if (!Number.isInteger(o.feedback_steps) || o.feedback_steps < 1 || o.feedback_steps > MAX_FEEDBACK_STEPS) {
    throw new OptionsError(`feedback steps must be between 1 and ${MAX_FEEDBACK_STEPS}, got ${o.feedback_steps}`);
  }
  if (!Number.isInteger(o.time_stretch) || o.time_stretch < 1 || o.time_stretch > MAX_TIME_STRETCH) {
    throw new OptionsError(`time stretch must be an integer between 1 and ${MAX_TIME_STRETCH}, got ${o.time_stretch}`);
  }
  if (typeof o.use_c2f !== 'boolean') throw new OptionsError(`use_c2f must be true or false, got ${o.use_c2f}`);
  return o;
}
