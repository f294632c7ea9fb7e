// `imgbatch report <manifest>`: results.csv, results.jsonl and index.html from the database.
import { EXIT } from "../errors.js";
import { keysOf, writeReport } from "../report/index.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit, prepareOutputFolder } from "./open-store.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";

export async function reportCommand(manifestPath: string, options: { db?: string; out?: string }, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: true });
  try {
    prepareOutputFolder(paths.outDir);
  } catch (error) {
    await store.close();
    throw error;
  }
  try {
    await writeReport(store, manifest.name, paths.outDir, keysOf(manifest.items));
    ctx.stdout.write(`wrote ${paths.outDir}/results.csv, results.jsonl and index.html\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
