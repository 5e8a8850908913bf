// WebGPU graph test: headless Debian chromium with its SwiftShader WebGPU adapter (CPU-emulated: correctness, not
// speed) runs every graph of each bundle with executionProviders ['webgpu'] on both onnxruntime-web WebGPU builds
// (JSEP: ort.min.mjs; native: ort.webgpu.min.mjs) and compares with ['wasm'] on the same feeds:
//   codec encoder codes equal; codec decoder audio within DECODER_TOL; coarse/c2f tokens equal.
// Files are served from 127.0.0.1 (a secure context: data: or file: pages get no navigator.gpu).
//   node tests/web/webgpu_graphs.mjs ARTIFACTS_DIR BUNDLE_DIR[#graph,graph]...
// (#coarse,c2f: only those graphs of that bundle, e.g. a second export with the same codec)
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

// WebGPU Sin on SwiftShader is off by up to 1.9e-4 (docs/WEB.md): the decoder's Snake activations carry it.
export const DECODER_TOL = 2e-3;

/** What each (build, graph precision) must do (docs/WEB.md, "WebGPU"):
 *  - float32 and int8 (DynamicQuantizeMatMul falls back to the CPU): tokens equal wasm's;
 *  - int4: runs, tokens only reported: wasm's MatMulNBits quantizes the activations to int8 (accuracy_level 4),
 *    WebGPU multiplies float activations, so the logits differ and sampled tokens diverge;
 *  - w8 (MatMulNBits bits=8): tokens equal on the native build; JSEP's WebGPU MatMulNBits has 2- and 4-bit kernels
 *    only and refuses the graph (the page uses the native build). */
function expectation(build, precision) {
  if (precision === 'w8' && build === 'ort.min.mjs') return { loadError: /Only 2b and 4b quantization is supported/ };
  return { tokens: precision === 'int4' ? 'report' : 'equal' };
}
const BUILDS = process.env.WEBGPU_BUILDS ? process.env.WEBGPU_BUILDS.split(',') : ['ort.min.mjs', 'ort.webgpu.min.mjs'];
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const [artifacts, ...bundles] = process.argv.slice(2);
if (!artifacts || bundles.length === 0) {
  console.error('usage: node tests/web/webgpu_graphs.mjs ARTIFACTS_DIR BUNDLE_DIR...');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.html': 'text/html' };
const mounts = { '/ort/': join(ROOT, 'node_modules', 'onnxruntime-web', 'dist'), '/test/': join(ROOT, 'tests', 'web') };
const only = bundles.map((arg) => (arg.includes('#') ? arg.split('#')[1].split(',') : null));
bundles.forEach((arg, i) => { mounts[`/b${i}/`] = resolve(arg.split('#')[0]); });

const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  if (path === '/') {
    res.writeHead(200, { ...headers, 'Content-Type': 'text/html' });
    res.end('<!doctype html><meta charset="utf-8"><title>webgpu graphs</title><p>webgpu graph test</p>');
    return;
  }
  const mount = Object.keys(mounts).find((m) => path.startsWith(m));
  const file = mount && resolve(mounts[mount], path.slice(mount.length));
  if (!file || !(file === mounts[mount] || file.startsWith(mounts[mount] + sep))) {
    res.writeHead(404).end();
    return;
  }
  try {
    await stat(file);
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  protocolTimeout: 3_600_000,
  args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--disable-dev-shm-usage'],
});
const failures = [];
const reports = [];
try {
  for (const build of BUILDS) {
    const page = await browser.newPage();
    page.setDefaultTimeout(600_000);
    const log = [];
    const copies = {}; // WEBGPU_COUNT_COPIES: Memcpy nodes ORT inserted per graph, from its verbose log
    let current = null;
    page.on('console', (m) => {
      const text = m.text();
      const announced = text.match(/^webgpu_page: \S+ (\S+) (\S+)$/);
      if (announced) current = `${announced[1].replace(base, '')}${announced[2]}`;
      const copy = text.match(/AddCopyNode\] Add (MemcpyFromHost|MemcpyToHost) (?:after|before) (\S+)/);
      if (copy && current) {
        const c = (copies[current] ??= { total: 0, outer: 0 });
        c.total += 1;
        if (copy[2].startsWith('decode/')) c.outer += 1; // the decode graph's own nodes, outside the Loop body
      }
      if (/\[[VI]:onnxruntime/.test(text)) return;
      log.push(text);
      if (process.env.VERBOSE && m.text().startsWith('webgpu_page:')) console.log(`  ${m.text()}`);
    });
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const urls = bundles.map((_, i) => `${base}/b${i}/`);
    const report = await page.evaluate(async (b, u, o, c) => (await import('/test/webgpu_page.mjs')).runBuild(b, u, o, c),
      build, urls, only, { countCopies: Boolean(process.env.WEBGPU_COUNT_COPIES) });
    // ORT warns once per graph when it inserts CPU<->GPU copies: "N Memcpy nodes are added to the graph G for <EP>"
    report.copies = copies;
    report.console = log.filter((l) => !/\[[WIVE]:onnxruntime/.test(l)).slice(-20);
    reports.push(report);
    await page.close();
    if (!report.adapter) {
      failures.push(`${build}: no WebGPU adapter (navigator.gpu.requestAdapter() gave null)`);
      continue;
    }
    console.log(`${build}: adapter ${report.adapter}`);
    for (const [graph, c] of Object.entries(report.copies)) {
      console.log(`  ${build} ${graph}: ${c.total} Memcpy nodes (${c.outer} outside the decode Loop)`);
    }
    for (const row of report.results) {
      const where = `${build} ${row.bundle.replace(base, '')}${row.graph} (${row.precision})`;
      const expect = expectation(build, row.precision);
      if (expect.loadError) {
        const ok = Boolean(row.error && expect.loadError.test(row.error));
        console.log(`  ${where}: refused as expected${ok ? '' : `  <-- FAIL (${row.error || 'it loaded'})`}`);
        if (!ok) failures.push(`${where}: expected ${expect.loadError}, got ${row.error || 'a session'}`);
        continue;
      }
      if (row.error) {
        failures.push(`${where}: ${row.error}`);
        console.log(`  ${where}: ERROR ${row.error}`);
        continue;
      }
      for (const c of row.cases) {
        const tokens = row.graph !== 'codec_decoder';
        const exact = tokens && (row.graph === 'codec_encoder' || expect.tokens === 'equal');
        const ok = !c.nan && (tokens ? (!exact || c.equal) : c.maxAbs <= DECODER_TOL);
        console.log(`  ${where} ${c.name}: ${tokens ? `${(100 * c.agreement).toFixed(2)}% equal` : `max |diff| ${c.maxAbs.toExponential(2)} (peak ${c.peak.toFixed(3)})`}`
          + ` webgpu ${c.webgpu_s.toFixed(2)} s, wasm ${c.wasm_s.toFixed(2)} s${ok ? '' : '  <-- FAIL'}`);
        if (!ok) failures.push(`${where} ${c.name}: ${tokens ? `tokens ${(100 * c.agreement).toFixed(2)}% equal` : `max |diff| ${c.maxAbs}`}`);
      }
    }
  }
} finally {
  await browser.close();
  server.close();
}
writeFileSync(join(artifacts, 'webgpu_graphs.json'), JSON.stringify(reports, null, 1) + '\n');
if (failures.length) {
  console.error(`webgpu_graphs: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('webgpu_graphs: every graph ran on WebGPU on both builds; codes, audio and tokens as expected (docs/WEB.md, "WebGPU")');
