// Renditions are made once per image and remade only when their settings change: before a
// run, done items whose renditions are missing or were made with other settings get them.
import { existsSync } from "node:fs";
import type { OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import { ensureRenditions } from "./deliver-item.js";
import type { RunnerOptions } from "./options.js";

export async function refreshRenditions(input: { store: Store; layout: OutputLayout; options: Pick<RunnerOptions, "renditions" | "maxInputPixels">; logger: Logger }): Promise<number> {
  if (input.options.renditions.length === 0) return 0;
  let remade = 0;
  for (const item of input.store.inStates(["done"])) {
    if (!item.filePath || !existsSync(item.filePath)) continue;
    const before = new Map(input.store.renditionsOf(item.id).map((r) => [r.name, r.settingsHash]));
    await ensureRenditions({ item, imagePath: item.filePath, layout: input.layout, store: input.store, options: input.options, force: false });
    const after = input.store.renditionsOf(item.id);
    remade += after.filter((r) => before.get(r.name) !== r.settingsHash).length;
  }
  if (remade > 0) input.logger.info(`made ${remade} rendition(s) whose settings are new or changed`);
  return remade;
}
