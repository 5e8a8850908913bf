// Chunk plans of the pipeline, ported from vampnet_ort.codec (encode_chunks / decode_chunks, computed from the
// affine numbers of vampnet.json "codec.geometry", see vampnet_ort.codec_geometry.chunk_geometry) and from
// Pipeline.coarse_stage / c2f_stage (575- and 173-frame chunks), plus derive_seed.

const MASK64 = (1n << 64n) - 1n;

function splitmix64(x) {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return x ^ (x >> 31n);
}

/** vampnet_ort.pipeline.derive_seed: seed + H(labels) mod 2^64 as a signed 64-bit BigInt. */
export function deriveSeed(seed, ...labels) {
  let offset = 0n;
  for (const label of labels) offset = splitmix64(offset ^ splitmix64(BigInt(label) & MASK64));
  return BigInt.asIntN(64, BigInt(seed) + offset);
}

function spans(total, size) {
  const out = [];
  for (let start = 0; start < total; start += size) out.push([start, Math.min(total, start + size)]);
  return out;
}

/** Frames the encoder makes from n samples (codec.num_frames). */
export function numFrames(g, n) {
  return Math.ceil(n / g.hop_length) + g.encoder_frames_offset;
}

/** Samples the decoder makes from `frames` frames (codec.num_samples). */
export function numSamples(g, frames) {
  return frames * g.decoder_hop + g.decoder_samples_offset;
}

/** codec.encode_chunks: [f0, f1, start, stop] per chunk. */
export function encodeChunks(g, n, chunk = g.encode_chunk_frames) {
  const hop = g.hop_length;
  return spans(numFrames(g, n), chunk).map(([f0, f1]) => {
    const lo = f0 * hop - g.encoder_left;
    const hi = (f1 - 1) * hop + g.encoder_right;
    return [f0, f1, Math.floor(Math.max(0, lo) / hop) * hop, Math.min(n, Math.ceil((hi + 1) / hop) * hop)];
  });
}

/** codec.decode_chunks: [f0, f1, g0, g1, s0, s1] per chunk. */
export function decodeChunks(g, total, chunk = g.decode_chunk_frames) {
  return spans(total, chunk).map(([f0, f1]) => {
    const last = f1 === total;
    const s1 = last ? numSamples(g, total) : f1 * g.decoder_hop;
    const hi = f1 - 1 + (last ? g.decoder_right_end : g.decoder_right);
    return [f0, f1, Math.max(0, f0 - g.decoder_left), Math.min(total, hi + 1), f0 * g.decoder_hop, s1];
  });
}

/** Pipeline.coarse_stage's chunks: [lo, hi) of chunk_frames each, the last one shorter. */
export function coarseChunks(total, chunkFrames) {
  return spans(Math.max(total, 1), chunkFrames).map(([lo, hi]) => [lo, Math.min(hi, total)]);
}

/** Pipeline.c2f_stage's chunks: fixed-size [lo, lo + chunk) over the zero-padded length; returns {chunks, padded}. */
export function c2fChunks(total, chunkFrames) {
  const n = Math.max(1, Math.ceil(total / chunkFrames));
  const chunks = [];
  for (let k = 0; k < n; k++) chunks.push([k * chunkFrames, (k + 1) * chunkFrames]);
  return { chunks, padded: n * chunkFrames };
}
