import { inspectReferenceFile } from "../assets/reference-files.js";
import { EXIT, ExitError } from "../errors.js";
import { loadManifest, type LoadOptions } from "../manifest/index.js";
import { ManifestError, formatIssue, type Manifest } from "../manifest/types.js";
import { MAX_ITEMS_LIMIT } from "../manifest/values.js";
import type { CommandContext } from "./context.js";

/**
 * Loads a manifest; on problems prints every one of them and exits 1 before anything is created.
 * `options` undefined: a command that reads what was run (status, report, verify, …), for which
 * the cap on items is lifted to its limit (the run may have had `--max-items`); `validate`,
 * `plan` and `run` pass theirs (`{ maxItems }` of the flag, or `{}`: the manifest's, else the default).
 */
export async function loadManifestOrExit(path: string, _ctx: CommandContext, options?: LoadOptions): Promise<Manifest> {
  try {
    return await loadManifest(path, { inspectReference: inspectReferenceFile, ...(options ?? { maxItems: MAX_ITEMS_LIMIT }) });
  } catch (error) {
    if (error instanceof ManifestError) {
      const n = error.issues.length;
      throw new ExitError(EXIT.usage, `${path}: ${n} problem${n === 1 ? "" : "s"}\n${error.issues.map((i) => `  ${formatIssue(i)}`).join("\n")}`);
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ExitError(EXIT.usage, `${path}: no such manifest file`);
    if (code === "EISDIR") throw new ExitError(EXIT.usage, `${path}: is a folder, not a manifest file`);
    throw error;
  }
}
