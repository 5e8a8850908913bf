// Which onnxruntime-web backend the page uses: WebGPU when the browser has an adapter, wasm otherwise; `?backend=`
// (or the page's backend control) forces one. Both builds ship in vendor/ (docs/WEB.md, "WebGPU").

/** onnxruntime-web 1.30 build per backend: the wasm-only build, and the native WebGPU build (its CPU fallback
 * runs the ops WebGPU lacks, e.g. int64 index arithmetic, Loop, DynamicQuantizeMatMul). */
export const ORT_BUILDS = Object.freeze({ wasm: 'ort.wasm.min.mjs', webgpu: 'ort.webgpu.min.mjs' });
export const BACKENDS = Object.freeze(['auto', 'webgpu', 'wasm']);

/** Whether this browser exposes a WebGPU adapter (navigator.gpu exists only in secure contexts). */
export async function hasWebGpu(gpu = globalThis.navigator && globalThis.navigator.gpu) {
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

/** The backend to use for `asked` ('auto' | 'webgpu' | 'wasm'): auto means WebGPU when an adapter exists. Asking
 * for WebGPU without an adapter is an error, never a silent switch. */
export async function chooseBackend(asked = 'auto', gpu = globalThis.navigator && globalThis.navigator.gpu) {
  if (!BACKENDS.includes(asked)) throw new Error(`backend must be one of ${BACKENDS.join(', ')}, got ${asked}`);
  if (asked === 'wasm') return 'wasm';
  const available = await hasWebGpu(gpu);
  if (asked === 'webgpu' && !available) {
    throw new Error('WebGPU was asked for, but this browser has no WebGPU adapter (use backend=wasm)');
  }
  return available ? 'webgpu' : 'wasm';
}
