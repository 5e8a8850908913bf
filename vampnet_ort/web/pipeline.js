// The vamp pipeline's orchestration, ported from vampnet_ort.pipeline.Pipeline.vamp_samples: the same steps, chunk
// plans and seeds, so the same 44.1 kHz mono samples and options give the same codes token for token. The models
// run elsewhere: `runner.run(model, feeds)` resolves to the model's first output {data, dims} (ORT sessions in Web
// Workers in the browser, onnxruntime-web directly under Node).

import { MaskRng, buildMask, stretch } from './masks.js';
import { prepare, finish } from './loudness.js';
import { deriveSeed, encodeChunks, decodeChunks, coarseChunks, c2fChunks } from './chunks.js';
import { resolveOptions } from './options.js';

export class PipelineError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PipelineError';
  }
}

/** The numbers of vampnet.json the pipeline needs, checked. */
export function bundleInfo(manifest) {
  const need = (cond, what) => {
    if (!cond) throw new PipelineError(`vampnet.json: ${what}`);
  };
  need(manifest && manifest.format === 'vampnet-ort-bundle', 'not a vampnet-ort bundle manifest');
  // codec.geometry: the chunking numbers (vampnet-ort web adds them for older bundles); without them the codec
  // runs unchunked, as Pipeline.encode / decode do for codec graphs without codec metadata
  const g = (manifest.codec && manifest.codec.geometry) || null;
  need(g === null || (Number.isInteger(g.encoder_left) && Number.isInteger(g.decode_chunk_frames)),
    'codec.geometry is incomplete; re-export the bundle');
  for (const stage of ['coarse', 'c2f']) {
    const s = manifest[stage];
    if (s === null || s === undefined) continue;
    need(Number.isInteger(s.n_codebooks) && Number.isInteger(s.chunk_frames) && s.chunk_frames > 0,
      `${stage}: missing codebook count or chunk size`);
  }
  need(manifest.coarse, 'no coarse stage');
  return {
    sampleRate: manifest.sample_rate,
    hopLength: manifest.hop_length,
    nCodebooks: manifest.n_codebooks,
    vocabSize: manifest.vocab_size,
    maskToken: manifest.mask_token,
    demo: Boolean(manifest.demo),
    geometry: g,
    coarse: manifest.coarse,
    c2f: manifest.c2f || null,
  };
}

const i64 = (data, dims) => ({ type: 'int64', data, dims });
const f32 = (data, dims) => ({ type: 'float32', data, dims });
const scalarI64 = (v) => i64(BigInt64Array.of(BigInt(v)), []);
const scalarF32 = (v) => f32(Float32Array.of(v), []);

/** [B, C, T] int array helpers (row-major). */
function sliceBCT(src, [nb, nc, nt], c0, c1, t0, t1, Out = src.constructor) {
  const w = t1 - t0;
  const out = new Out(nb * (c1 - c0) * w);
  let i = 0;
  for (let b = 0; b < nb; b++) {
    for (let c = c0; c < c1; c++) {
      const base = (b * nc + c) * nt;
      for (let t = t0; t < t1; t++) out[i++] = src[base + t];
    }
  }
  return out;
}

function writeBCT(dst, [nb, nc, nt], c0, t0, src, srcC, srcT, t1 = t0 + srcT) {
  for (let b = 0; b < nb; b++) {
    for (let c = 0; c < srcC; c++) {
      for (let t = t0; t < t1; t++) dst[(b * nc + c0 + c) * nt + t] = Number(src[(b * srcC + c) * srcT + (t - t0)]);
    }
  }
}

function toBigInt64(src) {
  const out = new BigInt64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]);
  return out;
}

export class Pipeline {
  /** manifest: parsed vampnet.json; runner: {run(model, feeds) -> Promise<{data, dims}>}; onProgress(stage, done, total). */
  constructor(manifest, runner, { onProgress = () => {} } = {}) {
    this.info = bundleInfo(manifest);
    this.runner = runner;
    this.onProgress = onProgress;
    // coarse / c2f served in step-window form (vampnet-ort web, manifest.step_graphs): run one step per call
    this.stepGraphs = { ...(manifest.step_graphs || {}) };
  }

