// `imgbatch validate <manifest>`: every problem at once, nothing submitted, nothing created.
import { EXIT } from "../errors.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";

export async function validateCommand(manifestPath: string, ctx: CommandContext, options: { maxItems?: number } = {}): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx, { maxItems: options.maxItems });
  const rows = new Set(manifest.items.map((i) => i.rowId)).size;
  const byModel = new Map<string, number>();
  for (const item of manifest.items) byModel.set(item.request.model, (byModel.get(item.request.model) ?? 0) + 1);
  const models = [...byModel].map(([m, n]) => `${n} × ${m}`).join(", ");
  ctx.stdout.write(`${manifestPath}: valid — ${rows} row(s), ${manifest.items.length} item(s) (${models})\n`);
  return EXIT.ok;
}
