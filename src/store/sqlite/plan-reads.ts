// The reads `imgbatch plan` makes, on a database it opens read-only: the records of a chunk of
// the manifest's keys as the sync would see them, and how long this database's jobs took.
import type { ProviderName } from "../../providers/provider.js";
import type { JobTiming, PlanDigests } from "../port.js";
import type { ItemState } from "../states.js";
import type { Statement } from "./reads.js";

/** A chunk of keys goes in as one JSON array (as the sync sends them). */
export function planDigests(statement: Statement, keys: readonly string[]): PlanDigests {
  const json = JSON.stringify(keys);
  const live = statement(
    `SELECT id, key, request_hash, in_manifest, state, provider,
       CASE WHEN job_id IS NOT NULL AND (credits IS NOT NULL OR error_code IN ('JOB_TIMEOUT', 'POLL_FAILED')) THEN job_id END AS live_job
     FROM items WHERE superseded_at IS NULL AND key IN (SELECT value FROM json_each(?))`,
  ).all(json) as { id: number; key: string; request_hash: string; in_manifest: number; state: ItemState; provider: ProviderName; live_job: string | null }[];
  const doneBefore = statement(`SELECT key, request_hash FROM items WHERE superseded_at IS NOT NULL AND state = 'done' AND key IN (SELECT value FROM json_each(?))`).raw().all(json) as [string, string][];
  return {
    live: live.map((row) => ({ id: row.id, key: row.key, requestHash: row.request_hash, inManifest: row.in_manifest === 1, provider: row.provider, state: row.state, jobId: row.live_job })),
    doneBefore,
  };
}

/**
 * Done items' times, newest first: submit → the read that saw the job complete (the slot's
 * time at the service, polling included), and that → done (the image stage, the sync included).
 */
export function jobTimings(statement: Statement, limit: number): JobTiming[] {
  const rows = statement(
    `SELECT provider, json_extract(request_json, '$.model') AS model, submitted_at, completed_at,
       (SELECT MIN(e.at) FROM events e WHERE e.item_id = i.id AND e.to_state = 'downloading' AND e.at >= i.submitted_at) AS seen_at
     FROM items i WHERE state = 'done' AND submitted_at IS NOT NULL AND completed_at IS NOT NULL ORDER BY id DESC LIMIT ?`,
  ).all(limit) as { provider: ProviderName; model: string; submitted_at: number; completed_at: number; seen_at: number | null }[];
  return rows
    .filter((r) => r.seen_at !== null && r.seen_at >= r.submitted_at && r.completed_at >= r.seen_at)
    .map((r) => ({ provider: r.provider, model: r.model, serviceMs: r.seen_at! - r.submitted_at, imageMs: r.completed_at - r.seen_at! }));
}