  async run(model, feeds, output = null) {
    return this.runner.run(model, feeds, output);
  }

  /** One chunk's decode through `model` (coarse / c2f); onStep(done, total) after each step when the model is in
   * step-window form (vampnet_ort/decode_steps.py: window k feeds window k-1's next_out with an all-zero mask and
   * the step-0 MASK count n0), else once at the end. Same codes either way. */
  async decodeChunk(model, feeds, dims, onStep) {
    const steps = Number(feeds.num_steps.data[0]);
    if (!this.stepGraphs[model]) {
      const out = await this.run(model, feeds);
      onStep(steps, steps);
      return out;
    }
    const [nb] = dims;
    const size = feeds.codes.data.length / nb;
    const maskToken = BigInt(this.info.maskToken);
    const n0 = new BigInt64Array(nb);
    for (let b = 0; b < nb; b++) {
      let count = 0;
      for (let i = b * size; i < (b + 1) * size; i++) {
        if (feeds.mask.data[i] !== 0n || feeds.codes.data[i] === maskToken) count++;
      }
      n0[b] = BigInt(count);
    }
    let current = feeds;
    let out = null;
    for (let step = 0; step < steps; step++) {
      const last = step === steps - 1;
      out = await this.run(model, { ...current, first_step: scalarI64(step), step_count: scalarI64(1), n0: i64(n0, [nb]) },
        last ? 'codes_out' : 'next_out');
      onStep(step + 1, steps);
      if (!last) current = { ...current, codes: i64(out.data, dims), mask: i64(new BigInt64Array(out.data.length), dims) };
    }
    return out;
  }

  /** Pipeline.encode: prepared mono samples (length a multiple of hop) -> codes Int32Array [1, C, T]. */
  async encode(samples) {
    const g = this.info.geometry;
    if (g === null) {
      const out = await this.run('codec_encoder', { audio: f32(samples, [1, 1, samples.length]) });
      return { data: Int32Array.from(out.data, Number), shape: out.dims };
    }
    const hop = g.hop_length;
    const plan = encodeChunks(g, samples.length);
    if (plan.length === 0) throw new PipelineError(`${samples.length} samples are too short for this codec`);
    const total = plan[plan.length - 1][1];
    const nc = this.info.nCodebooks;
    const codes = new Int32Array(nc * total);
    for (let k = 0; k < plan.length; k++) {
      const [f0, f1, start, stop] = plan[k];
      const out = await this.run('codec_encoder', { audio: f32(samples.slice(start, stop), [1, 1, stop - start]) });
      const frames = out.dims[2];
      const offset = start / hop;
      if (frames < f1 - offset) throw new PipelineError(`chunked encode: chunk gave ${frames} frames, needed ${f1 - offset}`);
      for (let c = 0; c < nc; c++) {
        for (let f = f0; f < f1; f++) codes[c * total + f] = Number(out.data[c * frames + f - offset]);
      }
      this.onProgress('encode', k + 1, plan.length);
    }
    return { data: codes, shape: [1, nc, total] };
  }

  /** Pipeline.decode of one item: codes Int32Array [C, T] (MASK decoded as 0) -> Float32Array samples. */
  async decodeItem(codes, total) {
    const g = this.info.geometry;
    const nc = this.info.nCodebooks;
    if (g === null) {
      const z = BigInt64Array.from(codes, (v) => BigInt(v >= this.info.vocabSize ? 0 : v));
      return (await this.run('codec_decoder', { codes: i64(z, [1, nc, total]) })).data;
    }
    const plan = decodeChunks(g, total);
    const outLen = plan[plan.length - 1][5];
    const audio = new Float32Array(outLen);
    for (const [, , g0, g1, s0, s1] of plan) {
      const z = new BigInt64Array(nc * (g1 - g0));
      for (let c = 0; c < nc; c++) {
        for (let t = g0; t < g1; t++) {
          const v = codes[c * total + t];
          z[c * (g1 - g0) + t - g0] = BigInt(v >= this.info.vocabSize ? 0 : v);
        }
      }
      const out = await this.run('codec_decoder', { codes: i64(z, [1, nc, g1 - g0]) });
      const offset = g0 * g.decoder_hop;
      if (out.data.length < s1 - offset) throw new PipelineError('chunked decode: a chunk gave too few samples');
      audio.set(out.data.subarray(s0 - offset, s1 - offset), s0);
    }
    return audio;
  }

