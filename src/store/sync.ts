// Planning what a manifest does to the stored items: pure, tested with plain tables.
import type { PlannedItem } from "../manifest/types.js";

export interface StoredItemDigest {
  id: number;
  key: string;
  requestHash: string;
  inManifest: boolean;
}

export interface PlannedWithHash {
  item: PlannedItem;
  requestHash: string;
}

export interface SyncPlan {
  /** New keys, and keys whose request changed (their old record is superseded). */
  insert: PlannedWithHash[];
  /** Live records whose request changed: kept for history, no longer worked on. */
  supersede: { id: number; key: string; oldHash: string; newHash: string }[];
  /** Live records whose key left the manifest: left alone, shown by status. */
  markRemoved: number[];
  /** Records whose key came back into the manifest. */
  markPresent: number[];
  unchanged: number;
}

export function planSync(planned: readonly PlannedWithHash[], stored: readonly StoredItemDigest[]): SyncPlan {
  const byKey = new Map(stored.map((s) => [s.key, s]));
  const plan: SyncPlan = { insert: [], supersede: [], markRemoved: [], markPresent: [], unchanged: 0 };
  const plannedKeys = new Set<string>();
  for (const entry of planned) {
    plannedKeys.add(entry.item.key);
    const existing = byKey.get(entry.item.key);
    if (!existing) {
      plan.insert.push(entry);
    } else if (existing.requestHash !== entry.requestHash) {
      plan.supersede.push({ id: existing.id, key: existing.key, oldHash: existing.requestHash, newHash: entry.requestHash });
      plan.insert.push(entry);
    } else {
      if (!existing.inManifest) plan.markPresent.push(existing.id);
      plan.unchanged++;
    }
  }
  for (const s of stored) {
    if (!plannedKeys.has(s.key) && s.inManifest) plan.markRemoved.push(s.id);
  }
  return plan;
}
