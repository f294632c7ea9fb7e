// A perceptual hash (the DCT "pHash"): images that look alike get hashes a few bits apart,
// whatever their size, format or small edits. Made with sharp; no other dependency.
import sharp from "sharp";
import type { DecodedPixels } from "./image-stage.js";

/** The image is shrunk to SAMPLE×SAMPLE grey and its BLOCK×BLOCK lowest frequencies kept: 64 bits. */
const SAMPLE = 32;
const BLOCK = 8;

/** cos((2x+1)uπ / 2N) for u < BLOCK, x < SAMPLE, with the orthonormal DCT-II scale folded in. */
const BASIS: Float64Array[] = Array.from({ length: BLOCK }, (_, u) => {
  const scale = Math.sqrt((u === 0 ? 1 : 2) / SAMPLE);
  return Float64Array.from({ length: SAMPLE }, (_, x) => scale * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SAMPLE)));
});

/** The BLOCK×BLOCK low-frequency corner of the 2-D DCT of a SAMPLE×SAMPLE grey image, row-major ([v][u]). */
function lowFrequencies(grey: Uint8Array): Float64Array {
  // Separable: 1-D DCT along each row (only the BLOCK lowest u), then down each column.
  const rows = new Float64Array(SAMPLE * BLOCK);
  for (let y = 0; y < SAMPLE; y++) {
    for (let u = 0; u < BLOCK; u++) {
      let sum = 0;
      for (let x = 0; x < SAMPLE; x++) sum += grey[y * SAMPLE + x]! * BASIS[u]![x]!;
      rows[y * BLOCK + u] = sum;
    }
  }
  const block = new Float64Array(BLOCK * BLOCK);
  for (let v = 0; v < BLOCK; v++) {
    for (let u = 0; u < BLOCK; u++) {
      let sum = 0;
      for (let y = 0; y < SAMPLE; y++) sum += rows[y * BLOCK + u]! * BASIS[v]![y]!;
      block[v * BLOCK + u] = sum;
    }
  }
  return block;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Coefficients this close count as equal: a flat image's are all 0 give or take rounding error. */
const EPSILON = 1e-9;

/** The 64 bits of a BLOCK×BLOCK corner as 16 hex digits, first coefficient in the highest bit. */
function hashOfCoefficients(block: Float64Array): string {
  // The DC term (mean brightness) is left out of the median and its bit is always 0: it would
  // be 1 for every image, and brightness alone must not tell two images apart.
  const threshold = median(Array.from(block.subarray(1)));
  let bits = 0n;
  for (let i = 1; i < block.length; i++) if (block[i]! > threshold + EPSILON) bits |= 1n << BigInt(block.length - 1 - i);
  return bits.toString(16).padStart(16, "0");
}

/** Luminance of 8-bit sRGB (linear light, libvips' B_W), as 0–255. */
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

/**
 * The 64-bit perceptual hash of raw pixels (alpha, if any, left out: flatten first) as 16 hex
 * digits: grey, averaged down to SAMPLE×SAMPLE cells, then the DCT's low corner. A flat image has
 * no frequencies above DC, so every one hashes to 0000000000000000 (hence the blank gate first).
 */
export function perceptualHashOfPixels(data: Uint8Array, width: number, height: number, channels: number): string {
  const grey = new Uint8Array(SAMPLE * SAMPLE);
  for (let ty = 0; ty < SAMPLE; ty++) {
    const y0 = Math.floor((ty * height) / SAMPLE);
    const y1 = Math.max(y0 + 1, Math.floor(((ty + 1) * height) / SAMPLE));
    for (let tx = 0; tx < SAMPLE; tx++) {
      const x0 = Math.floor((tx * width) / SAMPLE);
      const x1 = Math.max(x0 + 1, Math.floor(((tx + 1) * width) / SAMPLE));
      let sum = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const at = (y * width + x) * channels;
          sum += channels >= 3 ? 0.2126 * LINEAR[data[at]!]! + 0.7152 * LINEAR[data[at + 1]!]! + 0.0722 * LINEAR[data[at + 2]!]! : LINEAR[data[at]!]!;
        }
      }
      const linear = sum / ((y1 - y0) * (x1 - x0));
      const encoded = linear <= 0.0031308 ? linear * 12.92 : 1.055 * linear ** (1 / 2.4) - 0.055;
      grey[ty * SAMPLE + tx] = Math.round(Math.min(1, Math.max(0, encoded)) * 255);
    }
  }
  return hashOfCoefficients(lowFrequencies(grey));
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
