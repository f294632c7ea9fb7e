// Real image bytes for simulated jobs. Encoding with sharp costs milliseconds, so a small set
// of gradients (a colour, and a pattern of darker blocks so that two jobs' images seldom look
// alike to the duplicate gate) is encoded once per (ratio, format, colour, pattern); each image
// is then made unique by a text chunk (PNG tEXt / JPEG COM) carrying its id, which decoders ignore.
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { RATIO_PIXELS, type AspectRatio } from "../providers/catalog.js";

export type SimImageFormat = "png" | "jpeg";

const PALETTE: [number, number, number][] = [
  [231, 76, 60],
  [230, 126, 34],
  [241, 196, 15],
  [46, 204, 113],
  [26, 188, 156],
  [52, 152, 219],
  [155, 89, 182],
  [52, 73, 94],
];

const cache = new Map<string, Promise<Buffer>>();

/** Patterns of darker blocks on a 4×4 grid, each with its colour: two variants of a row look alike once in 256. */
const PATTERNS = 256;

function seedBytes(seed: string): Buffer {
  return createHash("sha256").update(seed).digest();
}

/** `blank`: a flat black frame; `patterned`: a gradient darkened in the blocks the pattern picks. */
export type SimLook = "blank" | "patterned";

async function encodeBase(ratio: AspectRatio, format: SimImageFormat, colour: number, pattern: number): Promise<Buffer> {
  const { width, height } = RATIO_PIXELS[ratio];
  const raw = Buffer.alloc(width * height * 3);
  if (pattern >= 0) {
    const [r, g, b] = PALETTE[colour] ?? [128, 128, 128];
    const blocks = seedBytes(`pattern ${pattern}`);
    for (let y = 0; y < height; y++) {
      // A vertical gradient from the colour to a dark shade, with half its blocks darker still.
      const k = 1 - (0.7 * y) / height;
      const by = Math.min(3, Math.floor((4 * y) / height));
      for (let x = 0; x < width; x++) {
        const bx = Math.min(3, Math.floor((4 * x) / width));
        const dark = (blocks[by * 4 + bx]! & 1) === 1 ? 0.45 : 1;
        const at = (y * width + x) * 3;
        raw[at] = Math.round(r * k * dark);
        raw[at + 1] = Math.round(g * k * dark);
        raw[at + 2] = Math.round(b * k * dark);
      }
    }
  }
  const image = sharp(raw, { raw: { width, height, channels: 3 } });
  return format === "png" ? image.png().toBuffer() : image.jpeg({ quality: 80 }).toBuffer();
}

function baseImage(ratio: AspectRatio, format: SimImageFormat, colour: number, pattern: number): Promise<Buffer> {
  const key = `${ratio}|${format}|${colour}|${pattern}`;
  let bytes = cache.get(key);
  if (bytes === undefined) {
    bytes = encodeBase(ratio, format, colour, pattern);
    bytes.catch(() => cache.delete(key));
    cache.set(key, bytes);
  }
  return bytes;
}

function pngTextChunk(keyword: string, text: string): Buffer {
  const data = Buffer.from(`${keyword}\0${text}`, "latin1");
  const type = Buffer.from("tEXt", "latin1");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, data])));
  return Buffer.concat([length, type, data, crc]);
}

/** Inserts the tag after the PNG IHDR chunk (8-byte signature + 25-byte IHDR). */
function tagPng(base: Buffer, tag: string): Buffer {
  const afterIhdr = 8 + 25;
  return Buffer.concat([base.subarray(0, afterIhdr), pngTextChunk("imgbatch-sim", tag), base.subarray(afterIhdr)]);
}

/** Inserts a COM segment right after the JPEG SOI marker. */
function tagJpeg(base: Buffer, tag: string): Buffer {
  const text = Buffer.from(`imgbatch-sim ${tag}`, "latin1");
  const header = Buffer.from([0xff, 0xfe, 0, 0]);
  header.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([base.subarray(0, 2), header, text, base.subarray(2)]);
}

/** The bytes of one simulated image: colour and pattern from `seed` (the job id), unique by `tag`. */
export async function renderSimImage(ratio: AspectRatio, format: SimImageFormat, seed: string, tag: string, look: SimLook = "patterned"): Promise<Buffer> {
  const bytes = seedBytes(seed);
  const pattern = bytes[0]! % PATTERNS;
  const base = look === "blank" ? await baseImage(ratio, format, 0, -1) : await baseImage(ratio, format, pattern % PALETTE.length, pattern);
  return format === "png" ? tagPng(base, tag) : tagJpeg(base, tag);
}
