// A file under its final name is always whole: write to a temporary name in the same
// folder, fsync, rename, fsync the folder. Temporary names share one shape so a resumed
// run can find and remove what a killed one left.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm } from "node:fs/promises";
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

export async function writeFileAtomic(finalPath: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const temp = tempPathFor(finalPath);
  try {
    const handle = await open(temp, "wx");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, finalPath);
    fsyncDir(dirname(finalPath));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Like writeFileAtomic, but leaves the file alone when it already holds exactly `data`. */
export async function writeFileIfChanged(finalPath: string, data: string): Promise<boolean> {
  try {
    if ((await readFile(finalPath, "utf8")) === data) return false;
  } catch {
    /* missing: write it */
  }
  await writeFileAtomic(finalPath, data);
  return true;
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
