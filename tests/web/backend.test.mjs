// The page's backend choice (vampnet_ort/web/backend.js) with stand-in navigator.gpu objects.
import test from 'node:test';
import assert from 'node:assert/strict';
import { chooseBackend, hasWebGpu, ORT_BUILDS } from '../../vampnet_ort/web/backend.js';

const withAdapter = { requestAdapter: async () => ({ info: { vendor: 'test' } }) };
const noAdapter = { requestAdapter: async () => null };
const broken = { requestAdapter: async () => { throw new Error('GPU process crashed'); } };

test('auto takes WebGPU only when an adapter exists', async () => {
  assert.equal(await chooseBackend('auto', withAdapter), 'webgpu');
  assert.equal(await chooseBackend('auto', noAdapter), 'wasm');
  assert.equal(await chooseBackend('auto', undefined), 'wasm'); // no navigator.gpu (insecure page, old browser)
  assert.equal(await chooseBackend('auto', broken), 'wasm');
  assert.equal(await hasWebGpu(broken), false);
});

test('forcing a backend', async () => {
  assert.equal(await chooseBackend('wasm', withAdapter), 'wasm');
  assert.equal(await chooseBackend('webgpu', withAdapter), 'webgpu');
  await assert.rejects(chooseBackend('webgpu', noAdapter), /no WebGPU adapter \(use backend=wasm\)/);
  await assert.rejects(chooseBackend('cuda', withAdapter), /backend must be one of auto, webgpu, wasm, got cuda/);
});

test('each backend has its onnxruntime-web build', () => {
  assert.deepEqual(ORT_BUILDS, { wasm: 'ort.wasm.min.mjs', webgpu: 'ort.webgpu.min.mjs' });
});
