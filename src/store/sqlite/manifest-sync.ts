// Bringing the stored items in line with the manifest, a chunk of items at a time: the pure
// planSync decides for each chunk against the stored records of the same keys, so neither
// the whole plan nor every stored record is ever in memory at once.
import type Database from "better-sqlite3";
import type { ProviderName } from "../../providers/provider.js";
import { redactSecrets } from "../../secrets.js";
import type { ItemState } from "../states.js";
import { manifestOrder } from "./report-cursors.js";
import { PaidReplacementCheck, planSync, type HashWith, type PlannedWithHash, type StoredItemDigest, type SyncSummary } from "../sync.js";

/** Small enough that a chunk's records are soon garbage; large enough that SQLite works in bulk. */
const CHUNK_ITEMS = 500;

const LIVE = "superseded_at IS NULL";

/**
 * One transaction for the whole manifest, however many chunks: a sync is all or nothing, so
 * a crash half-way never leaves half a manifest planned. The manifest's item order is kept
 * in a TEMP table (manifest_order) for the contact sheet and for finding removed keys.
 */
export function syncManifestInChunks(
  db: Database.Database,
  planned: Iterable<PlannedWithHash>,
  provider: ProviderName,
  at: { now: number; runId: number | null },
  rules: { hashWith: HashWith; allowProviderSwitch: boolean; abandonInFlight: boolean },
): SyncSummary {
  // A chunk's keys go in as one JSON array: one statement per chunk, not one per item (a
  // resume of 100,000 items syncs in about the time one scan of every record took).
  const order = manifestOrder(db);
  // Prepared once per sync: a statement prepared per item keeps native memory until V8
  // collects its wrapper (tens of MB at 20,000 items, measured).
  const storedByKeys = db.prepare(`SELECT id, key, request_hash, in_manifest, state, provider,
       CASE WHEN job_id IS NOT NULL AND (credits IS NOT NULL OR error_code IN ('JOB_TIMEOUT', 'POLL_FAILED')) THEN job_id END AS live_job FROM items WHERE ${LIVE} AND key IN (SELECT value FROM json_each(?))`);
  const supersede = db.prepare(`UPDATE items SET superseded_at = ?, updated_at = ? WHERE id = ?`);
  const insert = db.prepare(
    `INSERT INTO items (key, row_id, source, provider, request_json, request_hash, state, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
  );
  const setPresence = db.prepare(`UPDATE items SET in_manifest = ?, updated_at = ? WHERE id = ?`);
  const appendEvent = db.prepare(`INSERT INTO events (item_id, run_id, at, from_state, to_state, detail, error_code) VALUES (?, ?, ?, ?, ?, ?, NULL)`);
  const removedIds = db.prepare(`SELECT id FROM items WHERE ${LIVE} AND in_manifest = 1 AND key NOT IN (SELECT key FROM temp.manifest_order) ORDER BY id`).pluck();
  const { now, runId } = at;
  const paidReplacements = new PaidReplacementCheck({ providerSwitch: rules.allowProviderSwitch, abandonInFlight: rules.abandonInFlight });
  const saveProvider = db.prepare(`INSERT INTO settings (name, value) VALUES ('provider', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`);
  const summary: SyncSummary = { inserted: 0, supersede: [], removed: 0, returned: 0, unchanged: 0, revived: [] };
  const doneBefore = db.prepare(`SELECT id, sha256 FROM items WHERE key = ? AND request_hash = ? AND superseded_at IS NOT NULL AND state = 'done' ORDER BY id DESC LIMIT 1`);
  const revive = db.prepare(`UPDATE items SET superseded_at = NULL, in_manifest = 1, updated_at = ? WHERE id = ?`);

  const applyChunk = (chunk: PlannedWithHash[]): void => {
    const chunkKeys = chunk.map(({ item }) => item.key);
    order.append(chunkKeys);
    const keys = JSON.stringify(chunkKeys);
    const stored: StoredItemDigest[] = [];
    for (const row of storedByKeys.all(keys) as { id: number; key: string; request_hash: string; in_manifest: number; state: ItemState; provider: ProviderName; live_job: string | null }[]) {
      stored.push({ id: row.id, key: row.key, requestHash: row.request_hash, inManifest: row.in_manifest === 1, provider: row.provider, state: row.state, jobId: row.live_job });
    }
    // Every stored record here has a key of the chunk, so the plan marks none removed.
    const plan = planSync(chunk, stored, rules.hashWith);
    for (const s of plan.supersede) {
      paidReplacements.check(s);
      supersede.run(now, now, s.id);
      const why = s.reason === "provider" ? `made by ${s.oldProvider}, now to be made by ${provider}` : `request changed (${s.oldHash.slice(0, 12)} → ${s.newHash.slice(0, 12)})`;
      appendEvent.run(s.id, runId, now, s.oldState, s.oldState, redactSecrets(`superseded: ${why}`));
      summary.supersede.push(s);
    }
    const revivedKeys = new Set<string>();
    for (const s of plan.supersede) {
      // The request asked for before: its paid image is brought back, not made (paid) again.
      const earlier = doneBefore.get(s.key, s.newHash) as { id: number; sha256: string | null } | undefined;
      if (!earlier) continue;
      revive.run(now, earlier.id);
      appendEvent.run(earlier.id, runId, now, "done", "done", "brought back: the manifest asks for this request again");
      summary.revived.push({ id: earlier.id, key: s.key, sha256: earlier.sha256 });
      revivedKeys.add(s.key);
    }
    for (const { item, requestHash } of plan.insert) {
      if (revivedKeys.has(item.key)) continue;
      const info = insert.run(item.key, item.rowId, item.source, provider, JSON.stringify(item.request), requestHash, now, now);
      appendEvent.run(Number(info.lastInsertRowid), runId, now, null, "queued", "planned from manifest");
    }
    for (const id of plan.markPresent) setPresence.run(1, now, id);
    summary.inserted += plan.insert.length - revivedKeys.size;
    summary.returned += plan.markPresent.length;
    summary.unchanged += plan.unchanged;
  };

  return db.transaction(() => {
    order.clear();
    let chunk: PlannedWithHash[] = [];
    for (const entry of planned) {
      chunk.push(entry);
      if (chunk.length >= CHUNK_ITEMS) {
        applyChunk(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) applyChunk(chunk);
    for (const id of removedIds.all() as number[]) {
      setPresence.run(0, now, id);
      summary.removed++;
    }
    // Thrown inside the transaction: a refused sync writes nothing.
    paidReplacements.throwIfAny();
    saveProvider.run(provider);
    return summary;
  })();
}
