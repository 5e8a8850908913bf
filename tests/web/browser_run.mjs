// Real-browser test: headless Debian chromium driven by puppeteer-core opens the page served by `vampnet-ort web`,
// vamps a clip through the UI (file input, click, wait for the player) and through window.vampnet, and compares
// the codes with the Python pipeline's for the same 44.1 kHz mono samples and options (browser_vectors.json from
// tests/web/make_browser_vectors.py). Same seed => identical output. Saves screenshots into $ARTIFACTS.
//   node tests/web/browser_run.mjs URL VECTORS_JSON ARTIFACTS_DIR
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';

//   node tests/web/browser_run.mjs --expect-error REGEX URL ARTIFACTS_DIR   (a broken bundle: the page must say so)
//   node tests/web/browser_run.mjs --backend webgpu URL VECTORS_JSON ARTIFACTS_DIR
//     (the page on chromium's SwiftShader WebGPU adapter, ?backend=webgpu: the UI vamp only, its screenshots get a
//      _webgpu suffix; SwiftShader is far too slow for the API cases)
const TIMEOUT = 1_800_000;
const argv = process.argv.slice(2);
const backendAt = argv.indexOf('--backend');
const backend = backendAt >= 0 ? argv.splice(backendAt, 2)[1] : 'wasm';
const expectError = argv[0] === '--expect-error' ? new RegExp(argv[1]) : null;
const [url, vectorsPath, artifacts] = expectError ? [argv[2], null, argv[3]] : argv;
mkdirSync(artifacts, { recursive: true });
const vectors = vectorsPath ? JSON.parse(readFileSync(vectorsPath, 'utf8')) : null;
const suffix = backend === 'wasm' ? '' : `_${backend}`;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  protocolTimeout: TIMEOUT,
  args: ['--headless', '--no-sandbox', ...(backend === 'webgpu' ? ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader']
    : ['--disable-gpu']), '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
});
const log = [];
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.setViewport({ width: 1100, height: 1400 });
  // wasm: the page's own choice must be wasm (chromium runs with --disable-gpu: no adapter); webgpu: asked for
  await page.goto(backend === 'wasm' ? url : `${url}?backend=${backend}`, { waitUntil: 'load' });
  if (expectError) {
    const rejected = await page.evaluate(() => window.vampnet.ready.then(() => null, (e) => e.message));
    assert.match(rejected ?? '', expectError, `window.vampnet.ready: ${rejected}`);
    await page.waitForSelector('#error:not([hidden])');
    const shown = await page.$eval('#error', (el) => el.textContent);
    assert.match(shown, expectError);
    await page.screenshot({ path: join(artifacts, 'page_bad_bundle.png'), fullPage: true });
    console.log(`broken bundle: the page says "${shown}"`);
    throw Object.assign(new Error('done'), { done: true });
  }
  const ready = await page.evaluate(() => window.vampnet.ready.then((r) => ({ ...r, isolated: self.crossOriginIsolated })));
  console.log('ready:', JSON.stringify(ready));
  assert.equal(ready.isolated, true, 'the page is not cross-origin isolated (COOP/COEP headers)');
  assert.equal(ready.backend, backend, `the page chose backend ${ready.backend}`);
  const shownBackend = await page.$eval('#backend-status', (el) => el.textContent);
  assert.match(shownBackend, backend === 'webgpu' ? /WebGPU/ : /wasm/, `the page shows "${shownBackend}"`);
  console.log(`backend shown: ${shownBackend}`);

  // 1. through the UI: choose the file, set the options, click, wait for the player
  const ui = vectors.ui;
  const input = await page.$('#file-input');
  await input.uploadFile(ui.wav_path);
  await page.waitForFunction(() => !document.getElementById('vamp-button').disabled);
  for (const [id, value] of Object.entries(ui.fields)) {
    await page.$eval(`#${id}`, (el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }, value);
  }
  await page.screenshot({ path: join(artifacts, `page_before${suffix}.png`), fullPage: true });
  // record every value the coarse progress bar shows (progress per step: chunks x steps updates)
  await page.evaluate(() => {
    const descriptor = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
    window.coarseProgress = [];
    Object.defineProperty(HTMLProgressElement.prototype, 'value', {
      get() { return descriptor.get.call(this); },
      set(v) {
        if (this.id === 'progress-coarse') window.coarseProgress.push([v, this.max]);
        descriptor.set.call(this, v);
      },
    });
  });
  // capture what the UI run returns: wrap vamp to keep the last result's codes
  await page.evaluate(() => {
    const vamp = window.vampnet.vamp;
    window.vampnet.vamp = async (...args) => {
      const r = await vamp(...args);
      window.lastResult = { codes: Array.from(r.codes.data), shape: r.codes.shape, mask: Array.from(r.mask.data) };
      return r;
    };
  });
  const t0 = Date.now();
  await page.click('#vamp-button');
  await page.waitForSelector('#output-player-0, #error:not([hidden])');
  const error = await page.$eval('#error', (el) => (el.hidden ? null : el.textContent));
  assert.equal(error, null, `the UI run failed: ${error}`);
  console.log(`UI vamp: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const uiResult = await page.evaluate(() => window.lastResult);
  assert.deepEqual(uiResult.shape, ui.shape);
  assert.deepEqual(uiResult.codes, ui.codes, 'UI run: codes differ from the Python pipeline');
  assert.deepEqual(uiResult.mask, ui.mask, 'UI run: mask differs from the Python pipeline');
  const playable = await page.$eval('#output-player-0', (el) => el.src.startsWith('blob:'));
  assert.ok(playable);
  const download = await page.$eval('.output a', (el) => el.download);
  assert.match(download, /\.wav$/);
  await page.screenshot({ path: join(artifacts, `page_after_vamp${suffix}.png`), fullPage: true });
  const progress = await page.evaluate(() => window.coarseProgress);
  const steps = ui.fields.coarse_steps;
  const updates = progress.filter(([v]) => v > 0);
  const total = updates.length ? updates[updates.length - 1][1] : 0;
  assert.ok(total > 0 && total % steps === 0, `coarse progress total ${total} is not chunks x ${steps} steps`);
  assert.deepEqual(updates.map(([v]) => v), Array.from({ length: total }, (_, i) => i + 1),
    'the coarse bar did not advance once per step');
  console.log(`coarse progress: ${total} updates (${total / steps} chunk(s) x ${steps} steps)`);
  if (backend !== 'wasm') throw Object.assign(new Error('done'), { done: true });

  // 2. through window.vampnet: same samples and options as Python; twice with the same seed
  for (const c of vectors.api) {
    const run = () => page.evaluate(async (b64, sr, options) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const samples = new Float32Array(bytes.buffer);
      const r = await window.vampnet.vamp(samples, sr, options);
      return { codes: Array.from(r.codes.data), shape: r.codes.shape, mask: Array.from(r.mask.data),
        audio: Array.from(r.audio), sampleRate: r.sampleRate };
    }, c.samples, c.sample_rate, c.options);
    const first = await run();
    assert.deepEqual(first.shape, c.shape);
    assert.deepEqual(first.codes, c.codes, `API run ${JSON.stringify(c.options)}: codes differ from the Python pipeline`);
    assert.deepEqual(first.mask, c.mask);
    assert.equal(first.sampleRate, 44100);
    const second = await run();
    assert.deepEqual(second.codes, first.codes, 'same seed, different codes');
    assert.deepEqual(second.audio, first.audio, 'same seed, different audio');
    console.log(`API vamp ${JSON.stringify(c.options)}: codes equal Python's, repeat identical`);
  }

  // 3. bad input: impossible options reject with a message and show nothing silently wrong
  const rejected = await page.evaluate(() => window.vampnet.vamp(new Float32Array(44100), 44100, { mask: { dropout: 2 } })
    .then(() => null, (e) => e.message));
  assert.match(rejected, /dropout must be in \[0, 1\]/);
  await page.$eval('#dropout', (el) => { el.value = '1.5'; });
  await page.click('#vamp-button');
  await page.waitForSelector('#error:not([hidden])');
  const shown = await page.$eval('#error', (el) => el.textContent);
  assert.match(shown, /dropout must be in \[0, 1\]/);
  // an undecodable file
  writeFileSync(join(artifacts, 'not_audio.wav'), 'this is not audio');
  await input.uploadFile(join(artifacts, 'not_audio.wav'));
  await page.waitForFunction(() => /cannot decode/.test(document.getElementById('error').textContent));
  await page.screenshot({ path: join(artifacts, 'page_error.png'), fullPage: true });
  console.log('bad input: clear messages on the page and rejected promises');
} catch (err) {
  if (err.done) {
    writeFileSync(join(artifacts, `browser_console${suffix}.log`), log.join('\n') + '\n');
    await browser.close();
    process.exit(0);
  }
  failed = true;
  console.error(`FAILED: ${err.message}`);
  console.error(log.slice(-30).join('\n'));
} finally {
  await browser.close();
}
writeFileSync(join(artifacts, `browser_console${suffix}.log`), log.join('\n') + '\n');
process.exit(failed ? 1 : 0);
