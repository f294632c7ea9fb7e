// Every run checks that each done item's image is still on disk with the size recorded (one
// stat per item, in the background while the run submits). One that is gone, or was changed,
// is delivered again from its job: a read of the job for a fresh URL and a download, never a
// new submit. A changed file is kept aside (superseded/) by that delivery, not overwritten.
import { stat } from "node:fs/promises";
import { pathOnDisk, type OutputLayout } from "../assets/image-stage.js";
import type { ProviderName } from "../providers/provider.js";
import type { Store } from "../store/port.js";

export interface LostImage {
  id: number;
  key: string;
  /** "gone": no file; "changed": a file of another size (edited or truncated by someone). */
  problem: "gone" | "changed";
  detail: string;
}

/** Stats in flight at once: enough to keep libuv's threads busy, few enough to leave the run its loop. */
const STATS_AT_ONCE = 32;
/** Rows read per query: each page is a few milliseconds, so the run's first submits never wait on the check. */
const PAGE_ROWS = 2_000;

/**
 * The done items of the manifest made by `provider` whose image is not on disk as recorded.
 * Reads only. Items another provider made are left to `verify`: this run could not fetch them.
 */
export async function findLostImages(store: Store, layout: Pick<OutputLayout, "outDir">, provider: ProviderName, signal?: AbortSignal): Promise<LostImage[]> {
  const lost: LostImage[] = [];
  const check = async ([id, key, filePath, bytes]: [number, string, string | null, number | null]): Promise<void> => {
    if (filePath === null) {
      lost.push({ id, key, problem: "gone", detail: "no image recorded" });
      return;
    }
    const found = await stat(pathOnDisk(layout, filePath)).catch(() => null);
    if (!found || !found.isFile()) lost.push({ id, key, problem: "gone", detail: `${filePath} is not on disk` });
    else if (bytes !== null && found.size !== bytes) lost.push({ id, key, problem: "changed", detail: `${filePath} is ${found.size} bytes, not the ${bytes} delivered` });
  };
  for (let afterId = 0; !signal?.aborted; ) {
    // A turn of the event loop first: the run's own work (the first submits) goes before each page.
    await new Promise((resolve) => setImmediate(resolve));
    const page = await store.doneImagesAfter(provider, afterId, PAGE_ROWS);
    if (page.length === 0) break;
    afterId = page[page.length - 1]![0];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < page.length && !signal?.aborted) await check(page[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(STATS_AT_ONCE, page.length) }, worker));
  }
  return lost.sort((a, b) => a.id - b.id);
}

/** One line for the run's log about what the check found. */
export function describeLostImages(lost: readonly LostImage[]): string {
  const gone = lost.filter((l) => l.problem === "gone").length;
  const what = gone === lost.length ? "no image on disk" : gone ? "a missing or changed image" : "a changed image";
  return `${lost.length} done item(s) have ${what} (e.g. ${lost[0]!.key}: ${lost[0]!.detail}): delivering them again from their jobs, with no new submit`;
}
