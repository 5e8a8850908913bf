// A pipeline runner for Node: onnxruntime-web's wasm build (the same files the browser loads), one session per
// model, files read from the bundle directory and checked against vampnet.json's sha256 first.
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSession, runSession } from '../../vampnet_ort/web/ort_session.js';
import { modelFiles } from '../../vampnet_ort/web/bundle.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function loadOrt() {
  const path = join(ROOT, 'node_modules', 'onnxruntime-web', 'dist', 'ort.wasm.min.mjs');
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm ci`);
  return import(path);
}

export function nodeRunner(ort, bundleDir, manifest, { threads = 1 } = {}) {
  const sessions = new Map();
  const read = (name) => {
    const bytes = readFileSync(join(bundleDir, name));
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== manifest.files[name].sha256) throw new Error(`${name} does not match its sha256`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  };
  return {
    async run(model, feeds, output = null) {
      const { file, external } = modelFiles(manifest, model);
      if (!sessions.has(model)) {
        sessions.set(model, await createSession(ort, file, read(file), external.map((p) => ({ path: p, data: read(p) })), { threads }));
      }
      return runSession(ort, sessions.get(model), file, feeds, output);
    },
    async release() {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
    },
  };
}
