// Where a manifest's state lives. One rule from the manifest's own location, never from the
// working folder, so the same manifest finds the same database and images from anywhere.
import { existsSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, parse, resolve } from "node:path";
import { DEFAULTS } from "../defaults.js";
import { isDatabaseUrl, redactUrl } from "../store/index.js";

export interface RunPaths {
  /** A SQLite file, or a PostgreSQL URL (`--db postgres://…`, IMGBATCH_DB). */
  db: string;
  /** The database as messages show it: a URL without its password. */
  dbLabel: string;
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
 * The project folder of a manifest, from the manifest's own folder upwards (never above the
 * user's home, never the file system's root): the nearest that holds this manifest's database
 * (`jobs/<name>.sqlite`); else the nearest that holds a `jobs/` folder; else the manifest's own
 * folder. A deleted `output/` (or any other folder) never moves the state elsewhere. The
 * manifest's path is followed through symlinks first.
 */
export function projectFolder(manifestFile: string, name: string, home = homedir()): string {
  let start = dirname(resolve(manifestFile));
  try {
    start = dirname(realpathSync(manifestFile));
  } catch {
    /* a manifest that cannot be resolved was refused before; keep the path as given */
  }
  const candidates: string[] = [];
  for (let folder = start; ; folder = dirname(folder)) {
    // Home and the root are where unrelated `jobs/` folders live; only the manifest's own may be either.
    if (folder === start || (folder !== home && folder !== parse(folder).root)) candidates.push(folder);
    if (folder === home || folder === parse(folder).root) break;
  }
  return (
    candidates.find((folder) => existsSync(join(folder, DEFAULTS.jobsDir, `${name}.sqlite`))) ??
    candidates.find((folder) => isFolder(join(folder, DEFAULTS.jobsDir))) ??
    start
  );
}

/**
 * Defaults: `<project>/jobs/<name>.sqlite` and `<project>/output/<name>/` (projectFolder).
 * `--db` and `--out` given on the command line are relative to the working folder, as flags are.
 */
export function runPaths(manifest: { name: string; file: string }, options: { db?: string; out?: string }): RunPaths {
  const projectDir = options.db !== undefined && options.out !== undefined ? null : projectFolder(manifest.file, manifest.name);
  const db = options.db === undefined ? join(projectDir!, DEFAULTS.jobsDir, `${manifest.name}.sqlite`) : isDatabaseUrl(options.db) ? options.db : resolve(options.db);
  return {
    db,
    dbLabel: isDatabaseUrl(db) ? redactUrl(db) : db,
    outDir: options.out !== undefined ? resolve(options.out) : join(projectDir!, DEFAULTS.outputDir, manifest.name),
    projectDir,
  };
}

/** The database the working-folder rule of imgbatch ≤ 0.1 used, when it is another file that exists. */
export function formerDefaultDb(name: string, db: string, cwd = process.cwd()): string | null {
  const former = resolve(cwd, DEFAULTS.jobsDir, `${name}.sqlite`);
  return former !== db && existsSync(former) ? former : null;
}
