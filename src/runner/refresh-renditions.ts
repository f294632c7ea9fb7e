// Renditions are made once per image and remade only when their settings change: before a
// run, done items whose renditions are missing or were made with other settings get them.
import { existsSync } from "node:fs";
import { pathOnDisk, renditionSettingsHash, type OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/port.js";
import { ensureRenditions } from "./deliver-item.js";
import type { RunnerOptions } from "./options.js";

export async function refreshRenditions(input: { store: Store; layout: OutputLayout; options: Pick<RunnerOptions, "renditions" | "maxInputPixels">; logger: Logger }): Promise<number> {
  if (input.options.renditions.length === 0) return 0;
  let remade = 0;
  const wanted = new Map(input.options.renditions.map((spec) => [spec.name, renditionSettingsHash(spec)]));
  const made = await input.store.renditionsByItem();
  for (const item of await input.store.inStates(["done"])) {
    const current = made.get(item.id) ?? [];
    // The common case on a resumed run: everything already made with today's settings.
    if (current.length === wanted.size && current.every((r) => wanted.get(r.name) === r.settingsHash)) continue;
    const image = item.filePath === null ? null : pathOnDisk(input.layout, item.filePath);
    if (!image || !existsSync(image)) continue;
    const before = new Map(current.map((r) => [r.name, r.settingsHash]));
    await ensureRenditions({ item, image, layout: input.layout, store: input.store, options: input.options, force: false });
    const after = await input.store.renditionsOf(item.id);
    remade += after.filter((r) => before.get(r.name) !== r.settingsHash).length;
  }
  if (remade > 0) input.logger.info(`made ${remade} rendition(s) whose settings are new or changed`);
  return remade;
}
