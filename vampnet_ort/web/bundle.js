// The model bundle in the browser: which files a model needs, fetching them and checking each one's sha256
// (SubtleCrypto) against vampnet.json before any session is created.

export const MODEL_FILES = Object.freeze({
  codec_encoder: 'codec_encoder.onnx',
  codec_decoder: 'codec_decoder.onnx',
  coarse: 'coarse.onnx',
  c2f: 'c2f.onnx',
});

export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BundleError';
  }
}

/** {file, external, steps}: the model's .onnx name and the external-data files it loads (`<file>.data` when
 * listed). For coarse / c2f, the step-window graph the server derives (manifest.step_graphs, vampnet-ort web:
 * same weights, runs a window of steps so the page shows progress per step) when the manifest lists one. */
export function modelFiles(manifest, model) {
  const original = MODEL_FILES[model];
  if (!original) throw new BundleError(`unknown model ${model}`);
  if (!manifest.files || !manifest.files[original]) throw new BundleError(`the bundle lists no ${original}`);
  const stepGraph = manifest.step_graphs && manifest.step_graphs[model];
  const steps = Boolean(stepGraph && manifest.files[stepGraph]);
  const file = steps ? stepGraph : original;
  const external = Object.keys(manifest.files).filter((name) => name === `${original}.data`);
  return { file, external, steps };
}

export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Fetch `name` from `baseUrl`, check its size and sha256 against the manifest; resolves to a Uint8Array. */
export async function fetchVerified(baseUrl, manifest, name, onBytes = () => {}) {
  const entry = manifest.files[name];
  if (!entry) throw new BundleError(`${name} is not listed in vampnet.json`);
  let response;
  try {
    response = await fetch(new URL(name, baseUrl));
  } catch (err) {
    throw new BundleError(`${name}: cannot download it (${err.message})`);
  }
  if (!response.ok) throw new BundleError(`${name}: missing from the bundle (HTTP ${response.status})`);
  let bytes;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    if (err instanceof RangeError) throw new BundleError(`${name}: out of memory while downloading it (${entry.bytes} bytes)`);
    throw new BundleError(`${name}: download failed (${err.message})`);
  }
  onBytes(bytes.length);
  if (bytes.length !== entry.bytes) {
    throw new BundleError(`${name} is ${bytes.length < entry.bytes ? 'truncated' : 'larger than recorded'} (${bytes.length} bytes, `
      + `vampnet.json says ${entry.bytes}); re-export the bundle`);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== entry.sha256) {
    throw new BundleError(`${name} does not match its sha256 in vampnet.json (modified or corrupted); re-export the bundle`);
  }
  return bytes;
}
