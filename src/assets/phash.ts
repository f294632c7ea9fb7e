// A perceptual hash (the DCT "pHash"): images that look alike get hashes a few bits apart,
// whatever their size, format or small edits. Made with sharp; no other dependency.
import sharp from "sharp";
import type { DecodedPixels } from "./image-stage.js";
import { encode8, LINEAR, luminance } from "./srgb.js";

/** The image is shrunk to SAMPLE×SAMPLE grey and its BLOCK×BLOCK lowest frequencies kept: 64 bits. */
const SAMPLE = 32;
const BLOCK = 8;

/** cos((2x+1)uπ / 2N) at [u·SAMPLE + x] for u < BLOCK, x < SAMPLE, with the orthonormal DCT-II scale folded in. */
const BASIS = Float64Array.from({ length: BLOCK * SAMPLE }, (_, i) => {
  const u = Math.floor(i / SAMPLE);
  const x = i % SAMPLE;
  return Math.sqrt((u === 0 ? 1 : 2) / SAMPLE) * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SAMPLE));
});

/** The BLOCK×BLOCK low-frequency corner of the 2-D DCT of a SAMPLE×SAMPLE grey image, row-major ([v][u]). */
function lowFrequencies(grey: Float64Array): Float64Array {
  // Separable: 1-D DCT along each row (only the BLOCK lowest u), then down each column.
  const rows = new Float64Array(SAMPLE * BLOCK);
  for (let y = 0; y < SAMPLE; y++) {
    for (let u = 0; u < BLOCK; u++) {
      let sum = 0;
      for (let x = 0; x < SAMPLE; x++) sum += grey[y * SAMPLE + x]! * BASIS[u * SAMPLE + x]!;
      rows[y * BLOCK + u] = sum;
    }
  }
  const block = new Float64Array(BLOCK * BLOCK);
  for (let v = 0; v < BLOCK; v++) {
    for (let u = 0; u < BLOCK; u++) {
      let sum = 0;
      for (let y = 0; y < SAMPLE; y++) sum += rows[y * BLOCK + u]! * BASIS[v * SAMPLE + y]!;
      block[v * BLOCK + u] = sum;
    }
  }
  return block;
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Coefficients this close count as equal: a flat image's are all 0 give or take rounding error. */
const EPSILON = 1e-9;

/** The 64 bits of a BLOCK×BLOCK corner as 16 hex digits, first coefficient in the highest bit. */
function hashOfCoefficients(block: Float64Array): string {
  // The DC term (mean brightness) is left out of the median and its bit is always 0: it would
  // be 1 for every image, and brightness alone must not tell two images apart.
  const threshold = median(block.subarray(1));
  const halves = new Uint32Array(2); // bits 63–32, then 31–0
  for (let i = 1; i < block.length; i++) {
    if (!(block[i]! > threshold + EPSILON)) continue;
    const bit = block.length - 1 - i;
    const half = bit >= 32 ? 0 : 1;
    halves[half] = halves[half]! | (1 << (bit % 32));
  }
  return halves[0]!.toString(16).padStart(8, "0") + halves[1]!.toString(16).padStart(8, "0");
}

/**
 * The 64-bit perceptual hash of an image's luminance in linear light (one value a pixel, row by
 * row) as 16 hex digits: averaged down to SAMPLE×SAMPLE cells, encoded as 8-bit grey, then the
 * DCT's low corner. A flat image has no frequencies above DC, so every one hashes to
 * 0000000000000000 (hence the blank gate first).
 */
export function perceptualHashOfLuminance(light: Float64Array, width: number, height: number): string {
  const columns = cellBounds(width);
  const rows = cellBounds(height);
  const grey = new Float64Array(SAMPLE * SAMPLE);
  for (let ty = 0; ty < SAMPLE; ty++) {
    const y0 = rows[2 * ty]!;
    const y1 = rows[2 * ty + 1]!;
    for (let tx = 0; tx < SAMPLE; tx++) {
      const x0 = columns[2 * tx]!;
      const x1 = columns[2 * tx + 1]!;
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let p = y * width + x0, end = y * width + x1; p < end; p++) sum += light[p]!;
      grey[ty * SAMPLE + tx] = encode8(sum / ((y1 - y0) * (x1 - x0)));
    }
  }
  return hashOfCoefficients(lowFrequencies(grey));
}

/** Where each of the SAMPLE cells along a side of `size` pixels starts and ends: [start, end) pairs. */
function cellBounds(size: number): Int32Array {
  const bounds = new Int32Array(2 * SAMPLE);
  for (let t = 0; t < SAMPLE; t++) {
    const start = Math.floor((t * size) / SAMPLE);
    bounds[2 * t] = start;
    bounds[2 * t + 1] = Math.max(start + 1, Math.floor(((t + 1) * size) / SAMPLE));
  }
  return bounds;
}

/** The same of raw pixels without alpha (flatten first). */
export function perceptualHashOfPixels(data: Uint8Array, width: number, height: number, channels: number): string {
  const light = new Float64Array(width * height);
  for (let p = 0, at = 0; p < light.length; p++, at += channels) light[p] = channels >= 3 ? luminance(data[at]!, data[at + 1]!, data[at + 2]!) : LINEAR[data[at]!]!;
  return perceptualHashOfLuminance(light, width, height);
}

/** The perceptual hash of decoded pixels, transparent ones counted as white. */
export async function perceptualHash(pixels: DecodedPixels): Promise<string> {
  if (pixels.channels === 1 || pixels.channels === 3) return perceptualHashOfPixels(pixels.data, pixels.width, pixels.height, pixels.channels);
  const { data, info } = await sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } })
    .flatten({ background: "#ffffff" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return perceptualHashOfPixels(data, info.width, info.height, info.channels);
}

const HASH_PATTERN = /^[0-9a-f]{16}$/;

/** The number of bits in which two hashes of perceptualHash differ (0–64). */
export function hammingDistance(a: string, b: string): number {
  if (!HASH_PATTERN.test(a) || !HASH_PATTERN.test(b)) throw new TypeError(`not a 64-bit hex hash: ${HASH_PATTERN.test(a) ? b : a}`);
  let diff = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let count = 0;
  for (; diff !== 0n; diff &= diff - 1n) count++;
  return count;
}
