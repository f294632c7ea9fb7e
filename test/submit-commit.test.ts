// Money rests on one commit: an item's `submitting` row is on disk before its submit is sent.
// The provider here counts, at the moment each submit is made, the submits the database holds
// through a connection of its own (as another process would see them).
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Downloader } from "../src/assets/download.js";
import { outputLayout } from "../src/assets/image-stage.js";
import { DEFAULTS } from "../src/defaults.js";
import { createLogger } from "../src/log.js";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { LocalProvider } from "../src/providers/local.js";
import type { Provider } from "../src/providers/provider.js";
import { Runner } from "../src/runner/runner.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { readDb } from "./helpers/db.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

function planned(i: number): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key: `r${i}`, rowId: `r${i}`, source: `m.yaml row ${i + 1}`, variant: null, matrix: {}, request: { prompt: `Poster number ${i}`, model: "flux-schnell", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "local") };
}

/** A runner over `rows` planned items with the local renderer behind `wrap`. */
async function setUp(rows: number, wrap: (local: LocalProvider) => Partial<Provider>) {
  const dir = tempDir();
  const dbPath = join(dir, "m.sqlite");
  const store = Store.open(dbPath);
  await store.syncManifest(Array.from({ length: rows }, (_, i) => planned(i)), "local");
  const local = new LocalProvider();
  const provider: Provider = {
    name: local.name,
    keyId: local.keyId,
    pollIntervalMs: local.pollIntervalMs,
    submit: local.submit.bind(local),
    getJob: local.getJob.bind(local),
    findLostJob: local.findLostJob.bind(local),
    preflight: local.preflight.bind(local),
    close: local.close.bind(local),
    ...wrap(local),
  };
  const downloader = new Downloader({ maxBytes: DEFAULTS.downloadMaxBytes, connectTimeoutMs: 1_000, headersTimeoutMs: 1_000, bodyTimeoutMs: 1_000 });
  const runner = new Runner({
    store,
    worker: "test:1",
    provider,
    downloader,
    layout: outputLayout(join(dir, "out")),
    logger: createLogger({ level: "warn", destination: new Writable({ write: (_chunk, _enc, done) => done() }) }),
    options: {
      concurrency: 16,
      maxAttempts: 3,
      pollIntervalMs: 0,
      rpm: 0,
      backoffBaseMs: 10,
      backoffCapMs: 50,
      throttleFallbackMs: 50,
      downloadConcurrency: 2,
      maxInputPixels: DEFAULTS.maxInputPixels,
      stopSubmittingAt: null,
      maxCredits: null,
      reconcileWindowMs: 60_000,
      jobTimeoutMs: 60_000,
      retryAfterCapMs: 60_000,
      serviceDownMs: 60_000,
      leaseMs: 60_000,
      roles: { submit: true, deliver: true },
      thumbnail: DEFAULTS.thumbnail,
      renditions: [],
      qc: DEFAULTS.qc,
    },
  });
  return { dbPath, store, runner, downloader };
}

describe("a submit and its commit", () => {
  it("no submit is made before its `submitting` row is committed where another connection sees it", async () => {
    const rows = 40;
    let made = 0;
    const ahead: number[] = [];
    const { dbPath, store, runner, downloader } = await setUp(rows, (local) => ({
      submit(request) {
        made++;
        const committed = readDb(dbPath, (conn) => (conn.prepare("SELECT COUNT(*) AS n FROM events WHERE to_state = 'submitting'").get() as { n: number }).n) ?? 0;
        if (committed < made) ahead.push(made - committed);
        return local.submit(request);
      },
    }));
    const summary = await runner.run();
    await downloader.close();
    expect(summary.fatal).toBeNull();
    expect(summary.doneThisRun).toBe(rows);
    expect(made).toBe(rows);
    expect(ahead, "submits made before their commit").toEqual([]);
    await store.close();
  }, 60_000);

  it("a hard stop while submits wait for their commit sends none of them and queues them again, attempts returned", async () => {
    let made = 0;
    const { dbPath, store, runner, downloader } = await setUp(8, (local) => ({
      submit(request) {
        made++;
        return local.submit(request);
      },
    }));
    // The stop (a signal) lands between the submits' `submitting` and their commit.
    const write = store.write.bind(store);
    store.write = (item, change) => {
      if (change.durable) runner.stop("signal", true);
      return write(item, change);
    };
    const summary = await runner.run();
    await downloader.close();
    await store.close();
    expect(summary.stopReason).toBe("signal");
    expect(made).toBe(0);
    const rows = readDb(dbPath, (conn) => conn.prepare("SELECT state, attempts FROM items").all() as { state: string; attempts: number }[])!;
    expect(rows.length).toBe(8);
    expect(rows.every((r) => r.state === "queued" && r.attempts === 0), JSON.stringify(rows)).toBe(true);
    const notes = readDb(dbPath, (conn) => conn.prepare("SELECT COUNT(*) AS n FROM events WHERE from_state = 'submitting' AND to_state = 'queued' AND detail = 'stopped before the submit was sent'").get() as { n: number })!;
    expect(notes.n).toBeGreaterThan(0);
  }, 30_000);
});
