// Where a manifest's state lives. One rule from the manifest's own location, never from the
// working folder, so the same manifest finds the same database and images from anywhere.
import { existsSync, realpathSync, statSync } from "node:fs";
import { dirname, join, parse, resolve } from "node:path";
import { DEFAULTS } from "../defaults.js";

export interface RunPaths {
  db: string;
  outDir: string;
  /** The folder the defaults were resolved in (null when --db and --out were both given). */
  projectDir: string | null;
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The project folder of a manifest: the nearest folder, from the manifest's own upwards, that
 * holds both a `jobs/` and an `output/` folder (what imgbatch makes there); when none does,
 * the manifest's own folder. The manifest's path is followed through symlinks first.
 */
export function projectFolder(manifestFile: string): string {
  let start = dirname(resolve(manifestFile));
  try {
    start = dirname(realpathSync(manifestFile));
  } catch {
    /* a manifest that cannot be resolved was refused before; keep the path as given */
  }
  const root = parse(start).root;
  for (let folder = start; ; folder = dirname(folder)) {
    if (isFolder(join(folder, DEFAULTS.jobsDir)) && isFolder(join(folder, DEFAULTS.outputDir))) return folder;
    if (folder === root) return start;
  }
}

/**
 * Defaults: `<project>/jobs/<name>.sqlite` and `<project>/output/<name>/` (projectFolder).
 * `--db` and `--out` given on the command line are relative to the working folder, as flags are.
 */
export function runPaths(manifest: { name: string; file: string }, options: { db?: string; out?: string }): RunPaths {
  const projectDir = options.db !== undefined && options.out !== undefined ? null : projectFolder(manifest.file);
  return {
    db: options.db !== undefined ? resolve(options.db) : join(projectDir!, DEFAULTS.jobsDir, `${manifest.name}.sqlite`),
    outDir: options.out !== undefined ? resolve(options.out) : join(projectDir!, DEFAULTS.outputDir, manifest.name),
    projectDir,
  };
}

/** The database the working-folder rule of imgbatch ≤ 0.1 used, when it is another file that exists. */
export function formerDefaultDb(name: string, db: string, cwd = process.cwd()): string | null {
  const former = resolve(cwd, DEFAULTS.jobsDir, `${name}.sqlite`);
  return former !== db && existsSync(former) ? former : null;
}
