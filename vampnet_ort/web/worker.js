// One model's onnxruntime-web session in its own Web Worker (own wasm heap: a release-size bundle does not fit in
// one 4 GiB heap). Messages: {type: 'load', model, baseUrl, manifest, threads, backend} -> {type: 'loaded'} |
// {type: 'error'}; {type: 'run', id, feeds, output} -> {type: 'result', id, out} | {type: 'error', id}. Files are
// fetched here and checked against vampnet.json's sha256 before the session is created. backend 'wasm' loads
// onnxruntime-web's wasm-only build, 'webgpu' its WebGPU build (ORT_BUILDS, docs/WEB.md "WebGPU").
import { fetchVerified, modelFiles } from './bundle.js';
import { createSession, runSession } from './ort_session.js';
import { ORT_BUILDS } from './backend.js';

let ort = null;
let session = null;
let file = null;

function fail(err, id) {
  const kind = err.kind || (err.name === 'BundleError' ? 'bundle' : 'session');
  postMessage({ type: 'error', id, message: err.message || String(err), kind });
}

async function load({ model, baseUrl, manifest, threads, backend = 'wasm' }) {
  if (!ORT_BUILDS[backend]) throw new Error(`unknown backend ${backend} (wasm or webgpu)`);
  ort = await import(`./vendor/${ORT_BUILDS[backend]}`);
  ort.env.wasm.wasmPaths = new URL('./vendor/', import.meta.url).href;
  const files = modelFiles(manifest, model);
  file = files.file;
  let loaded = 0;
  const total = [files.file, ...files.external].reduce((n, name) => n + manifest.files[name].bytes, 0);
  const progress = (bytes) => {
    loaded += bytes;
    postMessage({ type: 'progress', loaded, total });
  };
  const modelBytes = await fetchVerified(baseUrl, manifest, files.file, progress);
  const external = [];
  for (const name of files.external) external.push({ path: name, data: await fetchVerified(baseUrl, manifest, name, progress) });
  session = await createSession(ort, files.file, modelBytes, external, { threads, backend });
  postMessage({ type: 'loaded', inputs: session.inputNames, outputs: session.outputNames });
}

onmessage = async ({ data }) => {
  if (data.type === 'load') {
    try {
      await load(data);
    } catch (err) {
      fail(err);
    }
  } else if (data.type === 'run') {
    try {
      if (!session) throw new Error(`${file || 'model'}: the session is not loaded`);
      const out = await runSession(ort, session, file, data.feeds, data.output ?? null);
      postMessage({ type: 'result', id: data.id, out }, [out.data.buffer]);
    } catch (err) {
      fail(err, data.id);
    }
  }
};

onerror = (event) => postMessage({ type: 'error', message: String(event.message || event), kind: 'session' });
