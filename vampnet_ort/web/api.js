// window.vampnet: the page's JS API (docs/WEB.md).
//   await window.vampnet.ready                       // bundle fetched, sha256-verified, sessions created
//   await window.vampnet.vamp(samples, sampleRate, options)
//     -> {audio, sampleRate, codes: {data, shape: [B, C, T]}, mask: {data, shape}, ...}
// options: Python VampOptions field names, nested the same way; missing fields take the Python defaults.
import { Pipeline, PipelineError, bundleInfo } from './pipeline.js';
import { MODEL_FILES } from './bundle.js';
import { resolveOptions, VAMP_DEFAULTS } from './options.js';
import { chooseBackend } from './backend.js';

export const SAMPLE_RATE = 44100;

class WorkerRunner {
  constructor(models, baseUrl, manifest, threads, backend, onLoadProgress) {
    this.workers = new Map();
    this.pending = new Map();
    this.nextId = 1;
    this.loads = [];
    for (const model of models) {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
      this.workers.set(model, worker);
      this.loads.push(new Promise((resolve, reject) => {
        worker.onmessage = ({ data }) => {
          if (data.type === 'progress') onLoadProgress(model, data.loaded, data.total);
          else if (data.type === 'loaded') resolve();
          else if (data.type === 'error' && data.id === undefined) reject(Object.assign(new Error(data.message), { kind: data.kind }));
          else this.settle(data);
        };
        worker.onerror = (event) => {
          // a crashed worker (e.g. wasm aborted out of memory) fails its load and every call waiting on it
          const err = Object.assign(new Error(`${MODEL_FILES[model]}: its worker stopped (${event.message || 'no details'}); `
            + 'reload the page'), { kind: /memory/i.test(event.message || '') ? 'oom' : 'session' });
          reject(err);
          for (const [id, call] of this.pending) {
            if (call.model === model) {
              this.pending.delete(id);
              call.reject(err);
            }
          }
        };
      }));
      worker.postMessage({ type: 'load', model, baseUrl, manifest, threads, backend });
    }
  }

  settle(data) {
    const call = this.pending.get(data.id);
    if (!call) return;
    this.pending.delete(data.id);
    if (data.type === 'result') call.resolve(data.out);
    else call.reject(Object.assign(new Error(data.message), { kind: data.kind }));
  }

  /** Resolves to the model's first output {data, dims}, or to the output named `output`. */
  run(model, feeds, output = null) {
    const worker = this.workers.get(model);
    if (!worker) return Promise.reject(new PipelineError(`the bundle has no ${MODEL_FILES[model]}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, model });
      worker.postMessage({ type: 'run', id, feeds, output });
    });
  }
}

/** Mono Float32Array at SAMPLE_RATE from mono samples at `sampleRate` (the browser's resampler). */
export async function resampleMono(samples, sampleRate) {
  if (sampleRate === SAMPLE_RATE) return samples;
  const frames = Math.ceil((samples.length * SAMPLE_RATE) / sampleRate);
  const context = new OfflineAudioContext(1, frames, SAMPLE_RATE);
  const buffer = context.createBuffer(1, samples.length, sampleRate);
  buffer.copyToChannel(samples, 0);
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.start();
  const rendered = await context.startRendering();
  return rendered.getChannelData(0).slice();
}

/** Create window.vampnet for the bundle at `baseUrl` (a URL ending in /). backend: 'auto' (WebGPU when the browser
 * has an adapter, else wasm), 'webgpu' or 'wasm'; `ready` resolves with the one in use. */
export function createApi({ baseUrl, threads, backend = 'auto', onLoadProgress = () => {}, onProgress = () => {},
  only = null }) {
  let pipeline = null;
  let manifest = null;
  let busy = false;
  const ready = (async () => {
    let response;
    try {
      response = await fetch(new URL('vampnet.json', baseUrl));
    } catch (err) {
      throw new Error(`cannot download the bundle's vampnet.json (${err.message})`);
    }
    if (!response.ok) throw new Error(`the bundle has no vampnet.json (HTTP ${response.status})`);
    try {
      manifest = await response.json();
    } catch {
      throw new Error("the bundle's vampnet.json is not valid JSON");
    }
    const info = bundleInfo(manifest);
    // `only`: load just these models (benchmarks/bench_web.py times coarse steps with ['coarse'])
    const models = ['codec_encoder', 'codec_decoder', 'coarse', ...(info.c2f ? ['c2f'] : [])]
      .filter((m) => !only || only.includes(m));
    const used = await chooseBackend(backend);
    const runner = new WorkerRunner(models, baseUrl, manifest, threads, used, onLoadProgress);
    await Promise.all(runner.loads);
    pipeline = new Pipeline(manifest, runner, { onProgress });
    return { demo: info.demo, sampleRate: info.sampleRate, nCodebooks: info.nCodebooks, threads, backend: used };
  })();

  async function vamp(samples, sampleRate, options = {}) {
    await ready;
    if (!(samples instanceof Float32Array)) throw new PipelineError('samples must be a Float32Array of mono audio');
    if (!Number.isFinite(sampleRate) || sampleRate < 3000 || sampleRate > 768000) {
      throw new PipelineError(`sample rate must be between 3000 and 768000 Hz, got ${sampleRate}`);
    }
    resolveOptions(options, pipeline.info.nCodebooks); // refuse impossible options before any work
    if (busy) throw new PipelineError('a vamp is already running; wait for it to finish');
    busy = true;
    try {
      const mono = await resampleMono(samples, sampleRate);
      return await pipeline.vampSamples(mono, options);
    } finally {
      busy = false;
    }
  }

  /** Seconds of one coarse decode step (the first of `steps`) at `frames` frames, every position masked, through
   * the loaded coarse model; needs the step-window graph (vampnet-ort web serves it). For benchmarks. */
  async function timeCoarseStep(frames = 575, steps = 36) {
    await ready;
    if (!pipeline.stepGraphs.coarse) throw new PipelineError('timeCoarseStep needs the step-window coarse graph');
    const n = pipeline.info.coarse.n_codebooks;
    const size = n * frames;
    const i64 = (data, dims) => ({ type: 'int64', data, dims });
    const f32 = (v) => ({ type: 'float32', data: Float32Array.of(v), dims: [] });
    const s64 = (v) => i64(BigInt64Array.of(BigInt(v)), []);
    const feeds = {
      codes: i64(new BigInt64Array(size), [1, n, frames]), mask: i64(new BigInt64Array(size).fill(1n), [1, n, frames]),
      seed: s64(0), num_steps: s64(steps), temperature: f32(1), mask_temperature: f32(10.5), top_p: f32(0),
      typical_mass: f32(0), typical_min_tokens: s64(1), sample_cutoff: f32(1),
      first_step: s64(0), step_count: s64(1), n0: i64(BigInt64Array.of(BigInt(size)), [1]),
    };
    const t0 = performance.now();
    await pipeline.run('coarse', feeds, 'next_out');
    return (performance.now() - t0) / 1000;
  }

  return { ready, vamp, timeCoarseStep, get manifest() { return manifest; }, defaults: () => structuredClone(VAMP_DEFAULTS) };
}
