// A file under its final name is always whole: write to a temporary name in the same
// folder, fsync, rename, fsync the folder (or leave both fsyncs to one syncfs of the folder
// later, file-sync.ts, before anything claims the file is there). Temporary names share one
// shape so a resumed run can find and remove what a killed one left.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const TEMP_SUFFIX = ".imgbatch-tmp";

export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
}

export function isTempName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(TEMP_SUFFIX);
}

export function fsyncDir(dir: string): void {
  // Makes the rename itself durable. Some file systems refuse to open a folder: then the
  // rename is as durable as that file system allows.
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported here */
  }
}

/** Folders made (or found) by this process: one mkdir per folder, not one per file. */
const madeDirs = new Set<string>();

/** Opens a new file for writing (never an existing one), making its folder when missing. */
export function openNewFile(path: string): number {
  const dir = dirname(path);
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true });
    madeDirs.add(dir);
  }
  try {
    return openSync(path, "wx");
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
    // The folder went away under a running process: make it again.
    mkdirSync(dir, { recursive: true });
    return openSync(path, "wx");
  }
}

/**
 * How much of a write `writeFileAtomicSync` makes durable itself:
 * - "file-and-folder": the file's bytes and its rename (an fsync of each);
 * - "file-only": the bytes; the caller writes another file into the same folder next and
 *   that write's folder fsync makes both renames durable;
 * - "none": neither; the caller makes the folder durable later (file-sync.ts), before
 *   anything claims the file is there.
 */
export type WriteSync = "file-and-folder" | "file-only" | "none";

/**
 * Synchronous on purpose, like the store's commits: each call of the promise API is a hand-off
 * to libuv's thread pool and back, two context switches, and a file took six of them (mkdir,
 * open, write, fsync, close, rename). Per item that was most of the pipeline's system time
 * (benchmark scenario 3: perf showed the kernel busy switching threads). The main thread
 * waits about as long here as the hand-offs made it wait, and spends less CPU doing it.
 */
export function writeFileAtomicSync(finalPath: string, data: string | Uint8Array, sync: WriteSync = "file-and-folder"): void {
  const temp = tempPathFor(finalPath);
  try {
    const fd = openNewFile(temp);
    try {
      writeFileSync(fd, data);
      if (sync !== "none") fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, finalPath);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  if (sync === "file-and-folder") fsyncDir(dirname(finalPath));
}

/** Removes temporary files a killed run left under `root` (recursively). Returns their paths. */
export async function removeLeftoverTempFiles(root: string): Promise<string[]> {
  const removed: string[] = [];
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true, recursive: true });
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (entry.isFile() && isTempName(entry.name)) {
      const path = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
      await rm(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}
