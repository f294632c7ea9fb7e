// The manifest sync in PostgreSQL: the same pure planSync, a chunk of items at a time, in one
// transaction under an advisory lock (workers starting at once sync one after the other, the
// second finding everything unchanged). The manifest's order is kept in manifest_order.
import type pg from "pg";
import type { ProviderName } from "../../providers/provider.js";
import { redactSecrets } from "../../secrets.js";
import type { ItemState } from "../states.js";
import { PaidReplacementCheck, planSync, type HashWith, type PlannedWithHash, type StoredItemDigest, type SyncSummary } from "../sync.js";
import type { Connection } from "./connection.js";
import { SYNC_LOCK } from "./schema.js";

const CHUNK_ITEMS = 500;

export async function syncManifestPg(
  connection: Connection,
  planned: Iterable<PlannedWithHash>,
  provider: ProviderName,
  at: { now: number; runId: number | null },
  rules: { hashWith: HashWith; allowProviderSwitch: boolean; abandonInFlight: boolean },
): Promise<SyncSummary> {
  const { now, runId } = at;
  return connection.transaction(async (client) => {
    const q = <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => connection.query<T>(sql, params, client);
    await q("SELECT pg_advisory_xact_lock($1)", [SYNC_LOCK]);
    await q("DELETE FROM manifest_order");
    const paidReplacements = new PaidReplacementCheck({ providerSwitch: rules.allowProviderSwitch, abandonInFlight: rules.abandonInFlight });
    const summary: SyncSummary = { inserted: 0, supersede: [], removed: 0, returned: 0, unchanged: 0, revived: [] };
    const event = (itemId: number, from: ItemState | null, to: ItemState | null, detail: string) =>
      q("INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5, $6)", [itemId, runId, now, from, to, redactSecrets(detail)]);
    let position = 0;
    const applyChunk = async (chunk: PlannedWithHash[]): Promise<void> => {
      const keys = chunk.map(({ item }) => item.key);
      await q("INSERT INTO manifest_order (key, pos) SELECT key, $1 + ord - 1 FROM unnest($2::text[]) WITH ORDINALITY AS k(key, ord) ON CONFLICT (key) DO NOTHING", [position, keys]);
      position += keys.length;
      const rows = await q<{ id: number; key: string; request_hash: string; in_manifest: number; state: ItemState; provider: ProviderName; live_job: string | null }>(
        `SELECT id, key, request_hash, in_manifest, state, provider,
           CASE WHEN job_id IS NOT NULL AND (credits IS NOT NULL OR error_code IN ('JOB_TIMEOUT', 'POLL_FAILED')) THEN job_id END AS live_job
         FROM items WHERE superseded_at IS NULL AND key = ANY($1::text[])`,
        [keys],
      );
      const stored: StoredItemDigest[] = rows.map((r) => ({ id: r.id, key: r.key, requestHash: r.request_hash, inManifest: r.in_manifest === 1, provider: r.provider, state: r.state, jobId: r.live_job }));
      const plan = planSync(chunk, stored, rules.hashWith);
      for (const s of plan.supersede) {
        paidReplacements.check(s);
        await q("UPDATE items SET superseded_at = $1, updated_at = $1, owner = NULL, lease_until = NULL WHERE id = $2", [now, s.id]);
        const why = s.reason === "provider" ? `made by ${s.oldProvider}, now to be made by ${provider}` : `request changed (${s.oldHash.slice(0, 12)} → ${s.newHash.slice(0, 12)})`;
        await event(s.id, s.oldState, s.oldState, `superseded: ${why}`);
        summary.supersede.push(s);
      }
      const revivedKeys = new Set<string>();
      for (const s of plan.supersede) {
        // The request asked for before: its paid image is brought back, not made (paid) again.
        const [earlier] = await q<{ id: number; sha256: string | null }>(
          "SELECT id, sha256 FROM items WHERE key = $1 AND request_hash = $2 AND superseded_at IS NOT NULL AND state = 'done' ORDER BY id DESC LIMIT 1",
          [s.key, s.newHash],
        );
        if (!earlier) continue;
        await q("UPDATE items SET superseded_at = NULL, in_manifest = 1, updated_at = $1 WHERE id = $2", [now, earlier.id]);
        await event(earlier.id, "done", "done", "brought back: the manifest asks for this request again");
        summary.revived.push({ id: earlier.id, key: s.key, sha256: earlier.sha256 });
        revivedKeys.add(s.key);
      }
      const fresh = plan.insert.filter(({ item }) => !revivedKeys.has(item.key));
      if (fresh.length > 0) {
        const inserted = await q<{ id: number }>(
          `INSERT INTO items (key, row_id, source, provider, request_json, request_hash, state, created_at, updated_at)
           SELECT k, r, s, $1, j, h, 'queued', $2, $2 FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t(k, r, s, j, h) RETURNING id`,
          [provider, now, fresh.map((p) => p.item.key), fresh.map((p) => p.item.rowId), fresh.map((p) => p.item.source), fresh.map((p) => JSON.stringify(p.item.request)), fresh.map((p) => p.requestHash)],
        );
        await q("INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) SELECT id, $1, $2, NULL, 'queued', 'planned from manifest' FROM unnest($3::bigint[]) AS t(id)", [runId, now, inserted.map((r) => r.id)]);
      }
      if (plan.markPresent.length) await q("UPDATE items SET in_manifest = 1, updated_at = $1 WHERE id = ANY($2::bigint[])", [now, plan.markPresent]);
      summary.inserted += fresh.length;
      summary.returned += plan.markPresent.length;
      summary.unchanged += plan.unchanged;
    };
    let chunk: PlannedWithHash[] = [];
    for (const entry of planned) {
      chunk.push(entry);
      if (chunk.length >= CHUNK_ITEMS) {
        await applyChunk(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) await applyChunk(chunk);
    const removed = await q<{ id: number }>(
      "UPDATE items SET in_manifest = 0, updated_at = $1 WHERE superseded_at IS NULL AND in_manifest = 1 AND key NOT IN (SELECT key FROM manifest_order) RETURNING id",
      [now],
    );
    summary.removed = removed.length;
    // Thrown inside the transaction: a refused sync writes nothing.
    paidReplacements.throwIfAny();
    await q("INSERT INTO settings (name, value) VALUES ('provider', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [provider]);
    return summary;
  });
}

/** Keeps `keys` as the manifest's order (the contact sheet's). */
export async function keepManifestOrderPg(connection: Connection, keys: Iterable<string>): Promise<void> {
  const all = [...keys];
  await connection.transaction(async (client: pg.PoolClient) => {
    await connection.query("DELETE FROM manifest_order", [], client);
    await connection.query("INSERT INTO manifest_order (key, pos) SELECT key, ord - 1 FROM unnest($1::text[]) WITH ORDINALITY AS k(key, ord) ON CONFLICT (key) DO NOTHING", [all], client);
  });
}
