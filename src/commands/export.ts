// `imgbatch export <manifest> --approved (--to DIR | --zip FILE) [--renditions a,b]`: the hand-off.
// The approved images (their current image only: a decision belongs to the image it was made on),
// their sidecars and the chosen renditions, named by key, with export.csv listing what is in it.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ExportError, writeExportFolder, writeExportZip, type ExportEntry } from "../assets/export-writer.js";
import { outputLayout, pathOnDisk } from "../assets/image-stage.js";
import { EXIT, ExitError } from "../errors.js";
import { csvCell } from "../report/results.js";
import type { Store } from "../store/port.js";
import type { DecisionRecord, ItemRecord } from "../store/types.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit } from "./open-store.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";

export interface ExportOptions {
  db?: string;
  out?: string;
  approved?: boolean;
  to?: string;
  zip?: string;
  renditions?: string[];
}

const CSV_COLUMNS = ["key", "rowId", "prompt", "model", "style", "aspectRatio", "provider", "image", "sha256", "width", "height", "renditions", "reviewer", "reviewedAt", "reviewNote"] as const;

/** The approved items, in the store's order, each with its decision. */
async function approvedItems(store: Store): Promise<{ item: ItemRecord; decision: DecisionRecord }[]> {
  const decisions = await store.currentDecisions();
  const approved: { item: ItemRecord; decision: DecisionRecord }[] = [];
  for (const item of await store.inStates(["done"])) {
    const decision = decisions.get(item.key);
    if (decision && decision.decision === "approved" && decision.sha256 === item.sha256) approved.push({ item, decision });
  }
  return approved;
}

function lastSegment(path: string): string {
  return path.split("/").at(-1)!;
}

export async function exportCommand(manifestPath: string, options: ExportOptions, ctx: CommandContext): Promise<number> {
  if (!options.approved) throw new ExitError(EXIT.usage, "export needs --approved: it hands on the images approved in `imgbatch review` (nothing else is exported yet)");
  if ((options.to === undefined) === (options.zip === undefined)) throw new ExitError(EXIT.usage, "export needs exactly one of --to DIR (a folder) or --zip FILE");
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const wanted = options.renditions ?? [];
  const known = new Set(manifest.renditions.map((r) => r.name));
  const unknown = wanted.filter((name) => !known.has(name));
  if (unknown.length) throw new ExitError(EXIT.usage, `--renditions: ${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not a rendition of ${shellWord(manifestPath)} (known: ${[...known].join(", ") || "none"})`);
  const paths = runPaths(manifest, options);
  const layout = outputLayout(paths.outDir);
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: true });
  try {
    const approved = await approvedItems(store);
    if (approved.length === 0) throw new ExitError(EXIT.usage, `no approved image in ${paths.dbLabel}: approve some first (imgbatch review ${shellWord(manifestPath)})`);
    const renditions = await store.renditionsByItem();
    const entries: ExportEntry[] = [];
    const rows: string[] = [`${CSV_COLUMNS.join(",")}\r\n`];
    for (const { item, decision } of approved) {
      const image = lastSegment(item.filePath!);
      const files: ExportEntry["files"] = [{ name: `images/${image}`, source: pathOnDisk(layout, item.filePath!), sha256: item.sha256! }];
      const sidecar = join(layout.imagesDir, `${item.key}.json`);
      if (existsSync(sidecar)) files.push({ name: `images/${item.key}.json`, source: sidecar });
      const chosen = (renditions.get(item.id) ?? []).filter((r) => wanted.includes(r.name));
      for (const r of chosen) files.push({ name: `renditions/${r.name}/${lastSegment(r.path)}`, source: pathOnDisk(layout, r.path) });
      entries.push({ key: item.key, files });
      const line = {
        key: item.key, rowId: item.rowId, prompt: item.request.prompt, model: item.request.model, style: item.request.style ?? "", aspectRatio: item.request.aspectRatio,
        provider: item.provider, image: `images/${image}`, sha256: item.sha256, width: item.width, height: item.height,
        renditions: chosen.map((r) => `renditions/${r.name}/${lastSegment(r.path)}`).join(" "), reviewer: decision.reviewer, reviewedAt: new Date(decision.at).toISOString(), reviewNote: decision.note ?? "",
      };
      rows.push(`${CSV_COLUMNS.map((c) => csvCell(line[c])).join(",")}\r\n`);
    }
    const csv = rows.join("");
    try {
      if (options.zip !== undefined) await writeExportZip(entries, csv, resolve(options.zip));
      else await writeExportFolder(entries, csv, resolve(options.to!), { manifest: manifest.file });
    } catch (error) {
      if (error instanceof ExportError) throw new ExitError(EXIT.usage, `${error.message}\nNothing was written.`);
      throw error;
    }
    const count = entries.reduce((n, e) => n + e.files.length, 0);
    ctx.stdout.write(`exported ${approved.length} approved image(s) (${count} file(s) and export.csv) to ${resolve(options.zip ?? options.to!)}\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
