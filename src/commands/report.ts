// `imgbatch report <manifest>`: results.csv, results.jsonl and index.html from the database.
import { existsSync } from "node:fs";
import { EXIT, ExitError } from "../errors.js";
import { keysOf, writeReport } from "../report/index.js";
import { Store } from "../store/store.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { runPaths } from "./paths.js";

export async function reportCommand(manifestPath: string, options: { db?: string; out?: string }, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  if (!existsSync(paths.db)) throw new ExitError(EXIT.usage, `no database at ${paths.db}: run the manifest first (imgbatch run ${manifestPath})`);
  const store = Store.open(paths.db, { readonly: true });
  try {
    await writeReport(store, manifest.name, paths.outDir, keysOf(manifest.items));
    ctx.stdout.write(`wrote ${paths.outDir}/results.csv, results.jsonl and index.html\n`);
    return EXIT.ok;
  } finally {
    store.close();
  }
}
