// A paid image is never overwritten or deleted: before an item's files are replaced, the ones
// there are moved, not copied, to superseded/<key>/<n>/ with the same layout below it
// (images/, thumbs/, renditions/<name>/), so the sidecar's relative links still resolve. A set
// is never moved onto another's files: each move starts in a fresh folder.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { OutputLayout } from "./image-stage.js";

const IMAGE_EXTENSIONS = ["png", "jpg", "webp"];
const DERIVED_EXTENSIONS = ["webp", "jpg", "png", "avif"];
/** A move in progress: a kill leaves it, and the next move of the key finishes it. */
const MOVING = ".moving";

/** The files of an item's set under the output folder that exist now. */
function liveFiles(layout: OutputLayout, key: string): string[] {
  const candidates = [
    ...IMAGE_EXTENSIONS.map((ext) => join(layout.imagesDir, `${key}.${ext}`)),
    join(layout.imagesDir, `${key}.json`),
    ...DERIVED_EXTENSIONS.map((ext) => join(layout.thumbsDir, `${key}.${ext}`)),
  ];
  let renditionNames: string[] = [];
  try {
    renditionNames = readdirSync(layout.renditionsDir);
  } catch {
    /* no renditions folder yet */
  }
  for (const name of renditionNames) for (const ext of DERIVED_EXTENSIONS) candidates.push(join(layout.renditionsDir, name, `${key}.${ext}`));
  return candidates.filter((path) => existsSync(path));
}

