// Child process: builds scenario 6's state database through the store API (manifest sync),
// then marks all but the last `queued` items done with plain SQL in one transaction, with the
// columns and the four events a real delivery leaves. The output folder's files are empty,
// so each item records 0 bytes: the run's check of every done image finds them whole.
import { join } from "node:path";
import { childInput, childResult, DIST } from "./lib.mjs";

const input = await childInput();
const { loadManifest, requestHash } = await import(join(DIST, "manifest/index.js"));
// The SQLite adapter of the store port, or the Store of a build from before it (IMGBATCH_DIST).
const storeModule = await import(join(DIST, "store/sqlite/sqlite-store.js")).catch(() => import(join(DIST, "store/store.js")));
const Store = storeModule.SqliteStore ?? storeModule.Store;
const startedAt = Date.now();
const manifest = await loadManifest(input.manifest);
const store = Store.open(input.db);
await store.syncManifest(
  manifest.items.map((item) => ({ item, requestHash: requestHash(item.request, "pictory") })),
  "pictory",
);
// The adapter's own connection (private to TypeScript): plain SQL stands in for 99,000 deliveries.
const db = store.db;
const done = manifest.items.length - input.queued;
const t0 = Date.now() - 86_400_000;
db.transaction(() => {
  db.prepare(
    `INSERT INTO runs (id, started_at, ended_at, outcome, exit_code, stop_reason, pid, host, provider, manifest_file, items_done, credits)
     VALUES (1, ?, ?, 'stopped', 3, 'signal', 1, 'bench', 'pictory', ?, ?, ?)`,
  ).run(t0, t0 + 3_600_000, manifest.file, done, done * 0.6);
  db.prepare(
    `UPDATE items SET state = 'done', attempts = 1, next_attempt_at = 0,
       job_id = printf('%08x-0000-4000-8000-%012x', id, id), submitted_at = ? + id * 30, credits = 0.6,
       result_url = printf('https://cdn.example/files/images/user/u/%08x.png', id), result_width = 1024, result_height = 1024,
       file_path = 'images/' || key || '.png', thumb_path = 'thumbs/' || key || '.webp',
       sha256 = printf('%064x', id), width = 1024, height = 1024, format = 'png', bytes = 0,
       updated_at = ? + id * 30 + 9000, completed_at = ? + id * 30 + 9000
     WHERE id <= ?`,
  ).run(t0, t0, t0, done);
  const steps = [
    ["queued", "submitting", "'attempt 1 of 5'", 0],
    ["submitting", "running", "'job ' || printf('%08x-0000-4000-8000-%012x', id, id)", 400],
    ["running", "downloading", "'completed at the service (1024×1024, 0.6 credits)'", 6000],
    ["downloading", "done", "'1024×1024 png, 1500000 bytes'", 9000],
  ];
  for (const [from, to, detail, offset] of steps) {
    db.prepare(`INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) SELECT id, 1, ? + id * 30 + ?, ?, ?, ${detail} FROM items WHERE id <= ?`).run(
      t0,
      offset,
      from,
      to,
      done,
    );
  }
})();
db.pragma("wal_checkpoint(TRUNCATE)");
const counts = await store.counts();
await store.close();
await childResult({ buildMs: Date.now() - startedAt, counts });
