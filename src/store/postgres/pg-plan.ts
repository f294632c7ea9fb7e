// A plan's reads and the reference uploads in PostgreSQL (the port's `planDigests`, `jobTimings`,
// `uploadOf`, `recordUpload`; SQLite's are in sqlite/plan-reads.ts and sqlite/uploads.ts).
import type { ProviderName } from "../../providers/provider.js";
import type { JobTiming, PlanDigests } from "../port.js";
import type { ItemState } from "../states.js";
import type { UploadRecord } from "../types.js";
import type { Connection } from "./connection.js";

export async function planDigestsPg(connection: Connection, keys: readonly string[]): Promise<PlanDigests> {
  const live = await connection.query<{ id: number; key: string; request_hash: string; in_manifest: number; state: ItemState; provider: ProviderName; live_job: string | null }>(
    `SELECT id, key, request_hash, in_manifest, state, provider,
       CASE WHEN job_id IS NOT NULL AND (credits IS NOT NULL OR error_code IN ('JOB_TIMEOUT', 'POLL_FAILED')) THEN job_id END AS live_job
     FROM items WHERE superseded_at IS NULL AND key = ANY($1::text[])`,
    [keys],
  );
  const earlier = await connection.query<{ key: string; request_hash: string }>(`SELECT key, request_hash FROM items WHERE superseded_at IS NOT NULL AND state = 'done' AND key = ANY($1::text[]) ORDER BY id`, [keys]);
  return {
    live: live.map((row) => ({ id: row.id, key: row.key, requestHash: row.request_hash, inManifest: row.in_manifest === 1, provider: row.provider, state: row.state, jobId: row.live_job })),
    doneBefore: earlier.map((row) => [row.key, row.request_hash]),
  };
}

export async function jobTimingsPg(connection: Connection, limit: number): Promise<JobTiming[]> {
  const rows = await connection.query<{ provider: ProviderName; model: string; submitted_at: number; completed_at: number; seen_at: number | null }>(
    `SELECT provider, request_json::json ->> 'model' AS model, submitted_at, completed_at,
       (SELECT MIN(e.at) FROM events e WHERE e.item_id = i.id AND e.to_state = 'downloading' AND e.at >= i.submitted_at) AS seen_at
     FROM items i WHERE state = 'done' AND submitted_at IS NOT NULL AND completed_at IS NOT NULL ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return rows
    .filter((r) => r.seen_at !== null && r.seen_at >= r.submitted_at && r.completed_at >= r.seen_at)
    .map((r) => ({ provider: r.provider, model: r.model, serviceMs: r.seen_at! - r.submitted_at, imageMs: r.completed_at - r.seen_at! }));
}

export async function uploadOfPg(connection: Connection, sha256: string, service: string): Promise<UploadRecord | undefined> {
  const [row] = await connection.query(`SELECT * FROM uploads WHERE sha256 = $1 AND service = $2`, [sha256, service]);
  if (!row) return undefined;
  return { sha256: row.sha256 as string, service: row.service as string, url: row.url as string, key: (row.upload_key as string | null) ?? null, contentType: row.content_type as string, bytes: row.bytes as number, uploadedAt: row.uploaded_at as number };
}

export async function recordUploadPg(connection: Connection, u: UploadRecord): Promise<void> {
  await connection.query(
    `INSERT INTO uploads (sha256, service, url, upload_key, content_type, bytes, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (sha256, service) DO UPDATE SET url = excluded.url, upload_key = excluded.upload_key, content_type = excluded.content_type, bytes = excluded.bytes, uploaded_at = excluded.uploaded_at`,
    [u.sha256, u.service, u.url, u.key, u.contentType, u.bytes, u.uploadedAt],
  );
}