  stageFeeds(codes, mask, dims, seed, opts) {
    return {
      codes: i64(toBigInt64(codes), dims),
      mask: i64(toBigInt64(mask), dims),
      seed: scalarI64(seed),
      num_steps: scalarI64(opts.steps),
      temperature: scalarF32(opts.temperature),
      mask_temperature: scalarF32(opts.mask_temperature),
      top_p: scalarF32(opts.top_p),
      typical_mass: scalarF32(opts.typical_mass),
      typical_min_tokens: scalarI64(opts.typical_min_tokens),
      sample_cutoff: scalarF32(opts.sample_cutoff),
    };
  }

  /** Pipeline.coarse_stage: returns {codes, effective} (effective: [B, n, T] mask with the forced frames). */
  async coarseStage(codes, mask, shape, seed, opts, passIndex) {
    const [nb, ncAll, total] = shape;
    const n = this.info.coarse.n_codebooks;
    const out = Int32Array.from(codes);
    const effective = sliceBCT(mask, shape, 0, n, 0, total);
    const chunks = coarseChunks(total, this.info.coarse.chunk_frames);
    for (let k = 0; k < chunks.length; k++) {
      const [lo, hi] = chunks[k];
      for (let b = 0; b < nb; b++) { // per item: an item whose chunk keeps anything keeps the chunk's ends
        let keeps = false;
        for (let c = 0; c < n && !keeps; c++) {
          for (let t = lo; t < hi; t++) if (effective[(b * n + c) * total + t] === 0) { keeps = true; break; }
        }
        if (!keeps) continue;
        for (let c = 0; c < n; c++) {
          effective[(b * n + c) * total + lo] = 0;
          effective[(b * n + c) * total + hi - 1] = 0;
        }
      }
      const w = hi - lo;
      const feeds = this.stageFeeds(sliceBCT(codes, shape, 0, n, lo, hi), sliceBCT(effective, [nb, n, total], 0, n, lo, hi),
        [nb, n, w], deriveSeed(seed, passIndex, 0, k), opts);
      const result = await this.decodeChunk('coarse', feeds, [nb, n, w],
        (done, steps) => this.onProgress('coarse', k * steps + done, chunks.length * steps));
      writeBCT(out, [nb, ncAll, total], 0, lo, result.data, n, w);
    }
    return { codes: out, effective };
  }

  /** Pipeline.c2f_stage: returns {codes, effective} (effective: [B, n, T]). */
  async c2fStage(codes, mask, shape, seed, opts, passIndex) {
    const [nb, ncAll, total] = shape;
    const stage = this.info.c2f;
    const n = stage.n_codebooks;
    const { chunks, padded } = c2fChunks(total, stage.chunk_frames);
    const z = new Int32Array(nb * n * padded);
    const m = new Uint8Array(nb * n * padded).fill(1);
    for (let b = 0; b < nb; b++) {
      for (let c = 0; c < n; c++) {
        for (let t = 0; t < total; t++) {
          if (c < ncAll) z[(b * n + c) * padded + t] = codes[(b * ncAll + c) * total + t];
          m[(b * n + c) * padded + t] = mask[(b * ncAll + c) * total + t];
        }
        if (c < stage.n_conditioning_codebooks) m.fill(0, (b * n + c) * padded, (b * n + c + 1) * padded);
      }
    }
    const out = Int32Array.from(z);
    for (let k = 0; k < chunks.length; k++) {
      const [lo, hi] = chunks[k];
      const feeds = this.stageFeeds(sliceBCT(z, [nb, n, padded], 0, n, lo, hi), sliceBCT(m, [nb, n, padded], 0, n, lo, hi),
        [nb, n, hi - lo], deriveSeed(seed, passIndex, 1, k), opts);
      const result = await this.decodeChunk('c2f', feeds, [nb, n, hi - lo],
        (done, steps) => this.onProgress('c2f', k * steps + done, chunks.length * steps));
      writeBCT(out, [nb, n, padded], 0, lo, result.data, n, hi - lo);
    }
    const result = Int32Array.from(codes);
    for (let b = 0; b < nb; b++) {
      for (let c = 0; c < n; c++) {
        for (let t = 0; t < total; t++) result[(b * ncAll + c) * total + t] = out[(b * n + c) * padded + t];
      }
    }
    return { codes: result, effective: sliceBCT(m, [nb, n, padded], 0, n, 0, total) };
  }

