// `imgbatch verify <manifest>`: every delivered file against its sidecar and the database.
// Reads only; lists each difference, exits 0 when there is none and 2 when there is one.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { outputLayout, pathOnDisk, type OutputLayout } from "../assets/image-stage.js";
import { EXIT } from "../errors.js";
import { parseSidecar } from "../runner/adopt-sidecars.js";
import type { Store } from "../store/port.js";
import type { ItemRecord } from "../store/types.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit } from "./open-store.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";

export interface FileProblem {
  key: string;
  problem: string;
}

/** What differs for one done item: its image, sidecar, thumbnail and renditions. */
export function checkDeliveredItem(item: ItemRecord, renditions: readonly { name: string; path: string }[], layout: OutputLayout): FileProblem[] {
  const problems: string[] = [];
  if (item.filePath === null) {
    problems.push("the database records no image");
  } else {
    const image = pathOnDisk(layout, item.filePath);
    if (!existsSync(image)) problems.push(`image ${item.filePath} is missing`);
    else {
      const bytes = readFileSync(image);
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      if (sha256 !== item.sha256) problems.push(`image ${item.filePath} has sha256 ${sha256.slice(0, 12)}…, the database ${String(item.sha256).slice(0, 12)}… (${bytes.length} bytes, ${item.bytes} delivered)`);
    }
  }
  const sidecarPath = join(layout.imagesDir, `${item.key}.json`);
  if (!existsSync(sidecarPath)) problems.push(`sidecar images/${item.key}.json is missing`);
  else {
    const sidecar = parseSidecar(readFileSync(sidecarPath, "utf8"));
    if (!sidecar) problems.push(`sidecar images/${item.key}.json cannot be read`);
    else {
      if (sidecar.sha256 !== item.sha256) problems.push(`sidecar names sha256 ${sidecar.sha256.slice(0, 12)}…, the database ${String(item.sha256).slice(0, 12)}…`);
      if ((sidecar.jobId ?? null) !== (item.jobId ?? null)) problems.push(`sidecar names job ${sidecar.jobId ?? "none"}, the database ${item.jobId ?? "none"}`);
      if (sidecar.provider !== item.provider) problems.push(`sidecar names provider ${sidecar.provider}, the database ${item.provider}`);
    }
  }
  if (item.thumbPath !== null && !existsSync(pathOnDisk(layout, item.thumbPath))) problems.push(`thumbnail ${item.thumbPath} is missing`);
  for (const r of renditions) if (!existsSync(pathOnDisk(layout, r.path))) problems.push(`rendition ${r.name} (${r.path}) is missing`);
  return problems.map((problem) => ({ key: item.key, problem }));
}

export async function verifyDelivered(store: Store, layout: OutputLayout): Promise<{ checked: number; problems: FileProblem[] }> {
  const problems: FileProblem[] = [];
  const done = await store.inStates(["done"]);
  const renditions = await store.renditionsByItem();
  for (const item of done) problems.push(...checkDeliveredItem(item, renditions.get(item.id) ?? [], layout));
  for (const item of await store.inStates(["missing"])) problems.push({ key: item.key, problem: `missing: ${item.errorMessage ?? "its image is gone"} (imgbatch retry --missing pays for it again)` });
  return { checked: done.length, problems };
}

export async function verifyCommand(manifestPath: string, options: { db?: string; out?: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: true });
  try {
    const { checked, problems } = await verifyDelivered(store, outputLayout(paths.outDir));
    if (options.json) ctx.stdout.write(`${JSON.stringify({ checked, problems }, null, 2)}\n`);
    else {
      const keys = new Set(problems.map((p) => p.key));
      const lines = problems.map((p) => `  ${p.key}: ${p.problem}`);
      lines.unshift(`${manifest.name}: checked ${checked} delivered image(s) in ${paths.outDir}: ${problems.length === 0 ? "every file matches its sidecar and the database" : `${keys.size} item(s) differ`}`);
      if (problems.length) lines.push(`\`imgbatch run ${shellWord(manifestPath)}\` delivers missing or changed images again from their jobs (changed files are kept aside in superseded/).`);
      ctx.stdout.write(`${lines.join("\n")}\n`);
    }
    return problems.length === 0 ? EXIT.ok : EXIT.someFailed;
  } finally {
    await store.close();
  }
}
