// Philox4x32-10 (Salmon et al. 2011) in exact JavaScript integer arithmetic: the generator of the decode graphs'
// PhiloxUniform and of the mask builders (docs/PIPELINE.md, "Mask random numbers"; vampnet_ort.masks.MaskRng).

export const M0 = 0xd2511f53;
export const M1 = 0xcd9e8d57;
export const W0 = 0x9e3779b9;
export const W1 = 0xbb67ae85;

const TWO16 = 65536;
const TWO32 = 4294967296;

/** [hi, lo] 32-bit words of the 64-bit product a * b of two uint32 values (exact: every partial < 2^53). */
export function mulhilo32(a, b) {
  const x = a * (b & 0xffff); // < 2^48
  const y = a * (b >>> 16); // < 2^48
  const yHi = Math.floor(y / TWO16);
  const mid = (y % TWO16) * TWO16 + x; // < 2^49
  const hi = yHi + Math.floor(mid / TWO32);
  return [hi >>> 0, mid % TWO32 >>> 0];
}

/** The four output words (uint32) of Philox4x32-10 for counter [c0..c3] and key [k0, k1] (uint32 each). */
export function philox4x32_10(counter, key) {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulhilo32(M0, c0);
    const [hi1, lo1] = mulhilo32(M1, c2);
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Key words [low 32 bits, high 32 bits] of the signed 64-bit seed `seed` (BigInt or safe integer) plus `item`,
 * with two's-complement wrap-around. */
export function itemKey(seed, item = 0) {
  const bits = BigInt.asUintN(64, BigInt(seed) + BigInt(item));
  return [Number(bits & 0xffffffffn), Number(bits >> 32n)];
}

/** u = ((word >> 9) + 0.5) * 2^-23: exact in float32 and float64, strictly inside (0, 1). */
export function uniformFromWord(word) {
  return ((word >>> 9) + 0.5) * 2 ** -23;
}
