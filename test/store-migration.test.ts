// Opening a database an older imgbatch left: migration 6 rebuilds the items table (the
// `missing` state) and makes stored file paths relative to the output folder, keeping every
// other value. A database imgbatch cannot use is refused with DatabaseUnusableError, and two
// processes creating the same new database take turns instead of both creating the schema.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS } from "../src/store/migrations.js";
import { DatabaseUnusableError, SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { readDb, sqliteConnectionOf } from "./helpers/db.js";
import { move } from "./helpers/store.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

type Row = Record<string, unknown>;

const OLD_OUT = "/old/place/output/x";
const T = 1_760_000_000_000;
const REQUEST = JSON.stringify({ prompt: "A ceramic mug", model: "seedream3.0", aspectRatio: "1:1", style: "photorealistic" });

/** Every column set, each value distinct from its neighbours', so a value lost or moved by the table rebuild shows. */
const ITEMS: Row[] = [
  {
    id: 1, key: "k", row_id: "k", source: "summer.csv row 2", provider: "pictory", request_json: REQUEST, request_hash: "h-k",
    state: "done", attempts: 2, next_attempt_at: T + 5, job_id: "job-k", image_ref: "img-k", submitted_at: T + 10,
    error_code: "HTTP_503", error_message: "an earlier attempt failed", credits: 0.8, result_url: "https://cdn.example/k.png",
    result_width: 1536, result_height: 1024, file_path: `${OLD_OUT}/images/k.png`, thumb_path: `${OLD_OUT}/thumbs/k.webp`,
    sha256: "ab".repeat(32), width: 1344, height: 768, format: "png", bytes: 123_456, in_manifest: 1, superseded_at: null,
    created_at: T, updated_at: T + 40, completed_at: T + 40,
  },
  // The record `k` had before its request changed: superseded, kept for history.
  {
    id: 2, key: "k", row_id: "k", source: "summer.csv row 2", provider: "local", request_json: REQUEST, request_hash: "h-k-old",
    state: "done", attempts: 1, next_attempt_at: 0, job_id: null, image_ref: null, submitted_at: T - 100,
    error_code: null, error_message: null, credits: 0, result_url: null,
    result_width: null, result_height: null, file_path: `${OLD_OUT}/images/k-old.png`, thumb_path: null,
    sha256: "cd".repeat(32), width: 512, height: 384, format: "png", bytes: 2_048, in_manifest: 1, superseded_at: T - 1,
    created_at: T - 200, updated_at: T - 1, completed_at: T - 90,
  },
  {
    id: 3, key: "q", row_id: "q", source: "summer.csv row 3", provider: "pictory", request_json: REQUEST, request_hash: "h-q",
    state: "queued", attempts: 0, next_attempt_at: T + 99, job_id: null, image_ref: null, submitted_at: null,
    error_code: null, error_message: null, credits: null, result_url: null,
    result_width: null, result_height: null, file_path: null, thumb_path: null,
    sha256: null, width: null, height: null, format: null, bytes: null, in_manifest: 0, superseded_at: null,
    created_at: T, updated_at: T, completed_at: null,
  },
  {
    id: 4, key: "f", row_id: "f", source: "summer.csv row 4", provider: "pictory", request_json: REQUEST, request_hash: "h-f",
    state: "failed", attempts: 5, next_attempt_at: T + 7, job_id: "job-f", image_ref: null, submitted_at: T + 3,
    error_code: "CONTENT_POLICY", error_message: "refused by the service", credits: null, result_url: null,
    result_width: null, result_height: null, file_path: null, thumb_path: null,
    sha256: null, width: null, height: null, format: null, bytes: null, in_manifest: 1, superseded_at: null,
    created_at: T, updated_at: T + 8, completed_at: null,
  },
];

const RUNS: Row[] = [
  {
    id: 1, started_at: T, ended_at: T + 50, outcome: "some-failed", exit_code: 2, stop_reason: null, pid: 4242, host: "old-host",
    provider: "pictory", manifest_file: "/old/place/summer.csv", items_done: 1, items_failed: 1, credits: 0.8,
  },
  {
    id: 2, started_at: T + 60, ended_at: null, outcome: null, exit_code: null, stop_reason: null, pid: 4243, host: "old-host",
    provider: "pictory", manifest_file: "/old/place/summer.csv", items_done: 0, items_failed: 0, credits: 0,
  },
];

const EVENTS: Row[] = [
  { id: 1, item_id: 1, run_id: 1, at: T + 10, from_state: "queued", to_state: "submitting", detail: null, error_code: null },
  { id: 2, item_id: 1, run_id: 1, at: T + 20, from_state: "submitting", to_state: "running", detail: "job job-k", error_code: null },
  { id: 3, item_id: 1, run_id: 1, at: T + 30, from_state: "running", to_state: "downloading", detail: null, error_code: null },
  { id: 4, item_id: 1, run_id: 1, at: T + 40, from_state: "downloading", to_state: "done", detail: null, error_code: null },
  { id: 5, item_id: 4, run_id: 1, at: T + 8, from_state: "running", to_state: "failed", detail: "refused by the service", error_code: "CONTENT_POLICY" },
  { id: 6, item_id: 3, run_id: null, at: T, from_state: null, to_state: "queued", detail: "planned", error_code: null },
  { id: 7, item_id: 2, run_id: null, at: T - 1, from_state: "done", to_state: "done", detail: "superseded: request changed", error_code: null },
];

const RENDITIONS: Row[] = [
  { item_id: 1, name: "square", settings_hash: "s-square", path: `${OLD_OUT}/renditions/square/k.jpg`, width: 512, height: 512, made_at: T + 41 },
  { item_id: 1, name: "wide", settings_hash: "s-wide", path: `${OLD_OUT}/renditions/wide/k.webp`, width: 1200, height: 630, made_at: T + 42 },
];

const RUN_LOCK: Row[] = [{ id: 1, run_id: 2, pid: 4243, host: "old-host", started_at: T + 60, heartbeat_at: T + 70 }];

function insertAll(db: Database.Database, table: string, rows: Row[]): void {
  for (const row of rows) {
    const columns = Object.keys(row);
    db.prepare(`INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`).run(row);
  }
}

/** A database as imgbatch at schema 5 left it: its five migrations, WAL, rows of a past run. */
function schema5Database(path: string): void {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    for (const migration of MIGRATIONS.slice(0, 5)) {
      if (typeof migration !== "string") throw new Error("migrations 1-5 shipped as SQL");
      db.transaction(() => db.exec(migration))();
    }
    db.pragma("user_version = 5");
    db.transaction(() => {
      insertAll(db, "runs", RUNS);
      insertAll(db, "items", ITEMS);
      insertAll(db, "events", EVENTS);
      insertAll(db, "renditions", RENDITIONS);
      insertAll(db, "run_lock", RUN_LOCK);
    })();
  } finally {
    db.close();
  }
}

