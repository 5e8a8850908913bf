// One decode step of a float32 vs an int8 coarse graph in onnxruntime-web's wasm backend under Node
// (no custom-op library: the reference functions are inlined, DynamicQuantizeMatMul runs in wasm).
//
//   ORT_WEB_NODE_MODULES=/tmp/int8-npm/node_modules node benchmarks/bench_wasm_step.mjs DIR_FP32 DIR_INT8 [T] [REPEATS]
//
// DIR_* hold coarse.onnx + coarse.onnx.data (benchmarks/bench_quantize.py --only wasm writes them). Prints the
// median seconds of `repeats` one-step decodes (num_steps = 1) per graph, alternating, and the ratio; checks that
// both graphs return codes of the right shape that keep every unmasked token. Single-threaded wasm (Node has no
// cross-origin isolation to need); numbers are noisy on a shared machine.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.ORT_WEB_NODE_MODULES;
if (!modules) {
  console.error('bench_wasm_step: set ORT_WEB_NODE_MODULES to a node_modules directory holding onnxruntime-web');
  process.exit(2);
}
const [dirFp32, dirInt8, tArg, repeatsArg] = process.argv.slice(2);
if (!dirFp32 || !dirInt8) {
  console.error('usage: bench_wasm_step.mjs DIR_FP32 DIR_INT8 [T] [REPEATS]');
  process.exit(2);
}
const T = Number(tArg ?? 575);
const repeats = Number(repeatsArg ?? 3);
const ort = await import(pathToFileURL(path.join(modules, 'onnxruntime-web', 'dist', 'ort.node.min.mjs')).href);
ort.env.wasm.numThreads = 1;

function feeds(nCodebooks) {
  const n = nCodebooks * T;
  const codes = new BigInt64Array(n);
  const mask = new BigInt64Array(n);
  let state = 12345;
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    codes[i] = BigInt(state % 1024);
    mask[i] = (i % T) % 7 === 0 ? 0n : 1n; // the app's periodic prompt: keep every 7th frame
  }
  const scalar = (v) => new ort.Tensor('float32', Float32Array.from([v]), []);
  const int = (v) => new ort.Tensor('int64', BigInt64Array.from([BigInt(v)]), []);
  return {
    codes: new ort.Tensor('int64', codes, [1, nCodebooks, T]),
    mask: new ort.Tensor('int64', mask, [1, nCodebooks, T]),
    seed: int(0), num_steps: int(1), temperature: scalar(1.0), mask_temperature: scalar(10.5),
    top_p: scalar(0.0), typical_mass: scalar(0.0), typical_min_tokens: int(64), sample_cutoff: scalar(1.0),
  };
}

async function open(dir) {
  const start = performance.now();
  const session = await ort.InferenceSession.create(readFileSync(path.join(dir, 'coarse.onnx')), {
    executionProviders: ['wasm'],
    externalData: [{ path: 'coarse.onnx.data', data: readFileSync(path.join(dir, 'coarse.onnx.data')) }],
    extra: { session: { disable_prepacking: '1' } },
  });
  return { session, loadSeconds: (performance.now() - start) / 1000 };
}

const nCodebooks = 4;
const input = feeds(nCodebooks);
const variants = { fp32: await open(dirFp32), int8: await open(dirInt8) };
const times = { fp32: [], int8: [] };
for (const [name, v] of Object.entries(variants)) {
  const out = (await v.session.run(input)).codes_out; // warm-up, and a check of the result
  if (out.dims.join(',') !== `1,${nCodebooks},${T}`) throw new Error(`${name}: codes_out has shape ${out.dims}`);
  for (let i = 0; i < out.data.length; i++) {
    if (input.mask.data[i] === 0n && out.data[i] !== input.codes.data[i]) throw new Error(`${name}: kept token changed`);
  }
}
for (let r = 0; r < repeats; r++) {
  for (const [name, v] of Object.entries(variants)) {
    const start = performance.now();
    await v.session.run(input);
    times[name].push((performance.now() - start) / 1000);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fp32 = median(times.fp32);
const int8 = median(times.int8);
console.log(`onnxruntime-web ${ort.env.versions?.web ?? '?'} wasm, 1 thread, T=${T}, median of ${repeats}`);
console.log(`  fp32 step ${fp32.toFixed(2)} s (session load ${variants.fp32.loadSeconds.toFixed(1)} s)`);
console.log(`  int8 step ${int8.toFixed(2)} s (session load ${variants.int8.loadSeconds.toFixed(1)} s)`);
console.log(`  int8 speed-up ${(fp32 / int8).toFixed(2)}x`);
