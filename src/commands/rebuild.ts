// `imgbatch rebuild <manifest>`: a new database from the manifest and the output folder's
// sidecars, for a database that was lost or cannot be opened. Adopts every image whose sidecar
// matches its item's request (sha256 verified), pays nothing, and keeps the old file aside.
import { existsSync, renameSync, statSync } from "node:fs";
import { outputLayout } from "../assets/image-stage.js";
import { EXIT, ExitError } from "../errors.js";
import { requestHash } from "../manifest/index.js";
import type { ProviderName } from "../providers/provider.js";
import { adoptFromSidecars, providerOfSidecars, readSidecars } from "../runner/adopt-sidecars.js";
import { DatabaseUnusableError, isDatabaseUrl, openStore } from "../store/index.js";
import type { CommandContext } from "./context.js";
import { lockIsStale } from "./lock.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit } from "./open-store.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";
import { chooseProvider, describeChoice } from "./provider-choice.js";

export interface RebuildOptions {
  db?: string;
  out?: string;
  provider?: ProviderName;
  /** Rebuild even a database that opens (it is kept aside all the same). */
  force?: boolean;
}

/** The items a usable database holds, or null when it cannot be opened. Refuses one a live run holds. */
async function itemsInUsableDb(db: string, now: number): Promise<number | null> {
  try {
    const store = await openStore(db, { readonly: true });
    try {
      const holder = await store.lockHolder();
      if (holder && !lockIsStale(holder, now)) throw new ExitError(EXIT.locked, `a run holds ${db}: pid ${holder.pid} on ${holder.host}; rebuild it once that run has ended`);
      return (await store.integrityCheck()) === "ok" ? Object.values(await store.counts()).reduce((a, b) => a + b, 0) : null;
    } finally {
      await store.close();
    }
  } catch (error) {
    if (error instanceof DatabaseUnusableError || (error as { code?: string }).code?.startsWith("SQLITE_")) return null;
    throw error;
  }
}

/** A name beside the database for the file being replaced: `<db>.damaged-<time>`. */
function asideName(db: string, now: number): string {
  return `${db}.damaged-${new Date(now).toISOString().replace(/[:.]/g, "-")}`;
}

export async function rebuildCommand(manifestPath: string, options: RebuildOptions, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  const layout = outputLayout(paths.outDir);
  let keptAside: string | null = null;
  if (isDatabaseUrl(paths.db)) throw new ExitError(EXIT.usage, "rebuild makes a SQLite file from the sidecars: name a file with --db (a PostgreSQL database is not rebuilt this way; restore it from its backups)");
  if (existsSync(paths.db)) {
    // Only a file is ever set aside: a folder given as --db is a mistake, not a database.
    if (!statSync(paths.db).isFile()) throw new ExitError(EXIT.usage, `${paths.db} is not a file: --db names the database file. Nothing was changed.`);
    const items = await itemsInUsableDb(paths.db, ctx.now());
    if (items !== null && !options.force) {
      throw new ExitError(EXIT.usage, `${paths.db} opens and holds ${items} item(s): nothing to rebuild. To rebuild it from the sidecars anyway (it is kept aside), add --force.`);
    }
    keptAside = asideName(paths.db, ctx.now());
    // The write-ahead log belongs to the file: it goes aside with it, or a new database would read it.
    for (const suffix of ["", "-wal", "-shm"]) if (existsSync(paths.db + suffix)) renameSync(paths.db + suffix, keptAside + suffix);
  }
  const sidecars = readSidecars(layout);
  const choice = chooseProvider({ flag: options.provider, manifest: manifest.provider, remembered: null, sidecars: () => providerOfSidecars(sidecars) });
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: false });
  try {
    await store.syncManifest(
      manifest.items.map((item) => ({ item, requestHash: requestHash(item.request, choice.name) })),
      choice.name,
      { hashWith: requestHash },
    );
    const adoption = await adoptFromSidecars(store, layout, sidecars, requestHash);
    const counts = await store.counts();
    const lines = [
      `rebuilt ${paths.db} from ${sidecars.size} sidecar(s) in ${layout.imagesDir}: ${adoption.adopted} image(s) adopted as done, ${counts.queued} item(s) still to make (provider ${describeChoice(choice)}), nothing paid.`,
    ];
    if (keptAside) lines.push(`The earlier file is kept as ${keptAside}.`);
    for (const refused of adoption.refused.slice(0, 20)) lines.push(`  not adopted: ${refused.key}: ${refused.reason}`);
    if (adoption.refused.length > 20) lines.push(`  … and ${adoption.refused.length - 20} more not adopted`);
    ctx.stdout.write(`${lines.join("\n")}\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
