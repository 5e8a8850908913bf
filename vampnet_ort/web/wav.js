// WAV writer: mono float samples -> 16-bit PCM RIFF/WAVE bytes, converting as libsndfile 1.2 does for
// soundfile.write(..., subtype PCM_16) in vampnet_ort.audio.write_audio: floor(x * 32768), clipped to
// [-32768, 32767] (tests/web/wav.test.mjs checks this against soundfile's output on the same samples).

/** The 16-bit value libsndfile writes for float sample x. */
export function pcm16(x) {
  const v = Math.floor(Math.fround(x) * 32768); // exact: a power-of-two scale
  return Math.max(-32768, Math.min(32767, v));
}

/** The bytes of a mono 16-bit PCM WAV file of `samples` at `sampleRate`. */
export function encodeWav(samples, sampleRate) {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new RangeError(`invalid sample rate ${sampleRate}`);
  const dataBytes = samples.length * 2;
  const buffer = new ArrayBuffer(44 + dataBytes);
  const view = new DataView(buffer);
  const ascii = (offset, text) => {
    for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true); // PCM fmt chunk size
  view.setUint16(20, 1, true); // WAVE_FORMAT_PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // byte rate
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) view.setInt16(44 + 2 * i, pcm16(samples[i]), true);
  return new Uint8Array(buffer);
}
