// Opening a manifest's database for a command: an unusable file (not a database, damaged, of
// a newer imgbatch) is a clear sentence and exit 1 naming the command that rebuilds it from the
// sidecars; a database missing where an older imgbatch kept it is pointed at.
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { EXIT, ExitError, FILE_SYSTEM_ERROR_CODES } from "../errors.js";
import { DatabaseUnusableError, isDatabaseUrl, openStore, type Store } from "../store/index.js";
import { formerDefaultDb, type RunPaths } from "./paths.js";

/** Errors of the place the database should be (not of imgbatch): a usage or configuration error, exit 1. */
function isEnvironmentCode(code: string): boolean {
  return FILE_SYSTEM_ERROR_CODES.has(code) || code === "ENOENT" || code === "SQLITE_PERM" || /^SQLITE_(IOERR|READONLY|CANTOPEN)/.test(code);
}

/** Makes the output folder, or exits 1 with a sentence when it cannot be (a file in the way, no permission). */
export function prepareOutputFolder(outDir: string): void {
  try {
    mkdirSync(outDir, { recursive: true });
    if (!statSync(outDir).isDirectory()) throw Object.assign(new Error("not a folder"), { code: "ENOTDIR" });
    accessSync(outDir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "?";
    const why = code === "ENOTDIR" || code === "EEXIST" ? "a file stands where the folder (or one above it) should be" : code === "EACCES" || code === "EPERM" || code === "EROFS" ? "it cannot be written" : "it cannot be made";
    throw new ExitError(EXIT.usage, `the output folder ${outDir}: ${why} (${code}). Nothing was submitted; choose another with --out.`);
  }
}

export async function openStoreOrExit(paths: RunPaths, manifest: { name: string; asTyped: string }, options: { readonly: boolean }): Promise<Store> {
  const shared = isDatabaseUrl(paths.db);
  if (options.readonly && !shared && !existsSync(paths.db)) {
    throw new ExitError(EXIT.usage, `no database at ${paths.db}: this manifest has not been run yet (imgbatch run ${manifest.asTyped})`);
  }
  try {
    const store = await openStore(paths.db, { readonly: options.readonly });
    if (!options.readonly) {
      try {
        // A file that opens but cannot take a write (read-only, immutable) is told now, not at the first write.
        await store.probeWrite();
      } catch (error) {
        await store.close();
        throw error;
      }
    }
    return store;
  } catch (error) {
    // A server that cannot be reached or refuses the login is the environment's (exit 1); the URL's password is never quoted.
    if (shared) throw new ExitError(EXIT.usage, `${error instanceof Error ? error.message : String(error)}. Nothing was submitted.`);
    if (error instanceof DatabaseUnusableError) {
      throw new ExitError(
        EXIT.usage,
        `the job database ${paths.db} cannot be used: ${error.message}.\n` +
          `  imgbatch rebuild ${manifest.asTyped} rebuilds it from the sidecars in ${paths.outDir} without paying (it keeps this file aside).`,
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && isEnvironmentCode(code)) {
      throw new ExitError(EXIT.usage, `the job database ${paths.db} cannot be opened or created (${code}): is it a folder, or in a folder that cannot be written? Nothing was submitted.`);
    }
    throw error;
  }
}

/**
 * Refuses a run that would start a new database when one exists where imgbatch ≤ 0.1 kept it
 * (relative to the working folder): it would pay for every image again.
 */
export function refuseFormerDefault(paths: RunPaths, name: string, manifestAsTyped: string, dbFlagGiven: boolean): void {
  if (dbFlagGiven || isDatabaseUrl(paths.db) || existsSync(paths.db)) return;
  const former = formerDefaultDb(name, paths.db);
  if (former === null) return;
  throw new ExitError(
    EXIT.usage,
    `no database at ${paths.db}, where this manifest's state lives, but ${former} exists: an older imgbatch kept the state ` +
      `relative to the working folder. Nothing was submitted. If it is this manifest's, move it (and its output folder) to ` +
      `${paths.projectDir ?? "the manifest's folder"}/jobs/ and /output/, or name it: imgbatch run ${manifestAsTyped} --db ${former} --out <its output folder>. ` +
      `If it belongs to another project, run from another folder or pass --db ${paths.db}.`,
  );
}
