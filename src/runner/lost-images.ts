// Every run checks that each done item's image is still on disk with the size recorded (one
// stat per item, in the background while the run submits). One that is gone, or was changed,
// is delivered again from its job: a read of the job for a fresh URL and a download, never a
// new submit. A changed file is kept aside (superseded/) by that delivery, not overwritten.
import { stat } from "node:fs/promises";
import { pathOnDisk, type OutputLayout } from "../assets/image-stage.js";
import type { ProviderName } from "../providers/provider.js";
import type { Store } from "../store/store.js";

export interface LostImage {
  id: number;
  key: string;
  /** "gone": no file; "changed": a file of another size (edited or truncated by someone). */
  problem: "gone" | "changed";
  detail: string;
}

/** Stats in flight at once: enough to keep libuv's threads busy, few enough to leave the run its loop. */
const STATS_AT_ONCE = 32;

/**
 * The done items of the manifest made by `provider` whose image is not on disk as recorded.
 * Reads only. Items another provider made are left to `verify`: this run could not fetch them.
 */
export async function findLostImages(store: Store, layout: Pick<OutputLayout, "outDir">, provider: ProviderName, signal?: AbortSignal): Promise<LostImage[]> {
  const images = store.doneImages(provider);
  const lost: LostImage[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < images.length && !signal?.aborted) {
      const [id, key, filePath, bytes] = images[next++]!;
      if (filePath === null) {
        lost.push({ id, key, problem: "gone", detail: "no image recorded" });
        continue;
      }
      const found = await stat(pathOnDisk(layout, filePath)).catch(() => null);
      if (!found || !found.isFile()) lost.push({ id, key, problem: "gone", detail: `${filePath} is not on disk` });
      else if (bytes !== null && found.size !== bytes) lost.push({ id, key, problem: "changed", detail: `${filePath} is ${found.size} bytes, not the ${bytes} delivered` });
    }
  };
  await Promise.all(Array.from({ length: Math.min(STATS_AT_ONCE, images.length) }, worker));
  return lost.sort((a, b) => a.id - b.id);
}

/** One line for the run's log about what the check found. */
export function describeLostImages(lost: readonly LostImage[]): string {
  const gone = lost.filter((l) => l.problem === "gone").length;
  const what = gone === lost.length ? "no image on disk" : gone ? "a missing or changed image" : "a changed image";
  return `${lost.length} done item(s) have ${what} (e.g. ${lost[0]!.key}: ${lost[0]!.detail}): delivering them again from their jobs, with no new submit`;
}
