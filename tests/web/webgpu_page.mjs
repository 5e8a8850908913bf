// Browser side of tests/web/webgpu_graphs.mjs: every graph of a bundle on one onnxruntime-web build, with
// executionProviders ['webgpu'] and ['wasm'] on the same feeds; returns the comparison per graph.
//   await runBuild(buildFile, bundleUrls, onlyGraphs)  (onlyGraphs[i]: graph names of bundle i, or null; buildFile: 'ort.min.mjs' = JSEP, 'ort.webgpu.min.mjs' = native WebGPU)

const GRAPHS = ['codec_encoder', 'codec_decoder', 'coarse', 'c2f'];

/** A small deterministic generator (xorshift32), so every build and backend sees the same feeds. */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function decodeCases(ort, manifest, stage) {
  const s = manifest[stage];
  const nc = s.n_codebooks;
  const t = 24;
  const r = rng(stage === 'coarse' ? 11 : 12);
  const codes = new BigInt64Array(nc * t);
  const mask = new BigInt64Array(nc * t);
  for (let i = 0; i < codes.length; i++) {
    codes[i] = BigInt(Math.floor(r() * manifest.vocab_size));
    const c = Math.floor(i / t);
    mask[i] = c >= s.n_conditioning_codebooks && r() < 0.7 ? 1n : 0n;
  }
  const scalarF = (v) => new ort.Tensor('float32', Float32Array.of(v), []);
  const scalarI = (v) => new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), []);
  const feeds = (o) => ({
    codes: new ort.Tensor('int64', codes, [1, nc, t]),
    mask: new ort.Tensor('int64', mask, [1, nc, t]),
    seed: scalarI(o.seed),
    num_steps: scalarI(o.steps),
    temperature: scalarF(o.temperature),
    mask_temperature: scalarF(10.5),
    top_p: scalarF(o.top_p ?? 0),
    typical_mass: scalarF(o.typical_mass ?? 0),
    typical_min_tokens: scalarI(1),
    sample_cutoff: scalarF(1.0),
  });
  return [
    { name: 'sampling', feeds: () => feeds({ seed: 3, steps: 4, temperature: 1.0 }) },
    { name: 'top-p+typical', feeds: () => feeds({ seed: 5, steps: 3, temperature: 1.0, top_p: 0.9, typical_mass: 0.3 }) },
  ];
}

function cases(ort, manifest, graph) {
  if (graph === 'codec_encoder') {
    const n = manifest.hop_length * 16;
    const r = rng(7);
    const audio = new Float32Array(n);
    for (let i = 0; i < n; i++) audio[i] = 0.3 * Math.sin((2 * Math.PI * 220 * i) / 44100) + 0.05 * (r() - 0.5);
    return [{ name: 'audio', feeds: () => ({ audio: new ort.Tensor('float32', audio, [1, 1, n]) }) }];
  }
  if (graph === 'codec_decoder') {
    const nc = manifest.n_codebooks;
    const t = 16;
    const r = rng(9);
    const codes = new BigInt64Array(nc * t);
    for (let i = 0; i < codes.length; i++) codes[i] = BigInt(Math.floor(r() * manifest.vocab_size));
    return [{ name: 'codes', feeds: () => ({ codes: new ort.Tensor('int64', codes, [1, nc, t]) }) }];
  }
  return decodeCases(ort, manifest, graph);
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function compare(graph, a, b) {
  const x = Array.from(a.data, Number);
  const y = Array.from(b.data, Number);
  if (x.length !== y.length) return { equal: false, note: `lengths ${x.length} vs ${y.length}` };
  let maxAbs = 0;
  let peak = 0;
  let same = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    peak = Math.max(peak, Math.abs(y[i]));
    if (x[i] === y[i]) same++;
  }
  return { equal: same === x.length, agreement: same / x.length, maxAbs, peak, count: x.length,
    nan: x.some(Number.isNaN) };
}

export async function runBuild(buildFile, bundleUrls, onlyGraphs = [], { countCopies = false } = {}) {
  const ort = await import(`/ort/${buildFile}`);
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = 1;
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  const info = adapter ? (adapter.info || {}) : null;
  const report = { build: buildFile, adapter: info ? `${info.vendor} ${info.architecture} ${info.description}`.trim() : null,
    results: [] };
  if (!adapter) return report;
  for (const [i, bundleUrl] of bundleUrls.entries()) {
    const manifest = await (await fetch(new URL('vampnet.json', bundleUrl))).json();
    for (const graph of GRAPHS.filter((g) => !onlyGraphs[i] || onlyGraphs[i].includes(g))) {
      const file = `${graph}.onnx`;
      if (!manifest.files[file]) continue;
      const model = await fetchBytes(new URL(file, bundleUrl));
      const externalData = [];
      for (const name of Object.keys(manifest.files)) {
        if (name.startsWith(`${file}.`)) externalData.push({ path: name, data: await fetchBytes(new URL(name, bundleUrl)) });
      }
      const sessions = {};
      console.log(`webgpu_page: ${buildFile} ${bundleUrl} ${graph}`);
      const row = { bundle: bundleUrl, graph, precision: manifest.files[file].precision || 'float32', cases: [] };
      try {
        for (const ep of ['wasm', 'webgpu']) {
          const t0 = performance.now();
          // countCopies: verbose log, where ORT says how many CPU<->GPU Memcpy nodes it inserted per graph
          sessions[ep] = await ort.InferenceSession.create(model, { executionProviders: [ep], externalData,
            ...(ep === 'webgpu' && countCopies ? { logSeverityLevel: 0, logVerbosityLevel: 1 } : {}) });
          row[`${ep}_load_s`] = (performance.now() - t0) / 1000;
        }
        for (const c of cases(ort, manifest, graph)) {
          const out = {};
          for (const ep of ['wasm', 'webgpu']) {
            const t0 = performance.now();
            const results = await sessions[ep].run(c.feeds());
            const first = results[sessions[ep].outputNames[0]];
            out[ep] = { data: first.data.slice(), dims: Array.from(first.dims) };
            out[`${ep}_s`] = (performance.now() - t0) / 1000;
          }
          console.log(`webgpu_page:   ${c.name} webgpu ${out.webgpu_s.toFixed(2)} s wasm ${out.wasm_s.toFixed(2)} s`);
          row.cases.push({ name: c.name, dims: out.webgpu.dims, wasm_s: out.wasm_s, webgpu_s: out.webgpu_s,
            ...compare(graph, out.webgpu, out.wasm) });
        }
      } catch (err) {
        row.error = String(err && err.message ? err.message : err).split('\n')[0];
      } finally {
        for (const s of Object.values(sessions)) await s.release();
      }
      report.results.push(row);
    }
  }
  return report;
}
