// The files a manifest names as references (`referenceImage:`), read for the manifest's checks
// (the InspectReference port of manifest/types.ts): a regular file, not empty, within the size
// limit, a PNG, JPEG or WebP by its bytes (never by its name), and its sha256.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { DEFAULTS } from "../defaults.js";
import type { ReferenceInspection } from "../manifest/types.js";
import type { ReferenceContentType } from "../providers/provider.js";
import { EXTENSION, sniffImageFormat, type ImageFormat } from "./image-format.js";

export const CONTENT_TYPE_OF: Record<ImageFormat, ReferenceContentType> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

/** The file name of a reference in the output folder's references/: `<sha256>.<ext>`. */
export function referenceFileName(ref: { sha256: string; contentType: string }): string {
  const format = (Object.keys(CONTENT_TYPE_OF) as ImageFormat[]).find((f) => CONTENT_TYPE_OF[f] === ref.contentType) ?? "png";
  return `${ref.sha256}.${EXTENSION[format]}`;
}

const megabytes = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;

/** Synchronous: called once per distinct file while the manifest is read. */
export function inspectReferenceFile(absolutePath: string, maxBytes: number = DEFAULTS.referenceImageMaxBytes): ReferenceInspection {
  let size: number;
  try {
    const stat = statSync(absolutePath);
    if (stat.isDirectory()) return { ok: false, problem: "is a folder, not an image file" };
    if (!stat.isFile()) return { ok: false, problem: "is not a regular file" };
    size = stat.size;
  } catch (error) {
    return { ok: false, problem: unreadable(error) };
  }
  if (size === 0) return { ok: false, problem: "is empty (0 bytes)" };
  if (size > maxBytes) return { ok: false, problem: `is ${megabytes(size)}, more than the ${megabytes(maxBytes)} a reference image may be; make it smaller` };
  let bytes: Buffer;
  try {
    bytes = readFileSync(absolutePath);
  } catch (error) {
    return { ok: false, problem: unreadable(error) };
  }
  const format = sniffImageFormat(bytes.subarray(0, 16));
  if (format === null) return { ok: false, problem: "is not a PNG, JPEG or WebP image (by its first bytes, whatever its name says)" };
  return { ok: true, sha256: createHash("sha256").update(bytes).digest("hex"), contentType: CONTENT_TYPE_OF[format], bytes: bytes.length };
}

function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return "does not exist (a path is relative to the manifest's folder)";
  if (code === "EACCES" || code === "EPERM") return "cannot be read (permission denied)";
  return `cannot be read (${code ?? String(error)})`;
}
