// ITU-R BS.1770-4 integrated loudness, mono, following pyloudnorm 0.2 (what vampnet_ort.audio uses) step by step:
// RBJ-cookbook K-weighting biquads (high shelf +4 dB at 1500 Hz, high pass 38 Hz), scipy lfilter's transposed
// direct form II, 400 ms blocks with 75 % overlap, absolute (-70 LUFS) and relative (-10 LU) gates. Then the
// pipeline's -24 LUFS normalisation and its restoration (vampnet_ort.audio.prepare / finish).
// Tested against pyloudnorm in tests/web/loudness.test.mjs (vectors written by the Python implementation).

export const TARGET_LOUDNESS_LUFS = -24.0;
export const MIN_LOUDNESS_LUFS = -70.0;
const BLOCK_S = 0.4;
const OVERLAP = 0.75;

function biquad(G, Q, fc, rate, type) {
  const A = 10 ** (G / 40.0);
  const w0 = 2.0 * Math.PI * (fc / rate);
  const alpha = Math.sin(w0) / (2.0 * Q);
  const cos = Math.cos(w0);
  let b;
  let a;
  if (type === 'high_shelf') {
    const s = 2 * Math.sqrt(A) * alpha;
    b = [A * (A + 1 + (A - 1) * cos + s), -2 * A * (A - 1 + (A + 1) * cos), A * (A + 1 + (A - 1) * cos - s)];
    a = [A + 1 - (A - 1) * cos + s, 2 * (A - 1 - (A + 1) * cos), A + 1 - (A - 1) * cos - s];
  } else {
    b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2];
    a = [1 + alpha, -2 * cos, 1 - alpha];
  }
  return { b: b.map((v) => v / a[0]), a: a.map((v) => v / a[0]) };
}

/** scipy.signal.lfilter(b, a, x) for a biquad with a[0] = 1 (transposed direct form II), float64. */
function lfilter({ b, a }, x) {
  const y = new Float64Array(x.length);
  let z0 = 0;
  let z1 = 0;
  for (let n = 0; n < x.length; n++) {
    const xn = x[n];
    const yn = xn * b[0] + z0;
    z0 = z1 + xn * b[1] - yn * a[1];
    z1 = xn * b[2] - yn * a[2];
    y[n] = yn;
  }
  return y;
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function mean(values) {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** pyloudnorm.Meter(rate).integrated_loudness(x) for mono x (length >= 0.4 s * rate); -Infinity for silence. */
export function integratedLoudness(samples, rate) {
  if (samples.length < BLOCK_S * rate) throw new RangeError('audio must be longer than the 400 ms block');
  let x = Float64Array.from(samples);
  x = lfilter(biquad(4.0, 1 / Math.sqrt(2), 1500.0, rate, 'high_shelf'), x);
  x = lfilter(biquad(0.0, 0.5, 38.0, rate, 'high_pass'), x);
  const step = 1.0 - OVERLAP;
  const T = x.length / rate;
  const numBlocks = roundHalfEven((T - BLOCK_S) / (BLOCK_S * step)) + 1;
  const z = new Float64Array(numBlocks);
  for (let j = 0; j < numBlocks; j++) {
    const lo = Math.trunc(BLOCK_S * (j * step) * rate);
    const hi = Math.min(x.length, Math.trunc(BLOCK_S * (j * step + 1) * rate));
    let s = 0;
    for (let i = lo; i < hi; i++) s += x[i] * x[i];
    z[j] = (1.0 / (BLOCK_S * rate)) * s;
  }
  const l = Array.from(z, (zj) => -0.691 + 10.0 * Math.log10(zj));
  const absGated = [];
  for (let j = 0; j < numBlocks; j++) if (l[j] >= -70.0) absGated.push(z[j]);
  const gammaR = -0.691 + 10.0 * Math.log10(absGated.length ? mean(absGated) : NaN) - 10.0;
  const gated = [];
  for (let j = 0; j < numBlocks; j++) if (l[j] > gammaR && l[j] > -70.0) gated.push(z[j]);
  const zAvg = gated.length ? mean(gated) : 0; // np.nan_to_num(mean([])) = 0
  return -0.691 + 10.0 * Math.log10(zAvg);
}

/** vampnet_ort.audio.loudness: integrated loudness of mono samples (zero-padded to > 400 ms), floored at -70. */
export function loudness(samples, rate) {
  const minLen = Math.ceil(BLOCK_S * rate) + 1;
  let x = samples;
  if (x.length < minLen) {
    x = new Float64Array(minLen);
    x.set(samples);
  }
  const value = integratedLoudness(x, rate);
  if (!Number.isFinite(value)) return MIN_LOUDNESS_LUFS;
  return Math.max(value, MIN_LOUDNESS_LUFS);
}

/** vampnet_ort.audio.set_loudness: Float32Array scaled (in float64, rounded to float32) to targetLufs. */
export function setLoudness(samples, rate, targetLufs, currentLufs = null) {
  const current = currentLufs === null ? loudness(samples, rate) : currentLufs;
  const gain = 10.0 ** ((targetLufs - current) / 20.0);
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] * gain;
  return out;
}

/** vampnet_ort.audio.limit_peak: scale down (in float32) so that max |x| <= peak. */
export function limitPeak(samples, peak = 1.0) {
  let current = 0;
  for (const v of samples) current = Math.max(current, Math.abs(v));
  if (current > peak) {
    const scale = Math.fround(peak / current);
    const out = new Float32Array(samples.length);
    for (let i = 0; i < samples.length; i++) out[i] = samples[i] * scale;
    return out;
  }
  return Float32Array.from(samples);
}

/** vampnet_ort.audio.prepare for mono audio already at the codec rate: {samples (padded), length, inputLoudness}. */
export function prepare(mono, rate, hopLength) {
  if (mono.length === 0) throw new RangeError('the audio holds no samples');
  const inputLoudness = loudness(mono, rate);
  const normalized = limitPeak(setLoudness(mono, rate, TARGET_LOUDNESS_LUFS, inputLoudness));
  const padded = new Float32Array(Math.ceil(normalized.length / hopLength) * hopLength);
  padded.set(normalized);
  return { samples: padded, length: normalized.length, inputLoudness };
}

/** vampnet_ort.audio.finish: trim/zero-pad the decoder output to `length`, restore `targetLufs`, peak <= 1. */
export function finish(decoded, rate, length, targetLufs) {
  const x = new Float32Array(length);
  x.set(decoded.subarray(0, Math.min(length, decoded.length)));
  for (const v of x) if (!Number.isFinite(v)) throw new RangeError('the decoder produced NaN or infinite samples');
  // As vampnet_ort.audio.finish: gain and peak limit in float64 (so an input near FLT_MAX stays finite), one
  // rounding to float32 at the end; a gain out of range or a non-finite result is an error.
  const exponent = (targetLufs - loudness(x, rate)) / 20.0;
  if (!Number.isFinite(exponent) || exponent > 300.0) {
    throw new RangeError(`cannot restore the input loudness (${targetLufs} LUFS): the gain is out of range`);
  }
  const gain = 10.0 ** exponent;
  const y = new Float64Array(length);
  let peak = 0;
  for (let i = 0; i < length; i++) { y[i] = x[i] * gain; peak = Math.max(peak, Math.abs(y[i])); }
  const scale = peak > 1.0 ? 1.0 / peak : 1.0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = peak > 1.0 ? y[i] * scale : y[i];
  for (const v of out) if (!Number.isFinite(v)) throw new RangeError('the output holds NaN or infinite samples after loudness restoration');
  return out;
}
