// The page: file choose/drop, WebAudio decode to 44.1 kHz mono, mask controls and preview, sampling settings,
// progress per stage, playback and WAV download. Everything runs through window.vampnet (api.js).
import { createApi, SAMPLE_RATE } from './api.js';
import { buildMask, MaskRng } from './masks.js';
import { numFrames } from './chunks.js';
import { encodeWav } from './wav.js';
import { resolveOptions } from './options.js';
import { BACKENDS } from './backend.js';

const $ = (id) => document.getElementById(id);
const STAGES = ['load', 'encode', 'coarse', 'c2f', 'decode'];
const loadProgress = new Map();
let input = null; // {samples: Float32Array (44.1 kHz mono), name}
let info = null;

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setProgress(stage, done, total) {
  const bar = $(`progress-${stage}`);
  bar.max = Math.max(1, total);
  bar.value = done;
}

// wasm threads per session: ?threads=N, else 2 when cross-origin isolated (COOP/COEP), else 1
const asked = Number(new URLSearchParams(location.search).get('threads'));
const threads = !self.crossOriginIsolated ? 1
  : Number.isInteger(asked) && asked >= 1 ? Math.min(asked, navigator.hardwareConcurrency || 1)
    : Math.min(2, navigator.hardwareConcurrency || 1);
// backend: ?backend=auto|webgpu|wasm (the page's backend control reloads with it); auto = WebGPU when available
const params = new URLSearchParams(location.search);
const askedBackend = BACKENDS.includes(params.get('backend')) ? params.get('backend') : 'auto';
$('backend').value = askedBackend;
$('backend').addEventListener('change', () => {
  params.set('backend', $('backend').value);
  location.search = params.toString(); // sessions are made per backend at load: reload with the new choice
});
// ?only=coarse,...: load just those models (benchmarks; the page cannot vamp then)
const only = params.get('only') ? params.get('only').split(',') : null;
const api = createApi({
  baseUrl: new URL('bundle/', location.href).href,
  threads,
  backend: askedBackend,
  only,
  onLoadProgress: (model, loaded, total) => {
    loadProgress.set(model, [loaded, total]);
    let a = 0;
    let b = 0;
    for (const [l, t] of loadProgress.values()) { a += l; b += t; }
    setProgress('load', a, b);
  },
  onProgress: (stage, done, total) => setProgress(stage, done, total),
});
window.vampnet = api;

api.ready.then((ready) => {
  info = ready;
  const backendText = ready.backend === 'webgpu' ? 'WebGPU (GPU), CPU fallback in wasm' : `wasm (CPU), ${threads} thread(s) per model`;
  $('backend-status').textContent = `Backend: ${backendText}${askedBackend === 'auto' ? ' — chosen automatically' : ''}.`;
  $('backend-status').dataset.backend = ready.backend;
  $('bundle-status').textContent = `Bundle loaded and verified (sha256) — backend ${ready.backend}.`;
  $('demo-note').hidden = !ready.demo;
  setProgress('load', 1, 1);
  updateButton();
  drawMaskPreview();
}).catch((err) => {
  $('bundle-status').textContent = 'The model bundle could not be loaded.';
  showError(err.message);
});

function num(id) {
  const el = $(id);
  const v = Number(el.value);
  if (el.value.trim() === '' || !Number.isFinite(v)) throw new Error(`${el.closest('label').textContent.trim()}: not a number`);
  return v;
}

function int(id) {
  const v = num(id);
  if (!Number.isInteger(v)) throw new Error(`${$(id).closest('label').textContent.trim()}: must be a whole number, got ${v}`);
  return v;
}

/** The page's controls as VampOptions fields (Python names, nested the same way). */
export function readOptions() {
  const sampling = (stage) => ({
    steps: int(`${stage}_steps`),
    ...(stage === 'coarse' ? {
      temperature: num('coarse_temperature'),
      mask_temperature: num('coarse_mask_temperature'),
      top_p: num('coarse_top_p'),
      typical_mass: num('coarse_typical_mass'),
      sample_cutoff: num('coarse_sample_cutoff'),
    } : {}),
  });
  return {
    seed: int('seed'),
    variations: int('variations'),
    feedback_steps: int('feedback_steps'),
    time_stretch: int('time_stretch'),
    use_c2f: $('use_c2f').checked,
    coarse: sampling('coarse'),
    c2f: sampling('c2f'),
    mask: {
      periodic_period: int('periodic_period'),
      periodic_width: int('periodic_width'),
      periodic_random_roll: $('periodic_random_roll').checked,
      prefix_s: num('prefix_s'),
      suffix_s: num('suffix_s'),
      intensity: num('intensity'),
      dropout: num('dropout'),
      upper_codebook_mask: int('upper_codebook_mask'),
      n_conditioning_codebooks: int('n_conditioning_codebooks'),
    },
  };
}

