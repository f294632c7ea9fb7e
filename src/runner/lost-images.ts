// Every run checks that each done item's image is still on disk with the size recorded (one
// stat per item). One that is gone, or was changed, is delivered again from its job: a read of
// the job for a fresh URL and a download, never a new submit. A changed file is kept aside
// (superseded/) by that delivery, not overwritten.
import { statSync } from "node:fs";
import { pathOnDisk, type OutputLayout } from "../assets/image-stage.js";
import type { Store } from "../store/store.js";

export interface LostImage {
  id: number;
  key: string;
  /** "gone": no file; "changed": a file of another size (edited or truncated by someone). */
  problem: "gone" | "changed";
  detail: string;
}

/** The done items whose image is not on disk as recorded. Reads only. */
export function findLostImages(store: Store, layout: Pick<OutputLayout, "outDir">): LostImage[] {
  const lost: LostImage[] = [];
  store.forEachDoneImage(({ id, key, filePath, bytes }) => {
    if (filePath === null) {
      lost.push({ id, key, problem: "gone", detail: "no image recorded" });
      return;
    }
    const stat = statSync(pathOnDisk(layout, filePath), { throwIfNoEntry: false });
    if (!stat || !stat.isFile()) lost.push({ id, key, problem: "gone", detail: `${filePath} is not on disk` });
    else if (bytes !== null && stat.size !== bytes) lost.push({ id, key, problem: "changed", detail: `${filePath} is ${stat.size} bytes, not the ${bytes} delivered` });
  });
  return lost;
}

/** Puts each lost image's item back to `downloading` with no URL: the image stage reads its job again. */
export function redeliverLostImages(store: Store, lost: readonly LostImage[]): void {
  for (const image of lost) {
    const item = store.get(image.id);
    if (!item || item.state !== "done") continue;
    store.transition(item, "downloading", { resultUrl: null, nextAttemptAt: 0 }, `${image.detail}: delivering it again from its job (no new submit)`);
  }
  store.commitGroup();
}
