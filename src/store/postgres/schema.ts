// The PostgreSQL store's own numbered migrations (schema_migrations records each), applied under
// an advisory lock so that workers starting at once take turns. Never edit a shipped one.
import type pg from "pg";
import { ITEM_STATES } from "../states.js";

const states = ITEM_STATES.map((s) => `'${s}'`).join(", ");

/** Any fixed number: the advisory lock that serialises migrations and manifest syncs. */
export const MIGRATION_LOCK = 7_241_001;
export const SYNC_LOCK = 7_241_002;
export const CLAIM_LOCK = 7_241_003;
/** With the schema's hash as its second key: one report at a time per run, other runs apart. */
export const REPORT_LOCK = 7_241_004;

export const PG_MIGRATIONS: readonly string[] = [
  // 1: the schema of SQLite's migrations 1–8 at once, times in ms since the epoch, plus the
  // workers of a shared run (runs.manifest_hash) and orphaned job ids.
  `
  CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT,
    exit_code INTEGER,
    stop_reason TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    provider TEXT NOT NULL,
    manifest_file TEXT NOT NULL,
    manifest_hash TEXT NOT NULL DEFAULT '',
    worker TEXT NOT NULL DEFAULT '',
    heartbeat_at BIGINT NOT NULL DEFAULT 0,
    items_done INTEGER NOT NULL DEFAULT 0,
    items_failed INTEGER NOT NULL DEFAULT 0,
    credits DOUBLE PRECISION NOT NULL DEFAULT 0
  );
  CREATE TABLE items (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    row_id TEXT NOT NULL,
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    request_json TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN (${states})),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    job_id TEXT,
    image_ref TEXT,
    submitted_at BIGINT,
    error_code TEXT,
    error_message TEXT,
    credits DOUBLE PRECISION,
    result_url TEXT,
    result_width INTEGER,
    result_height INTEGER,
    file_path TEXT,
    thumb_path TEXT,
    sha256 TEXT,
    width INTEGER,
    height INTEGER,
    format TEXT,
    bytes BIGINT,
    in_manifest SMALLINT NOT NULL DEFAULT 1 CHECK (in_manifest IN (0, 1)),
    superseded_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    completed_at BIGINT,
    owner TEXT,
    claim_epoch INTEGER NOT NULL DEFAULT 0,
    lease_until BIGINT,
    polls INTEGER NOT NULL DEFAULT 0,
    read_failures INTEGER NOT NULL DEFAULT 0,
    found_nothing_at BIGINT,
    qc_flags TEXT,
    qc_retries INTEGER NOT NULL DEFAULT 0,
    phash TEXT
  );
  CREATE UNIQUE INDEX items_live_key ON items(key) WHERE superseded_at IS NULL;
  CREATE INDEX items_queue ON items(state, next_attempt_at, id) WHERE superseded_at IS NULL;
  CREATE INDEX items_job ON items(job_id) WHERE job_id IS NOT NULL;
  CREATE INDEX items_image ON items(image_ref) WHERE image_ref IS NOT NULL;
  CREATE INDEX items_owner ON items(owner) WHERE owner IS NOT NULL;
  CREATE INDEX items_row ON items(row_id) WHERE superseded_at IS NULL;
  CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    item_id BIGINT NOT NULL REFERENCES items(id),
    run_id BIGINT REFERENCES runs(id),
    at BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    detail TEXT,
    error_code TEXT
  );
  CREATE INDEX events_item ON events(item_id);
  CREATE INDEX events_run ON events(run_id, to_state);
  CREATE TABLE renditions (
    item_id BIGINT NOT NULL REFERENCES items(id),
    name TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    made_at BIGINT NOT NULL,
    PRIMARY KEY (item_id, name)
  );
  CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE manifest_order (key TEXT PRIMARY KEY, pos INTEGER NOT NULL);
  CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    item_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'undecided')),
    note TEXT,
    reviewer TEXT NOT NULL,
    at BIGINT NOT NULL
  );
  CREATE INDEX decisions_image ON decisions(item_key, sha256, id);
  CREATE TABLE key_limits (
    key_hash TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    refilled_at BIGINT NOT NULL,
    paused_until BIGINT NOT NULL DEFAULT 0
  );
  CREATE TABLE orphan_jobs (
    id BIGSERIAL PRIMARY KEY,
    item_key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    at BIGINT NOT NULL
  );
  `,
  // 2: local reference images uploaded to a service (SQLite's migration 9).
  `
  CREATE TABLE uploads (
    sha256 TEXT NOT NULL,
    service TEXT NOT NULL,
    url TEXT NOT NULL,
    upload_key TEXT,
    content_type TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, service)
  );
  `,
  // 3: a claim under the shared --concurrency in one round trip instead of five. The statements
  // of a volatile function each see what the claim lock's previous holder committed.
  `
  CREATE FUNCTION imgbatch_claim_queued(p_worker TEXT, p_now BIGINT, p_clock BIGINT, p_limit INTEGER, p_cap INTEGER, p_lease BIGINT)
  RETURNS SETOF items LANGUAGE plpgsql VOLATILE AS $fn$
  DECLARE
    t BIGINT;
    free INTEGER;
  BEGIN
    PERFORM pg_advisory_xact_lock(${CLAIM_LOCK});
    t := COALESCE(p_clock, (extract(epoch from clock_timestamp()) * 1000)::bigint);
    SELECT LEAST(p_limit, p_cap - COUNT(*))::int INTO free FROM items
      WHERE superseded_at IS NULL AND owner IS NOT NULL AND lease_until >= t AND state IN ('queued', 'submitting', 'running');
    IF free <= 0 THEN
      RETURN;
    END IF;
    RETURN QUERY UPDATE items SET owner = p_worker, claim_epoch = claim_epoch + 1, lease_until = t + p_lease
      WHERE id IN (
        SELECT id FROM items WHERE superseded_at IS NULL AND in_manifest = 1 AND state = 'queued' AND next_attempt_at <= p_now AND (owner IS NULL OR lease_until < t)
        ORDER BY next_attempt_at, id LIMIT free FOR UPDATE SKIP LOCKED
      ) RETURNING *;
  END
  $fn$;
  `,
  // 4: tickets for the report's turns: a worker takes one as it ends (its writes committed), a
  // report records the newest ticket before it read anything.
  `
  CREATE SEQUENCE report_tickets;
  `,
];

/** Applies the migrations not yet applied; refuses a database of a newer imgbatch. */
export async function migrate(client: pg.PoolClient): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    const { rows } = await client.query<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_migrations");
    const current = rows[0]?.v ?? 0;
    if (current > PG_MIGRATIONS.length) throw new Error(`its schema (${current}) is newer than this imgbatch's (${PG_MIGRATIONS.length}); upgrade imgbatch`);
    for (let version = current + 1; version <= PG_MIGRATIONS.length; version++) {
      await client.query(PG_MIGRATIONS[version - 1]!);
      await client.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", [version, Date.now()]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
