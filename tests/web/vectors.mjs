// Loads the shared vectors written by tests/web/make_vectors.py (directory $VAMPNET_WEB_VECTORS).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function vectors(name) {
  const dir = process.env.VAMPNET_WEB_VECTORS;
  if (!dir) throw new Error('set VAMPNET_WEB_VECTORS to the output directory of tests/web/make_vectors.py');
  return JSON.parse(readFileSync(join(dir, name), 'utf8'));
}

export function decode(b64, Type) {
  const bytes = Buffer.from(b64, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Type(copy.buffer, 0, bytes.length / Type.BYTES_PER_ELEMENT);
}
