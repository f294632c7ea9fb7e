import { existsSync } from "node:fs";
import { join } from "node:path";
import type { PlannedItem } from "../manifest/types.js";
import { AtomicFileWriter } from "../assets/atomic-file-writer.js";
import { outputLayout } from "../assets/image-stage.js";
import { listSuperseded } from "../assets/superseded.js";
import type { Store } from "../store/port.js";
import { ContactSheetWriter, SheetTally, withoutGenerationTime } from "./contact-sheet.js";
import { resultLineOf, writeResults } from "./results.js";

/**
 * results.csv, results.jsonl and the contact sheet (index.html) for the output folder.
 * With the manifest's items at hand the sheet follows manifest order, not database order.
 * Two passes over the store's pages (the results and the sheet's counts, then the cards in
 * sheet order): memory stays the same for 100 items or 20,000.
 */
export async function writeReport(store: Store, name: string, outDir: string, order: SheetOrder, now: () => number = Date.now): Promise<void> {
  const tally = new SheetTally();
  const decisions = await store.currentDecisions();
  await writeResults(store, outDir, (line) => tally.add(line), decisions);
  if (order !== "as-synced") await store.keepManifestOrder(order);
  const sheet = new AtomicFileWriter(`${outDir}/index.html`, { comparableHead: withoutGenerationTime });
  try {
    const page = new ContactSheetWriter((text) => sheet.write(text), { name, generatedAt: new Date(now()), tally, creditsSpent: await store.totalCredits(), superseded: listSuperseded(outputLayout(outDir)) });
    for await (const at of store.liveItemsInSheetOrder()) page.line({ ...at, line: resultLineOf(at, outDir, decisions) });
    page.end();
  } catch (error) {
    await sheet.abort();
    throw error;
  }
  await sheet.commitIfChanged();
}

/** Whether the report's files are all in `outDir` (a report written there may be kept). */
export function reportFilesPresent(outDir: string): boolean {
  return ["results.csv", "results.jsonl", "index.html"].every((file) => existsSync(join(outDir, file)));
}

/** The contact sheet's order: the manifest's item keys in order, or the order the store's manifest sync kept for this connection. */
export type SheetOrder = Iterable<string> | "as-synced";

export function* keysOf(items: readonly Pick<PlannedItem, "key">[]): Generator<string> {
  for (const item of items) yield item.key;
}
