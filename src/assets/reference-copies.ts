// The reference images a run uses, kept in the output folder as `references/<sha256>.<ext>` with a
// small thumbnail `references/thumbs/<sha256>.webp`: the contact sheet opens from disk with
// relative links only, the folder is handed on whole, and an upload or the local renderer reads
// the bytes that were checked (content-addressed: a copy under its name is that file).
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import type { ReferenceFile } from "../manifest/types.js";
import type { ReferenceContentType } from "../providers/provider.js";
import { writeFileAtomicSync } from "./atomic-file.js";
import { referenceFileName } from "./reference-files.js";

export const REFERENCES_DIR = "references";
/** Longest side of a reference's thumbnail in the contact sheet. */
const THUMB_PX = 160;

/** A reference as a run can use it: the copy in the output folder and the name the file had. */
export interface StagedReference {
  sha256: string;
  contentType: ReferenceContentType;
  /** The copy under references/. */
  path: string;
  /** The file's own name (for the upload's fileName and for messages). */
  fileName: string;
}

/** Where a reference lives in the output folder, relative to it (`/`-separated): the copy and its thumbnail. */
export function referencePaths(ref: { sha256: string; contentType: string }): { image: string; thumbnail: string } {
  return { image: `${REFERENCES_DIR}/${referenceFileName(ref)}`, thumbnail: `${REFERENCES_DIR}/thumbs/${ref.sha256}.webp` };
}

/**
 * Copies each reference into the output folder (once: a copy under its sha256 is kept) with its
 * thumbnail. A file whose bytes changed since the manifest was read is not copied and is
 * listed in `changed`: its items cannot be made with what was checked (run again).
 */
export async function stageReferences(outDir: string, files: readonly ReferenceFile[]): Promise<{ staged: Map<string, StagedReference>; changed: ReferenceFile[] }> {
  const staged = new Map<string, StagedReference>();
  const changed: ReferenceFile[] = [];
  for (const file of files) {
    const rel = referencePaths(file);
    const copy = join(outDir, ...rel.image.split("/"));
    const thumb = join(outDir, ...rel.thumbnail.split("/"));
    let bytes: Buffer | null = null;
    if (!existsSync(copy) || statSync(copy).size !== file.bytes) {
      bytes = readFileSync(file.path);
      if (createHash("sha256").update(bytes).digest("hex") !== file.sha256) {
        changed.push(file);
        continue;
      }
      writeFileAtomicSync(copy, bytes);
    }
    if (!existsSync(thumb)) {
      try {
        const thumbnail = await sharp(bytes ?? copy, { limitInputPixels: 64 * 1024 * 1024 })
          .rotate()
          .resize(THUMB_PX, THUMB_PX, { fit: "inside", withoutEnlargement: true })
          .webp({ quality: 80 })
          .toBuffer();
        writeFileAtomicSync(thumb, thumbnail);
      } catch (error) {
        // Bytes that start like an image but do not decode: no thumbnail (the service judges the file).
        if ((error as NodeJS.ErrnoException).code !== undefined) throw error;
      }
    }
    staged.set(file.sha256, { sha256: file.sha256, contentType: file.contentType, path: copy, fileName: file.path.split(/[\\/]/).pop() ?? rel.image });
  }
  return { staged, changed };
}

/** The staged copy of a reference the manifest no longer names (an item of an earlier run still at work), or null. */
export function stagedCopy(outDir: string, ref: { sha256: string; contentType: ReferenceContentType }): StagedReference | null {
  const rel = referencePaths(ref);
  const path = join(outDir, ...rel.image.split("/"));
  return existsSync(path) ? { sha256: ref.sha256, contentType: ref.contentType, path, fileName: referenceFileName(ref) } : null;
}
