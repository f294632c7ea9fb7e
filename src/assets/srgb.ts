// 8-bit sRGB values and linear light, both ways, without a pow() per pixel: the quality gates
// and the perceptual hash convert every pixel of an image of up to 512×512.

/** An sRGB value in [0, 1] to linear light. */
function decode(c: number): number {
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

/** sRGB's 8-bit values to linear light. */
export const LINEAR = Float64Array.from({ length: 256 }, (_, v) => decode(v / 255));

/** Luminance in linear light (libvips' B_W) of an sRGB pixel. */
export function luminance(r: number, g: number, b: number): number {
  return 0.2126 * LINEAR[r]! + 0.7152 * LINEAR[g]! + 0.0722 * LINEAR[b]!;
}

/** Where encoding rounds up past k: the linear value of sRGB (k + 0.5) / 255, for k < 255. */
const ROUNDS_UP_AT = Float64Array.from({ length: 255 }, (_, k) => decode((k + 0.5) / 255));

/** For each of STEPS equal slices of [0, 1], the encoded value at its lower end: a search starts there. */
const STEPS = 65536;
const START = new Uint8Array(STEPS);
for (let i = 0, k = 0; i < STEPS; i++) {
  while (k < 255 && ROUNDS_UP_AT[k]! <= i / STEPS) k++;
  START[i] = k;
}

/** Linear light back to an 8-bit sRGB value, as Math.round(encode(linear) × 255) gives it. */
export function encode8(linear: number): number {
  if (!(linear > 0)) return 0;
  if (linear >= 1) return 255;
  let k = START[Math.floor(linear * STEPS)]!;
  while (k < 255 && ROUNDS_UP_AT[k]! <= linear) k++;
  return k;
}
