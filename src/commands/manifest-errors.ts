import { EXIT, ExitError } from "../errors.js";
import { loadManifest } from "../manifest/index.js";
import { ManifestError, formatIssue, type Manifest } from "../manifest/types.js";
import type { CommandContext } from "./context.js";

/** Loads a manifest; on problems prints every one of them and exits 1 before anything is created. */
export async function loadManifestOrExit(path: string, _ctx: CommandContext): Promise<Manifest> {
  try {
    return await loadManifest(path);
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
