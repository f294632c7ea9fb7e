import type { Manifest } from "../manifest/types.js";
import type { Store } from "../store/store.js";
import { writeResults } from "./results.js";

/** results.csv, results.jsonl (and the contact sheet) for the output folder. */
export async function writeReport(store: Store, manifest: Pick<Manifest, "name">, outDir: string): Promise<void> {
  await writeResults(store, outDir);
  void manifest;
}
