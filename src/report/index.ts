import type { Manifest, PlannedItem } from "../manifest/types.js";
import type { Store } from "../store/store.js";
import { orderByManifest, writeContactSheet } from "./contact-sheet.js";
import { writeResults } from "./results.js";

/**
 * results.csv, results.jsonl and the contact sheet (index.html) for the output folder.
 * With the manifest's items at hand the sheet follows manifest order, not database order.
 */
export async function writeReport(
  store: Store,
  manifest: Pick<Manifest, "name"> & { items?: readonly Pick<PlannedItem, "key">[] },
  outDir: string,
  now: () => number = Date.now,
): Promise<void> {
  const lines = await writeResults(store, outDir);
  const ordered = manifest.items ? orderByManifest(lines, manifest.items.map((i) => i.key)) : lines;
  await writeContactSheet(outDir, { name: manifest.name, generatedAt: new Date(now()), lines: ordered, creditsSpent: store.totalCredits() });
}
