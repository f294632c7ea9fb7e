// Numbered migrations; `user_version` records the last one applied. Never edit a shipped
// migration: add the next number.
import type Database from "better-sqlite3";
import { ITEM_STATES } from "./states.js";

const quoted = (states: readonly string[]): string => states.map((s) => `'${s}'`).join(", ");
/** The states as migration 1 shipped them: a shipped migration never changes. */
const stateList = quoted(["queued", "submitting", "running", "downloading", "done", "failed"]);

/** SQL, or a step that needs more than SQL (run in the same transaction). */
export type Migration = string | ((db: Database.Database) => void);

export const MIGRATIONS: readonly Migration[] = [
  // 1: runs, items, events, lock
  `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    -- null while running (or when the process died): 'done' | 'some-failed' | 'stopped' | 'fatal'
    outcome TEXT,
    exit_code INTEGER,
    stop_reason TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    provider TEXT NOT NULL,
    manifest_file TEXT NOT NULL,
    items_done INTEGER NOT NULL DEFAULT 0,
    items_failed INTEGER NOT NULL DEFAULT 0,
    credits REAL NOT NULL DEFAULT 0
  );
  CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    row_id TEXT NOT NULL,
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    request_json TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN (${stateList})),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    job_id TEXT,
    image_ref TEXT,
    submitted_at INTEGER,
    error_code TEXT,
    error_message TEXT,
    credits REAL,
    result_url TEXT,
    result_width INTEGER,
    result_height INTEGER,
    file_path TEXT,
    thumb_path TEXT,
    sha256 TEXT,
    width INTEGER,
    height INTEGER,
    format TEXT,
    bytes INTEGER,
    in_manifest INTEGER NOT NULL DEFAULT 1 CHECK (in_manifest IN (0, 1)),
    superseded_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER
  );
  -- One live record per key; superseded records stay for history.
  CREATE UNIQUE INDEX items_live_key ON items(key) WHERE superseded_at IS NULL;
  CREATE INDEX items_queue ON items(state, next_attempt_at) WHERE superseded_at IS NULL;
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    run_id INTEGER REFERENCES runs(id),
    at INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX events_item ON events(item_id);
  CREATE TABLE run_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );
  `,
  // 2: renditions made per item, with the settings they were made with
  `
  CREATE TABLE renditions (
    item_id INTEGER NOT NULL REFERENCES items(id),
    name TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    made_at INTEGER NOT NULL,
    PRIMARY KEY (item_id, name)
  );
  `,
  // 3: the error code of each move to 'failed', so a run's failure reasons stay readable after
  // its items are retried (the item row keeps only the latest). Runs' outcome may now also be
  // 'died' (set by the next run for a run whose process ended without closing it).
  `
  ALTER TABLE events ADD COLUMN error_code TEXT;
  CREATE INDEX events_run ON events(run_id, to_state);
  `,
  // 4: the queue read walks this index in order and stops at its LIMIT. Ordered by id alone,
  // it sorted every eligible row on each read: ~1 ms per slot refill at 5,000 queued (measured).
  `
  DROP INDEX items_queue;
  CREATE INDEX items_queue ON items(state, next_attempt_at, id) WHERE superseded_at IS NULL;
  `,
  // 5: a lost-submit search asks about each job and image it meets whether an item owns it.
  // It used to read every owned ref up front: 200,000 strings per search at 100,000 items.
  `
  CREATE INDEX items_job ON items(job_id) WHERE job_id IS NOT NULL;
  CREATE INDEX items_image ON items(image_ref) WHERE image_ref IS NOT NULL;
  `,
  // 6: the `missing` state (a paid image gone from disk that the service no longer has); file
  // paths relative to the output folder, so a moved project keeps working; settings (the
  // provider the manifest was last run with). SQLite cannot change a CHECK: the table is rebuilt.
  (db) => {
    db.exec(`
      CREATE TABLE items_v6 (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        row_id TEXT NOT NULL,
        source TEXT NOT NULL,
        provider TEXT NOT NULL,
        request_json TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN (${quoted(ITEM_STATES)})),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        job_id TEXT,
        image_ref TEXT,
        submitted_at INTEGER,
        error_code TEXT,
        error_message TEXT,
        credits REAL,
        result_url TEXT,
        result_width INTEGER,
        result_height INTEGER,
        file_path TEXT,
        thumb_path TEXT,
        sha256 TEXT,
        width INTEGER,
        height INTEGER,
        format TEXT,
        bytes INTEGER,
        in_manifest INTEGER NOT NULL DEFAULT 1 CHECK (in_manifest IN (0, 1)),
        superseded_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        completed_at INTEGER
      );
      INSERT INTO items_v6 SELECT * FROM items;
      DROP TABLE items;
      ALTER TABLE items_v6 RENAME TO items;
      CREATE UNIQUE INDEX items_live_key ON items(key) WHERE superseded_at IS NULL;
      CREATE INDEX items_queue ON items(state, next_attempt_at, id) WHERE superseded_at IS NULL;
      CREATE INDEX items_job ON items(job_id) WHERE job_id IS NOT NULL;
      CREATE INDEX items_image ON items(image_ref) WHERE image_ref IS NOT NULL;
      CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- The provider remembered: the one the manifest was last run with.
      INSERT INTO settings (name, value) SELECT 'provider', provider FROM runs ORDER BY id DESC LIMIT 1;
    `);
    // The layout under the output folder is fixed (images/<file>, thumbs/<file>,
    // renditions/<name>/<file>, no separator in a key or a name): the last segments are the path.
    db.function("imgbatch_last_segments", { deterministic: true }, (path: unknown, count: unknown) =>
      typeof path === "string" ? path.split(/[\\/]/).slice(-Number(count)).join("/") : null,
    );
    db.exec(`
      UPDATE items SET file_path = imgbatch_last_segments(file_path, 2), thumb_path = imgbatch_last_segments(thumb_path, 2)
        WHERE file_path IS NOT NULL OR thumb_path IS NOT NULL;
      UPDATE renditions SET path = imgbatch_last_segments(path, 3);
    `);
  },
  // 7: the row is the whole checkpoint: who works an item (owner, an epoch bumped on every claim,
  // a lease), and where its reads stand (the poll schedule's step, failed reads in a row, a
  // lost submit's look that found nothing).
  `
  ALTER TABLE items ADD COLUMN owner TEXT;
  ALTER TABLE items ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN lease_until INTEGER;
  ALTER TABLE items ADD COLUMN polls INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN read_failures INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN found_nothing_at INTEGER;
  CREATE INDEX items_owner ON items(owner) WHERE owner IS NOT NULL;
  `,
  // 8: the morning review: decisions on the image judged (history kept, the latest counts), and
  // each item's quality-gate verdict (flags as JSON, remakes the gates asked for, perceptual hash).
  `
  CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    item_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'undecided')),
    note TEXT,
    reviewer TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX decisions_image ON decisions(item_key, sha256, id);
  ALTER TABLE items ADD COLUMN qc_flags TEXT;
  ALTER TABLE items ADD COLUMN qc_retries INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN phash TEXT;
  CREATE INDEX items_row ON items(row_id) WHERE superseded_at IS NULL;
  CREATE TABLE orphan_jobs (id INTEGER PRIMARY KEY, item_key TEXT NOT NULL, job_id TEXT NOT NULL, worker TEXT NOT NULL, at INTEGER NOT NULL);
  `,
];
