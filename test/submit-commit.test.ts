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
import { Store } from "../src/store/store.js";
import { readDb } from "./helpers/db.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

function planned(i: number): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key: `r${i}`, rowId: `r${i}`, source: `m.yaml row ${i + 1}`, variant: null, matrix: {}, request: { prompt: `Poster number ${i}`, model: "flux-schnell", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "local") };
}

describe("a submit and its commit", () => {
  it("no submit is made before its `submitting` row is committed where another connection sees it", async () => {
    const dir = tempDir();
    const dbPath = join(dir, "m.sqlite");
    const rows = 40;
    const store = Store.open(dbPath);
    store.syncManifest(Array.from({ length: rows }, (_, i) => planned(i)), "local");
    const local = new LocalProvider();
    let made = 0;
    const ahead: number[] = [];
    const provider: Provider = {
      name: local.name,
      pollIntervalMs: local.pollIntervalMs,
      submit(request) {
        made++;
        const committed = readDb(dbPath, (conn) => (conn.prepare("SELECT COUNT(*) AS n FROM events WHERE to_state = 'submitting'").get() as { n: number }).n) ?? 0;
        if (committed < made) ahead.push(made - committed);
        return local.submit(request);
      },
      getJob: local.getJob.bind(local),
      findLostJob: local.findLostJob.bind(local),
      preflight: local.preflight.bind(local),
      close: local.close.bind(local),
    };
    const downloader = new Downloader({ maxBytes: DEFAULTS.downloadMaxBytes, connectTimeoutMs: 1_000, headersTimeoutMs: 1_000, bodyTimeoutMs: 1_000 });
    const runner = new Runner({
      store,
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
        thumbnail: DEFAULTS.thumbnail,
        renditions: [],
      },
    });
    const summary = await runner.run();
    await downloader.close();
    expect(summary.fatal).toBeNull();
    expect(summary.doneThisRun).toBe(rows);
    expect(made).toBe(rows);
    expect(ahead, "submits made before their commit").toEqual([]);
    store.close();
  }, 60_000);
});