  /** Pipeline.generate: one pass; returns {codes, effective} with effective [B, C, T]. */
  async generate(codes, mask, shape, options, passIndex) {
    const [nb, nc, total] = shape;
    const coarse = await this.coarseStage(codes, mask, shape, options.seed, options.coarse, passIndex);
    const effective = new Uint8Array(nb * nc * total);
    const nCoarse = this.info.coarse.n_codebooks;
    writeBCT(effective, shape, 0, 0, coarse.effective, nCoarse, total);
    let out = coarse.codes;
    if (options.use_c2f && this.info.c2f) {
      const fine = await this.c2fStage(out, mask, shape, options.seed, options.c2f, passIndex);
      out = fine.codes;
      const cc = this.info.c2f.n_conditioning_codebooks;
      const n = this.info.c2f.n_codebooks;
      for (let b = 0; b < nb; b++) {
        for (let c = cc; c < n; c++) {
          for (let t = 0; t < total; t++) effective[(b * nc + c) * total + t] = fine.effective[(b * n + c) * total + t];
        }
      }
    }
    return { codes: out, effective };
  }

  /** Pipeline.vamp_samples for mono Float32Array samples at the codec's rate.
   * Resolves to {audio: Float32Array [variations * N], audioShape, variations: Float32Array[], sampleRate,
   * codes: {data: Int32Array, shape: [B, C, T]}, codesIn, mask: {data: Uint8Array, shape}, inputLoudness, demo}. */
  async vampSamples(samples, options = {}) {
    const info = this.info;
    const o = resolveOptions(options, info.nCodebooks);
    if (!(samples instanceof Float32Array) || samples.length === 0) {
      throw new PipelineError('audio must be a non-empty Float32Array of mono samples');
    }
    for (const v of samples) if (!Number.isFinite(v)) throw new PipelineError('audio holds NaN or infinite samples');
    const prepared = prepare(samples, info.sampleRate, info.hopLength);
    const encoded = await this.encode(prepared.samples);
    const [, nc, t0] = encoded.shape;
    const nb = o.variations;
    let batch = { data: new Int32Array(nb * nc * t0), shape: [nb, nc, t0] };
    for (let b = 0; b < nb; b++) batch.data.set(encoded.data, b * nc * t0);
    let mask = buildMask(o.mask, batch.shape, new MaskRng(o.seed, 0), info.sampleRate, info.hopLength);
    if (o.time_stretch > 1) [batch, mask] = stretch(batch, mask, o.time_stretch);
    const shape = batch.shape;
    let current = batch.data;
    let effective = mask.data;
    for (let pass = 0; pass < o.feedback_steps; pass++) {
      if (pass > 0) mask = buildMask(o.mask, shape, new MaskRng(o.seed, pass), info.sampleRate, info.hopLength);
      const result = await this.generate(current, mask.data, shape, o, pass);
      current = result.codes;
      effective = result.effective;
    }
    const length = prepared.length * o.time_stretch;
    const variations = [];
    const [, , total] = shape;
    for (let b = 0; b < nb; b++) {
      const decoded = await this.decodeItem(current.subarray(b * nc * total, (b + 1) * nc * total), total);
      variations.push(finish(decoded, info.sampleRate, length, prepared.inputLoudness));
      this.onProgress('decode', b + 1, nb);
    }
    const audio = new Float32Array(nb * length);
    variations.forEach((v, b) => audio.set(v, b * length));
    return {
      audio,
      audioShape: [nb, length],
      variations: variations.map((_, b) => audio.subarray(b * length, (b + 1) * length)),
      sampleRate: info.sampleRate,
      codes: { data: current, shape: [...shape] },
      codesIn: { data: batch.data.slice(0, nc * total), shape: [1, nc, total] },
      mask: { data: effective, shape: [...shape] },
      inputLoudness: prepared.inputLoudness,
      demo: info.demo,
      options: o,
    };
  }
}
