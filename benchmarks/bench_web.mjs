// Headless chromium on the page served by `vampnet-ort web` (driven by benchmarks/bench_web.py):
//   node benchmarks/bench_web.mjs URL THREADS SECONDS E2E_STEPS  -> one JSON line on stdout
// load: until window.vampnet.ready (download + sha256 + session creation in the workers); heap per worker:
// performance.measureUserAgentSpecificMemory() attributed per worker (all JS + wasm memory); seconds per coarse step
// at T = 575 (10 s of audio): (t(5 steps) - t(1 step)) / 4 over whole vamps without c2f; e2e: default options with
// E2E_STEPS coarse steps. Step times: one warm-up vamp, then best of 2 interleaved repetitions.
//
// Release-size rows (benchmarks/bench_web.py --release-rows), wasm backend, one JSON line each:
//   node benchmarks/bench_web.mjs steps URL THREADS FRAMES   page with the coarse model only (?only=coarse): load
//        time, one coarse step at FRAMES frames (window.vampnet.timeCoarseStep, all positions masked), worker memory
//   node benchmarks/bench_web.mjs vamp URL THREADS SECONDS   the whole page: load time, a SECONDS vamp with 1 coarse
//        step and the default c2f (the caller adds (steps - 1) x the measured step), worker memory after it (the
//        wasm heap never shrinks: that is its peak); ok=false with the message when it did not fit
import puppeteer from 'puppeteer-core';

const MODE = ['steps', 'vamp'].includes(process.argv[2]) ? process.argv[2] : null;
const [url, threads, seconds, e2eSteps] = process.argv.slice(MODE ? 3 : 2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--enable-blink-features=ForceEagerMeasureMemory'],
  protocolTimeout: 3_600_000,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(3_600_000);
  const t0 = Date.now();
  const query = `threads=${threads}&backend=wasm${MODE === 'steps' ? '&only=coarse' : ''}`;
  await page.goto(`${url}?${query}`, { waitUntil: 'load' });
  const ready = await page.evaluate(() => window.vampnet.ready.then((r) => r, (e) => ({ error: e.message })));
  const load = (Date.now() - t0) / 1000;
  const measureMemory = () => page.evaluate(async () => {
    if (!performance.measureUserAgentSpecificMemory) return null;
    const m = await performance.measureUserAgentSpecificMemory();
    return m.breakdown.filter((b) => b.bytes > 0).map((b) => ({ bytes: b.bytes, types: b.types,
      scope: b.attribution.map((a) => a.scope).join(','), url: b.attribution.map((a) => a.url.split('/').pop()).join(',') }));
  });
  if (MODE) {
    const out = { mode: MODE, threads: ready.threads, backend: ready.backend, load_s: load, ok: !ready.error };
    if (ready.error) out.error = ready.error;
    else if (MODE === 'steps') out.coarse_step_s = await page.evaluate((f) => window.vampnet.timeCoarseStep(f), Number(seconds));
    else {
      const result = await page.evaluate(async (n) => {
        const x = new Float32Array(Math.round(n * 44100));
        for (let i = 0; i < x.length; i++) x[i] = 0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.0003) + 0.05 * Math.sin(i * 1.7);
        const t = performance.now();
        try {
          await window.vampnet.vamp(x, 44100, { coarse: { steps: 1 } });
        } catch (e) {
          return { error: e.message };
        }
        return { vamp_s: (performance.now() - t) / 1000 };
      }, Number(seconds));
      Object.assign(out, result, { ok: !result.error });
    }
    out.memory = await measureMemory();
    console.log(JSON.stringify(out));
  } else {
  const memory = await measureMemory();
  const timeVamp = (options) => page.evaluate(async (n, o) => {
    const x = new Float32Array(Math.round(n * 44100));
    for (let i = 0; i < x.length; i++) x[i] = 0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.0003) + 0.05 * Math.sin(i * 1.7);
    const t = performance.now();
    await window.vampnet.vamp(x, 44100, o);
    return (performance.now() - t) / 1000;
  }, Number(seconds), options);
  await timeVamp({ use_c2f: false, coarse: { steps: 1 } }); // warm-up
  let one = Infinity;
  let five = Infinity;
  for (let r = 0; r < 2; r++) { // interleaved, best of 2 (the machine is shared)
    one = Math.min(one, await timeVamp({ use_c2f: false, coarse: { steps: 1 } }));
    five = Math.min(five, await timeVamp({ use_c2f: false, coarse: { steps: 5 } }));
  }
  const e2e = await timeVamp({ coarse: { steps: Number(e2eSteps) } });
  console.log(JSON.stringify({ threads: ready.threads, load_s: load, memory, coarse_step_s: (five - one) / 4, e2e_s: e2e }));
  }
} finally {
  await browser.close();
}