function sha256OfFile(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The sha256 a sidecar (`<images folder>/<key>.json`) names for its image, or null without a readable one. */
function sha256NamedBy(sidecarPath: string): string | null {
  // The common case (a key's first delivery) asked without the cost of a thrown ENOENT.
  if (!existsSync(sidecarPath)) return null;
  try {
    const sidecar = JSON.parse(readFileSync(sidecarPath, "utf8")) as { sha256?: unknown };
    return typeof sidecar.sha256 === "string" ? sidecar.sha256 : null;
  } catch {
    return null;
  }
}

/**
 * Whether the files there now are another image than the one about to be written (`sha256`):
 * a different image file, or no image but a sidecar naming a different one. The same image
 * delivered again (its file was lost, or a kill came before its item was done) replaces nothing.
 */
export function holdsAnotherImage(layout: OutputLayout, key: string, sha256: string): boolean {
  const images = IMAGE_EXTENSIONS.map((ext) => join(layout.imagesDir, `${key}.${ext}`)).filter((path) => existsSync(path));
  if (images.length > 0) return images.some((path) => sha256OfFile(path) !== sha256);
  const named = sha256NamedBy(join(layout.imagesDir, `${key}.json`));
  return named !== null && named !== sha256;
}

/** The next free number under superseded/<key>/ (1, 2, …). */
function nextNumber(keyDir: string): number {
  let highest = 0;
  for (const name of existsSync(keyDir) ? readdirSync(keyDir) : []) {
    if (/^[1-9][0-9]*$/.test(name)) highest = Math.max(highest, Number(name));
  }
  return highest + 1;
}

/**
 * Moves the item's files to superseded/<key>/<n>/ and returns that folder, or null when it
 * had none. Renames only (same file system), into a fresh superseded/<key>/.moving/ that is
 * then numbered. A kill half-way leaves .moving/ behind: the next call (or finishInterruptedMoves)
 * numbers it as a set of its own first, so no later move ever lands on its files.
 */
export function supersedeFiles(layout: OutputLayout, key: string): string | null {
  const keyDir = join(layout.supersededDir, key);
  const moving = join(keyDir, MOVING);
  if (existsSync(moving)) renameSync(moving, join(keyDir, String(nextNumber(keyDir))));
  const files = liveFiles(layout, key);
  if (files.length === 0) return null;
  try {
    for (const file of files) {
      const target = join(moving, relative(layout.outDir, file));
      mkdirSync(dirname(target), { recursive: true });
      renameSync(file, target);
    }
  } finally {
    // What was moved is numbered even when a rename failed: it shows in status and the sheet.
    if (existsSync(moving)) renameSync(moving, join(keyDir, String(nextNumber(keyDir))));
  }
  return join(keyDir, String(nextNumber(keyDir) - 1));
}

/** Numbers every move a killed run left half-done (superseded/<key>/.moving/). Returns how many. */
export function finishInterruptedMoves(layout: OutputLayout): number {
  if (!existsSync(layout.supersededDir)) return 0;
  let finished = 0;
  for (const key of readdirSync(layout.supersededDir)) {
    const keyDir = join(layout.supersededDir, key);
    if (!existsSync(join(keyDir, MOVING))) continue;
    renameSync(join(keyDir, MOVING), join(keyDir, String(nextNumber(keyDir))));
    finished++;
  }
  return finished;
}

/**
 * Moves back the newest superseded set of `key` whose sidecar names `sha256` (a request asked
 * for again). Returns the folder it came from, or null when none matches: the run's check of
 * delivered images then fetches the image from its job instead.
 */
export function restoreSuperseded(layout: OutputLayout, key: string, sha256: string): string | null {
  const keyDir = join(layout.supersededDir, key);
  const numbers = existsSync(keyDir) ? readdirSync(keyDir).filter((name) => /^[1-9][0-9]*$/.test(name)).map(Number).sort((a, b) => b - a) : [];
  for (const n of numbers) {
    const setDir = join(keyDir, String(n));
    if (sha256NamedBy(join(setDir, "images", `${key}.json`)) !== sha256) continue;
    // Whatever is live under the key now is kept aside first: nothing is overwritten.
    supersedeFiles(layout, key);
    for (const entry of readdirSync(setDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const from = join(entry.parentPath, entry.name);
      const to = join(layout.outDir, relative(setDir, from));
      mkdirSync(dirname(to), { recursive: true });
      renameSync(from, to);
    }
    rmSync(setDir, { recursive: true, force: true });
    return setDir;
  }
  return null;
}

/** A set of earlier files: where it is, and what its sidecar says. */
export interface SupersededSet {
  key: string;
  n: number;
  /** Paths relative to the output folder (`/`-separated); null when the set lacks one. */
  image: string | null;
  thumbnail: string | null;
  sidecar: { provider?: string; prompt?: string; jobId?: string | null; sha256?: string; credits?: number; times?: { delivered?: string } } | null;
}

/** Every superseded set under the output folder, by key then number. */
export function listSuperseded(layout: OutputLayout): SupersededSet[] {
  const sets: SupersededSet[] = [];
  if (!existsSync(layout.supersededDir)) return sets;
  for (const key of readdirSync(layout.supersededDir).sort()) {
    const keyDir = join(layout.supersededDir, key);
    let numbers: number[];
    try {
      numbers = readdirSync(keyDir).filter((name) => /^[1-9][0-9]*$/.test(name)).map(Number).sort((a, b) => a - b);
    } catch {
      continue;
    }
    for (const n of numbers) {
      const base = `superseded/${key}/${n}`;
      const setDir = join(keyDir, String(n));
      const image = IMAGE_EXTENSIONS.map((ext) => `images/${key}.${ext}`).find((rel) => existsSync(join(setDir, rel))) ?? null;
      const thumbnail = DERIVED_EXTENSIONS.map((ext) => `thumbs/${key}.${ext}`).find((rel) => existsSync(join(setDir, rel))) ?? null;
      let sidecar: SupersededSet["sidecar"] = null;
      try {
        sidecar = JSON.parse(readFileSync(join(setDir, "images", `${key}.json`), "utf8")) as SupersededSet["sidecar"];
      } catch {
        /* a set without a readable sidecar is still listed */
      }
      sets.push({ key, n, image: image && `${base}/${image}`, thumbnail: thumbnail && `${base}/${thumbnail}`, sidecar });
    }
  }
  return sets;
}
