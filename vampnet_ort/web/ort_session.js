// Creating and running one onnxruntime-web session (wasm or WebGPU backend), shared by the page's Web Workers and
// the Node tests: prepacking off, external data passed explicitly, and ORT's opaque failures turned into clear
// messages.

export class SessionError extends Error {
  constructor(message, kind = 'session') {
    super(message);
    this.name = 'SessionError';
    this.kind = kind; // 'session' | 'oom'
  }
}

const OOM_PATTERNS = [/out of memory/i, /\bOOM\b/, /bad_alloc/i, /Cannot enlarge memory/i, /Memory\.grow/i,
  /could not allocate/i, /failed to allocate/i, /RangeError: (Array buffer allocation|WebAssembly\.Memory)/i];

/** A clear one-line message for an error of session creation or run on model file `file`. */
export function explainOrtError(err, file, phase) {
  const text = String(err && err.message ? err.message : err);
  if (OOM_PATTERNS.some((p) => p.test(text))) {
    return new SessionError(`out of memory while ${phase} ${file}: the model does not fit in the 4 GiB wasm heap of `
      + 'its worker (try the int8 bundle, shorter audio or fewer variations)', 'oom');
  }
  if (/Module\.MountedFiles is not available|Failed to load external data file/.test(text)) {
    const wanted = (text.match(/external data file "?([^"\s,]+)"?/) || [])[1];
    return new SessionError(`${file}: its weights are stored in an external data file${wanted ? ` (${wanted})` : ''} `
      + 'that was not given to onnxruntime-web; the bundle lists no such file or its name differs from the '
      + 'location written in the model (re-export the bundle)');
  }
  const first = text.split('\n')[0];
  return new SessionError(`${file}: onnxruntime-web failed while ${phase} it (${first})`);
}

/** An InferenceSession of model bytes `model` (Uint8Array) with externalData [{path, data: Uint8Array}].
 * backend: 'wasm' or 'webgpu' (the `ort` module must be a build with WebGPU: ort.webgpu*.mjs or ort.min.mjs). */
export async function createSession(ort, file, model, externalData, { threads = 1, backend = 'wasm' } = {}) {
  ort.env.wasm.numThreads = threads;
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: [backend],
      externalData,
      extra: { session: { disable_prepacking: '1' } },
    });
  } catch (err) {
    throw explainOrtError(err, file, 'loading');
  }
}

/** Run `session` on plain feeds {name: {type, data, dims}}; resolves to its first output {data, dims}, or to the
 * output named `output` when given. */
export async function runSession(ort, session, file, feeds, output = null) {
  const tensors = {};
  for (const [name, f] of Object.entries(feeds)) tensors[name] = new ort.Tensor(f.type, f.data, f.dims);
  let results;
  try {
    results = await session.run(tensors);
  } catch (err) {
    throw explainOrtError(err, file, 'running');
  }
  const out = results[output ?? session.outputNames[0]];
  const value = { data: out.data, dims: Array.from(out.dims) };
  for (const t of Object.values(results)) t.dispose?.();
  return value;
}
