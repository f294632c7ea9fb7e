// The image stage of the pipeline: verify what arrived, move it into place, make the
// thumbnail and renditions. sharp is used here and in the local renderer only.
import { createHash } from "node:crypto";
import { isAbsolute, join, relative, sep } from "node:path";
import sharp from "sharp";
import { PermanentError } from "../errors.js";
import type { OutputFormat, RenditionSpec, ThumbnailSpec } from "../manifest/types.js";
import { writeFileAtomicSync, type WriteSync } from "./atomic-file.js";
import { EXTENSION, sniffImageFormat, type ImageFormat } from "./image-format.js";
import { embedXmp, provenanceXmp, type Provenance } from "./provenance.js";

export interface OutputLayout {
  outDir: string;
  imagesDir: string;
  thumbsDir: string;
  renditionsDir: string;
  /** Earlier files of items made anew: `superseded/<key>/<n>/` (never deleted). */
  supersededDir: string;
}

export function outputLayout(outDir: string): OutputLayout {
  return {
    outDir,
    imagesDir: join(outDir, "images"),
    thumbsDir: join(outDir, "thumbs"),
    renditionsDir: join(outDir, "renditions"),
    supersededDir: join(outDir, "superseded"),
  };
}

/** A path as the database keeps it: relative to the output folder, with `/`, so a moved folder keeps working. */
export function storedPath(layout: Pick<OutputLayout, "outDir">, path: string): string {
  return relative(layout.outDir, path).split(sep).join("/");
}

/** Where a path the database keeps is on disk (an absolute one, from before migration 6, as it is). */
export function pathOnDisk(layout: Pick<OutputLayout, "outDir">, stored: string): string {
  return isAbsolute(stored) ? stored : join(layout.outDir, ...stored.split("/"));
}

/** An image decoded once, kept as pixels so the thumbnail and renditions need no decode of their own. */
export interface DecodedPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** A file to decode, or pixels already decoded. */
export type ImageInput = string | DecodedPixels;

function open(input: ImageInput, maxInputPixels: number): sharp.Sharp {
  if (typeof input === "string") return sharp(input, { limitInputPixels: maxInputPixels });
  return sharp(input.data, { raw: { width: input.width, height: input.height, channels: input.channels } });
}

export interface DeliveredImage {
  pixels: DecodedPixels;
  filePath: string;
  format: ImageFormat;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
}

const OUTPUT_EXTENSION: Record<OutputFormat, string> = { jpeg: "jpg", webp: "webp", png: "png", avif: "avif" };

export function outputExtension(format: OutputFormat): string {
  return OUTPUT_EXTENSION[format];
}

/**
 * Verifies an image (format from its bytes, full decode under a pixel limit, size as the
 * job said), stamps provenance into it and moves it to `images/<key>.<ext>`.
 */
export async function deliverImage(input: {
  layout: OutputLayout;
  key: string;
  /** The image as it arrived (downloaded, or rendered locally). */
  original: Buffer;
  expected: { width: number; height: number } | null;
  maxInputPixels: number;
  provenance: Provenance;
  /** "file-only" leaves the folder's fsync to the sidecar written next to it. */
  sync: WriteSync;
  /** Called with the image's sha256 before anything is written (to move earlier files aside). */
  beforeWrite?: (sha256: string) => void;
}): Promise<DeliveredImage> {
  const { original } = input;
  const format = sniffImageFormat(original.subarray(0, 16));
  if (!format) throw new PermanentError("the service delivered something that is not a PNG, JPEG or WebP image", "NOT_AN_IMAGE");
  let pixels: DecodedPixels;
  try {
    // A full decode (not just the header) catches truncated and corrupt files; its pixels
    // then feed the thumbnail and every rendition (one decode per image, measured in bench 5).
    const { data, info } = await sharp(original, { limitInputPixels: input.maxInputPixels, failOn: "truncated" }).raw().toBuffer({ resolveWithObject: true });
    pixels = { data, width: info.width, height: info.height, channels: info.channels };
  } catch (error) {
    throw new PermanentError(`image does not decode: ${(error as Error).message}`, "IMAGE_CORRUPT");
  }
  const { width, height } = pixels;
  if (input.expected && (input.expected.width !== width || input.expected.height !== height)) {
    throw new PermanentError(
      `image is ${width}×${height}, the job said ${input.expected.width}×${input.expected.height}`,
      "IMAGE_SIZE_MISMATCH",
    );
  }
  const stamped = embedXmp(original, format, provenanceXmp(input.provenance));
  const sha256 = createHash("sha256").update(stamped).digest("hex");
  input.beforeWrite?.(sha256);
  const filePath = join(input.layout.imagesDir, `${input.key}.${EXTENSION[format]}`);
  writeFileAtomicSync(filePath, stamped, input.sync);
  return { pixels, filePath, format, sha256, bytes: stamped.length, width, height };
}

export async function makeThumbnail(input: {
  layout: OutputLayout;
  key: string;
  image: ImageInput;
  spec: ThumbnailSpec;
  maxInputPixels: number;
  sync: WriteSync;
}): Promise<string> {
  const path = join(input.layout.thumbsDir, `${input.key}.${outputExtension(input.spec.format)}`);
  const data = await open(input.image, input.maxInputPixels)
    .resize(input.spec.size, input.spec.size, { fit: "inside", withoutEnlargement: true })
    .toFormat(input.spec.format, { quality: input.spec.quality })
    .toBuffer();
  writeFileAtomicSync(path, data, input.sync);
  return path;
}

export function renditionSettingsHash(spec: RenditionSpec): string {
  return createHash("sha256").update(JSON.stringify([spec.width, spec.height, spec.fit, spec.position, spec.format, spec.quality])).digest("hex").slice(0, 16);
}

export async function makeRendition(input: {
  layout: OutputLayout;
  key: string;
  image: ImageInput;
  spec: RenditionSpec;
  maxInputPixels: number;
  provenance: Provenance;
  sync: WriteSync;
}): Promise<{ path: string; width: number; height: number }> {
  const dir = join(input.layout.renditionsDir, input.spec.name);
  const path = join(dir, `${input.key}.${outputExtension(input.spec.format)}`);
  const position = input.spec.position === "attention" ? sharp.strategy.attention : input.spec.position === "entropy" ? sharp.strategy.entropy : "centre";
  const { data, info } = await open(input.image, input.maxInputPixels)
    .resize(input.spec.width, input.spec.height, { fit: input.spec.fit, position, background: { r: 255, g: 255, b: 255, alpha: 1 } })
    .toFormat(input.spec.format, { quality: input.spec.quality })
    .withXmp(provenanceXmp(input.provenance))
    .toBuffer({ resolveWithObject: true });
  writeFileAtomicSync(path, data, input.sync);
  return { path, width: info.width, height: info.height };
}