function drawMaskPreview() {
  const canvas = $('mask-preview');
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#333';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!info || !window.vampnet.manifest) return;
  const manifest = window.vampnet.manifest;
  const geometry = manifest.codec && manifest.codec.geometry;
  const samples = input ? input.samples.length : 10 * SAMPLE_RATE;
  const frames = geometry ? numFrames(geometry, samples) : Math.ceil(samples / manifest.hop_length);
  let mask;
  try {
    const o = resolveOptions(readOptions(), info.nCodebooks);
    mask = buildMask(o.mask, [1, info.nCodebooks, frames], new MaskRng(o.seed, 0), info.sampleRate, manifest.hop_length);
    $('mask-caption').textContent = `Mask preview (variation 0, ${frames} frames${input ? '' : ' for 10 s'}): white = regenerated, `
      + 'black = kept; rows = codebooks (0 at the bottom).';
  } catch (err) {
    $('mask-caption').textContent = `Mask preview unavailable: ${err.message}`;
    return;
  }
  const [, nc, nt] = mask.shape;
  const image = ctx.createImageData(nt, nc);
  for (let c = 0; c < nc; c++) {
    for (let t = 0; t < nt; t++) {
      const v = mask.data[c * nt + t] ? 255 : 0;
      const p = ((nc - 1 - c) * nt + t) * 4;
      image.data[p] = v;
      image.data[p + 1] = v;
      image.data[p + 2] = v;
      image.data[p + 3] = 255;
    }
  }
  canvas.width = nt;
  canvas.height = nc;
  ctx.putImageData(image, 0, 0);
}

function updateButton() {
  $('vamp-button').disabled = !(info && input);
}

async function decodeFile(file) {
  clearError();
  $('file-info').textContent = `Decoding ${file.name}…`;
  let buffer;
  try {
    const bytes = await file.arrayBuffer();
    // decoding with a 44.1 kHz context resamples to 44.1 kHz (the browser's resampler)
    buffer = await new OfflineAudioContext(1, 1, SAMPLE_RATE).decodeAudioData(bytes);
  } catch (err) {
    input = null;
    updateButton();
    $('file-info').textContent = '';
    showError(`${file.name}: this browser cannot decode it as audio (${err.message || err.name}); try WAV, FLAC, OGG or MP3`);
    return;
  }
  if (buffer.length === 0) {
    showError(`${file.name}: the file holds no audio samples`);
    return;
  }
  const mono = new Float32Array(buffer.length);
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
  for (let i = 0; i < buffer.length; i++) {
    let s = 0;
    for (const ch of channels) s += ch[i];
    mono[i] = s / channels.length; // channel mean, as vampnet_ort.audio.to_mono
  }
  input = { samples: mono, name: file.name };
  $('file-info').textContent = `${file.name}: ${(mono.length / SAMPLE_RATE).toFixed(2)} s, ${buffer.numberOfChannels} channel(s) → 44.1 kHz mono`;
  const player = $('input-player');
  player.src = URL.createObjectURL(new Blob([encodeWav(mono, SAMPLE_RATE)], { type: 'audio/wav' }));
  player.hidden = false;
  updateButton();
  drawMaskPreview();
}

$('file-input').addEventListener('change', (e) => e.target.files[0] && decodeFile(e.target.files[0]));
const zone = $('drop-zone');
zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  if (e.dataTransfer.files[0]) decodeFile(e.dataTransfer.files[0]);
});
for (const el of document.querySelectorAll('#mask-section input, #seed')) el.addEventListener('input', drawMaskPreview);

$('vamp-button').addEventListener('click', async () => {
  clearError();
  let options;
  try {
    options = readOptions();
  } catch (err) {
    showError(err.message);
    return;
  }
  for (const stage of STAGES.slice(1)) setProgress(stage, 0, 1);
  $('vamp-button').disabled = true;
  $('outputs').replaceChildren();
  const started = performance.now();
  try {
    const result = await window.vampnet.vamp(input.samples, SAMPLE_RATE, options);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    result.variations.forEach((audio, b) => {
      const url = URL.createObjectURL(new Blob([encodeWav(audio, result.sampleRate)], { type: 'audio/wav' }));
      const row = document.createElement('div');
      row.className = 'output';
      const player = document.createElement('audio');
      player.controls = true;
      player.src = url;
      player.id = `output-player-${b}`;
      const link = document.createElement('a');
      link.href = url;
      link.download = `${(input.name || 'vamp').replace(/\.[^.]+$/, '')}_vamp_seed${BigInt(result.options.seed) + BigInt(b)}.wav`;
      link.textContent = `Download WAV (variation ${b})`;
      row.append(player, link);
      $('outputs').append(row);
    });
    const note = document.createElement('p');
    note.id = 'done';
    note.textContent = `Done in ${seconds} s${result.demo ? ' (demo bundle: not music)' : ''}.`;
    $('outputs').append(note);
  } catch (err) {
    showError(err.kind === 'oom' ? `Out of memory: ${err.message}` : err.message);
  } finally {
    updateButton();
  }
});