function tableRows(db: Database.Database, table: string): Row[] {
  return db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() as Row[];
}

describe("migration 6 on a database imgbatch left at schema 5", () => {
  it("makes file paths relative to the output folder and keeps every other value", async () => {
    const path = join(tempDir(), "summer.sqlite");
    schema5Database(path);
    await Store.open(path).close();

    readDb(path, (db) => {
      expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
      // Migrations 7 and 8's columns: nobody works an item, no read has been made of its job yet, no quality verdict.
      const unclaimed = { owner: null, claim_epoch: 0, lease_until: null, polls: 0, read_failures: 0, found_nothing_at: null, qc_flags: null, qc_retries: 0, phash: null };
      expect(tableRows(db, "items")).toEqual([
        { ...ITEMS[0], file_path: "images/k.png", thumb_path: "thumbs/k.webp", ...unclaimed },
        { ...ITEMS[1], file_path: "images/k-old.png", ...unclaimed },
        { ...ITEMS[2], ...unclaimed },
        { ...ITEMS[3], ...unclaimed },
      ]);
      expect(tableRows(db, "renditions")).toEqual([
        { ...RENDITIONS[0], path: "renditions/square/k.jpg" },
        { ...RENDITIONS[1], path: "renditions/wide/k.webp" },
      ]);
      expect(tableRows(db, "events")).toEqual(EVENTS);
      expect(tableRows(db, "runs")).toEqual(RUNS);
      expect(tableRows(db, "run_lock")).toEqual(RUN_LOCK);
      // What settings holds after the migration belongs to the provider rule's own tests.
      expect((db.pragma("table_info(settings)") as { name: string }[]).map((c) => c.name)).toEqual(["name", "value"]);
    });
  });

  it("leaves a sound database: foreign keys, integrity, the items indexes, the `missing` state", async () => {
    const path = join(tempDir(), "summer.sqlite");
    schema5Database(path);
    const store = Store.open(path);
    try {
      const db = sqliteConnectionOf(store);
      expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length);
      expect(db.pragma("foreign_key_check")).toEqual([]);
      expect(await store.integrityCheck()).toBe("ok");
      const indexes = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items' ORDER BY name`).all() as { name: string; sql: string }[];
      expect(indexes.map((i) => i.name)).toEqual(["items_image", "items_job", "items_live_key", "items_owner", "items_queue", "items_row"]);
      // Partial and unique as migrations 1, 4 and 5 made them: the queue read and the live key rely on it.
      expect(indexes.find((i) => i.name === "items_live_key")!.sql).toMatch(/^CREATE UNIQUE INDEX items_live_key ON items\(key\) WHERE superseded_at IS NULL$/);
      expect(indexes.find((i) => i.name === "items_queue")!.sql).toMatch(/ON items\(state, next_attempt_at, id\) WHERE superseded_at IS NULL$/);

      const done = (await store.byKey("k"))!;
      expect(done).toMatchObject({ id: 1, state: "done", filePath: "images/k.png" });
      const downloading = await move(store, done, "downloading", {}, "image gone from disk");
      await move(store, downloading, "missing", {}, "the service no longer has it");
      await store.flush();
      expect((await store.get(1))!.state).toBe("missing");
      expect((await store.events(1)).slice(-2).map((e) => [e.from, e.to])).toEqual([["done", "downloading"], ["downloading", "missing"]]);
      expect(db.pragma("foreign_key_check")).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe("a database imgbatch cannot use", () => {
  it("of a newer schema: DatabaseUnusableError, read-write and read-only, and its version kept", async () => {
    const path = join(tempDir(), "summer.sqlite");
    const newer = MIGRATIONS.length + 1;
    const db = new Database(path);
    db.exec("CREATE TABLE future (id INTEGER PRIMARY KEY)");
    db.pragma(`user_version = ${newer}`);
    db.close();

    for (const readonly of [false, true]) {
      expect(() => Store.open(path, { readonly })).toThrow(DatabaseUnusableError);
      expect(() => Store.open(path, { readonly })).toThrow(`its schema (${newer}) is newer`);
    }
    expect(readDb(path, (d) => d.pragma("user_version", { simple: true }))).toBe(newer);
  });

  it("a file of garbage: DatabaseUnusableError, read-write and read-only, and the file left as it was", async () => {
    const path = join(tempDir(), "summer.sqlite");
    const garbage = Buffer.from("this is not an SQLite database, only words\n".repeat(200));
    writeFileSync(path, garbage);

    for (const readonly of [false, true]) {
      expect(() => Store.open(path, { readonly })).toThrow(DatabaseUnusableError);
    }
    expect(readFileSync(path).equals(garbage)).toBe(true);
  });
});

// Each child imports the built store, says "ready", and opens the database when told "go":
// both are told at once, so both find it new.
const STORE_JS = new URL("../dist/store/sqlite/sqlite-store.js", import.meta.url).href;
const CHILD = `
import { SqliteStore } from ${JSON.stringify(STORE_JS)};
process.stdout.write("ready\\n");
process.stdin.once("data", async () => {
  const store = SqliteStore.open(process.argv[1]);
  const version = await store.schemaVersion();
  await store.close();
  process.stdout.write(JSON.stringify({ version }) + "\\n");
  process.exit(0);
});
`;

interface Opened {
  code: number | null;
  stdout: string;
  stderr: string;
}

function openerChild(dbPath: string): { ready: Promise<void>; go(): void; done: Promise<Opened> } {
  const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD, dbPath], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let readied: () => void = () => {};
  const ready = new Promise<void>((resolve) => (readied = resolve));
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes("ready\n")) readied();
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Opened>((resolve) => child.on("close", (code) => {
    readied();
    resolve({ code, stdout, stderr });
  }));
  return { ready, go: () => child.stdin.end("go\n"), done };
}

describe("two processes opening the same new database", () => {
  it("both succeed, and the schema is made once", async () => {
    expect(existsSync(new URL(STORE_JS)), "dist/store/sqlite/sqlite-store.js: run `npm run build` first").toBe(true);
    // Several rounds: each is a fresh race between the two.
    for (let round = 0; round < 10; round++) {
      const path = join(tempDir(), "jobs", "summer.sqlite");
      const openers = [openerChild(path), openerChild(path)];
      await Promise.all(openers.map((o) => o.ready));
      for (const o of openers) o.go();
      for (const result of await Promise.all(openers.map((o) => o.done))) {
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).toBe("");
        expect(result.stdout).toContain(JSON.stringify({ version: MIGRATIONS.length }));
      }
      readDb(path, (db) => {
        expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
        expect(db.prepare(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'`).pluck().get()).toBe(1);
      });
    }
  }, 30_000);
});
