import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { canTransition, ITEM_STATES } from "../src/store/states.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { abandonsPaidJob, planSync, replacesPaidImage } from "../src/store/sync.js";
import { useTempDir } from "./helpers/tmp.js";
import { move } from "./helpers/store.js";
import { sqliteConnectionOf } from "./helpers/db.js";

const tempDir = useTempDir();

function planned(key: string, prompt = `a picture of ${key}`): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key.split("--")[0]!, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt, model: "seedream3.0", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "local") };
}

function openStore(clock = { t: 1_000 }): Store {
  return Store.open(join(tempDir(), "jobs", "m.sqlite"), { now: () => clock.t });
}

describe("state machine", () => {
  it.each([
    ["queued", "submitting", true],
    ["submitting", "running", true],
    ["submitting", "downloading", true],
    ["running", "downloading", true],
    ["downloading", "done", true],
    ["failed", "queued", true],
    ["done", "queued", false],
    ["queued", "running", false],
    ["queued", "done", false],
    ["running", "submitting", false],
  ] as const)("%s → %s allowed: %s", (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });

  it("done leaves only to be delivered again (its image went missing), never to a new submit", async () => {
    expect(ITEM_STATES.filter((to) => canTransition("done", to))).toEqual(["downloading"]);
  });

  it("missing is paid for again only through the queue (an explicit retry)", async () => {
    expect(ITEM_STATES.filter((to) => canTransition("missing", to))).toEqual(["queued", "downloading"]);
    expect(canTransition("downloading", "missing")).toBe(true);
  });
});

describe("what a sync may not throw away without a flag", () => {
  const entry = { id: 1, key: "a", oldHash: "x", newHash: "y", oldProvider: "pictory", oldJobId: null } as const;
  it.each([
    ["request", "running", null, true],
    ["request", "done", null, false],
    ["request", "failed", "job-1", true],
    ["request", "failed", null, false],
    ["provider", "done", null, false],
  ] as const)("%s change of a %s record (job %s) abandons a paid job: %s", (reason, oldState, oldJobId, expected) => {
    expect(abandonsPaidJob({ ...entry, reason, oldState, oldJobId })).toBe(expected);
  });
  it.each([
    ["done", null, true],
    ["missing", null, true],
    ["failed", "job-1", true],
    ["failed", null, false],
    ["queued", null, false],
  ] as const)("a provider switch of a %s record (job %s) replaces a paid image: %s", (oldState, oldJobId, expected) => {
    expect(replacesPaidImage({ ...entry, reason: "provider", oldState, oldJobId })).toBe(expected);
    expect(replacesPaidImage({ ...entry, reason: "provider", oldState, oldJobId, oldProvider: "local" })).toBe(false);
  });
});

describe("planSync", () => {
  it.each([
    { name: "new key", stored: [], insert: ["a"], supersede: [], removed: [] },
    { name: "unchanged", stored: [{ id: 1, key: "a", requestHash: planned("a").requestHash, inManifest: true }], insert: [], supersede: [], removed: [] },
    { name: "changed request", stored: [{ id: 1, key: "a", requestHash: "old", inManifest: true }], insert: ["a"], supersede: ["a"], removed: [] },
  ])("$name", ({ stored, insert, supersede }) => {
    const plan = planSync([planned("a")], stored);
    expect(plan.insert.map((p) => p.item.key)).toEqual(insert);
    expect(plan.supersede.map((s) => s.key)).toEqual(supersede);
  });

  it("marks keys that left the manifest, and those that came back", async () => {
    const plan = planSync([planned("a")], [
      { id: 1, key: "a", requestHash: planned("a").requestHash, inManifest: false },
      { id: 2, key: "gone", requestHash: "x", inManifest: true },
    ]);
    expect(plan.markPresent).toEqual([1]);
    expect(plan.markRemoved).toEqual([2]);
  });
});

describe("Store (SQLite adapter)", () => {
  it("opens with WAL, synchronous FULL and the latest schema", async () => {
    const store = openStore();
    const db = sqliteConnectionOf(store);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("synchronous", { simple: true })).toBe(2);
    expect(db.pragma("user_version", { simple: true })).toBeGreaterThanOrEqual(7);
    expect(await store.integrityCheck()).toBe("ok");
    await store.close();
  });

  it("returns exactly the record the row now holds after each write", async () => {
    const clock = { t: 1_000 };
    const store = openStore(clock);
    await store.syncManifest([planned("a")], "local");
    let item = (await store.byKey("a"))!;
    const steps: (() => Promise<typeof item>)[] = [
      () => store.claimQueued("w", clock.t, 1, clock.t + 60_000).then(([claimed]) => claimed!),
      () => move(store, item, "submitting", { attempts: 1, submittedAt: 2_000, errorCode: null }, "attempt 1"),
      () => store.write(item, { note: "reconcile: looking again", set: { nextAttemptAt: 9_000, errorCode: "HTTP_503", errorMessage: "lost" } }),
      () => move(store, item, "running", { jobId: "job-1", nextAttemptAt: 3_000, errorCode: undefined }),
      () => store.write(item, { set: { resultUrl: "https://x/y.png", polls: 2, readFailures: 1 } }),
      () => move(store, item, "downloading", { credits: 0.6, imageRef: "img-1", resultWidth: 64, resultHeight: 64 }),
      () => move(store, item, "done", { filePath: "/o/a.png", sha256: "ab", width: 64, height: 64, format: "png", bytes: 10, completedAt: 5_000 }),
    ];
    for (const step of steps) {
      clock.t += 500;
      item = await step();
      expect(item).toEqual(await store.get(item.id));
    }
    expect(item).toMatchObject({ owner: null, leaseUntil: null, claimEpoch: 1 });
    await store.close();
  });

  it("commits a turn's state changes together, fsynced when one is durable, and a durable write resolves once on disk", async () => {
    const store = openStore();
    const db = sqliteConnectionOf(store);
    const other = new Database(db.name, { readonly: true });
    const committedState = (key: string) => (other.prepare("SELECT state FROM items WHERE key = ?").get(key) as { state: string }).state;
    const synchronous = () => db.pragma("synchronous", { simple: true });
    await store.syncManifest([planned("a"), planned("b"), planned("c")], "local");
    expect(synchronous()).toBe(2); // FULL

    const [qa, qb] = [(await store.byKey("a"))!, (await store.byKey("b"))!];
    const writes = [store.write(qa, { to: "submitting", set: { attempts: 1 }, durable: true }), store.write(qb, { to: "submitting", set: { attempts: 1 }, durable: true })];
    expect((await store.byKey("a"))!.state).toBe("submitting"); // the store reads its own changes at once
    expect([committedState("a"), committedState("b")]).toEqual(["queued", "queued"]); // others do not, yet
    const [a, b] = await Promise.all(writes);
    expect([committedState("a"), committedState("b")]).toEqual(["submitting", "submitting"]);

    // An item's later steps commit without fsync: alone in their turn, NORMAL.
    const running = await store.write(a!, { to: "running", set: { jobId: "job-1" } });
    expect(synchronous()).toBe(1); // NORMAL
    // A durable write in that same turn cannot wait for a NORMAL commit: the group commits, a FULL one opens.
    const c = store.write((await store.byKey("c"))!, { to: "submitting", set: { attempts: 1 }, durable: true });
    expect(committedState("a")).toBe("running");
    expect(synchronous()).toBe(2);
    await store.write(b!, { to: "failed", set: { errorCode: "X" } }); // joins the FULL group
    await c;
    expect([committedState("b"), committedState("c")]).toEqual(["failed", "submitting"]);

    await store.write(running, { to: "failed", set: { errorCode: "X" } });
    await store.requeue({}); // bookkeeping: the open group commits first, then this alone, FULL
    expect(synchronous()).toBe(2);
    expect([committedState("a"), committedState("b")]).toEqual(["queued", "queued"]);
    // Every change is still in the history, one event each.
    const events = db.prepare("SELECT COUNT(*) AS n FROM events WHERE from_state IS NOT NULL").get() as { n: number };
    expect(events.n).toBe(8);
    other.close();
    await store.close();
  });

  it("a group that does not commit fails its durable writes and every later write, so nothing is sent for them", async () => {
    const store = openStore();
    const db = sqliteConnectionOf(store);
    const other = new Database(db.name, { readonly: true });
    await store.syncManifest([planned("a"), planned("b")], "local");
    const durable = store.write((await store.byKey("a"))!, { to: "submitting", set: { attempts: 1 }, durable: true });
    durable.catch(() => {});
    const a = (await store.byKey("a"))!;
    // What SQLite does by itself on an I/O error or a full disk: the whole open transaction goes.
    db.exec("ROLLBACK");
    await expect(move(store, (await store.byKey("b"))!, "submitting", { attempts: 1 })).rejects.toThrow(/could not commit/);
    await expect(durable).rejects.toMatchObject({ code: "DB_COMMIT_FAILED", exitCode: 3 });
    expect((other.prepare("SELECT state FROM items WHERE key = 'a'").get() as { state: string }).state).toBe("queued");
    // The records in memory no longer match the database: no later write gets through.
    await expect(move(store, a, "running", { jobId: "job-1" })).rejects.toThrow(/could not commit/);
    await expect(store.endRun(1, { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 })).rejects.toThrow(/could not commit/);
    await expect(store.flush()).rejects.toMatchObject({ code: "DB_COMMIT_FAILED" });
    other.close();
    await store.close().catch(() => {});
  });

  it("a write that fails half-way (its row changed, its event refused) takes its whole group back: no row without its event", async () => {
    const store = openStore();
    const db = sqliteConnectionOf(store);
    await store.syncManifest([planned("a"), planned("b")], "local");
    // The event's insert fails after the row's update has gone through, as a full disk might.
    db.exec(`CREATE TRIGGER refuse_boom BEFORE INSERT ON events WHEN NEW.detail = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    const [a, b] = [(await store.byKey("a"))!, (await store.byKey("b"))!];
    await store.write(a, { to: "submitting", set: { attempts: 1 } }); // the same turn's group as b's
    await expect(store.write(b, { to: "submitting", set: { attempts: 1 }, note: "boom" })).rejects.toMatchObject({ code: "DB_COMMIT_FAILED" });
    const other = new Database(db.name, { readonly: true });
    const states = other.prepare("SELECT key, state FROM items ORDER BY key").all();
    expect(states).toEqual([{ key: "a", state: "queued" }, { key: "b", state: "queued" }]);
    expect((other.prepare("SELECT COUNT(*) AS n FROM events WHERE to_state = 'submitting'").get() as { n: number }).n).toBe(0);
    await expect(move(store, b, "submitting", { attempts: 1 })).rejects.toThrow(/could not commit/);
    other.close();
    await store.close().catch(() => {});
  });

  it("supersedes an item whose request changed and never touches an unchanged done item", async () => {
    const store = openStore();
    await store.syncManifest([planned("a"), planned("b")], "local");
    let a = (await store.byKey("a"))!;
    a = await move(store, a, "submitting");
    a = await move(store, a, "running", { jobId: "j" });
    a = await move(store, a, "downloading");
    a = await move(store, a, "done", { sha256: "abc" });
    const plan = await store.syncManifest([planned("a"), planned("b", "a different prompt for b")], "local");
    expect(plan.unchanged).toBe(1);
    expect(plan.supersede.map((s) => s.key)).toEqual(["b"]);
    expect(await store.byKey("a")).toMatchObject({ id: a.id, state: "done", sha256: "abc", updatedAt: a.updatedAt });
    const b = (await store.byKey("b"))!;
    expect(b.request.prompt).toBe("a different prompt for b");
    expect(b.state).toBe("queued");
    const old = sqliteConnectionOf(store).prepare("SELECT COUNT(*) AS n FROM items WHERE key = 'b' AND superseded_at IS NOT NULL").get() as { n: number };
    expect(old.n).toBe(1);
    await store.close();
  });

  it("tells whether any record, superseded ones too, owns a job id or an adopted image, by index", async () => {
    const store = openStore();
    await store.syncManifest([planned("a"), planned("b")], "local");
    let a = await move(store, (await store.byKey("a"))!, "submitting");
    a = await move(store, a, "running", { jobId: "job-a" });
    let b = await move(store, (await store.byKey("b"))!, "submitting");
    b = await move(store, b, "downloading", { imageRef: "img-b" });
    // b's request changes: its old record, image and all, is kept for history and still owns it.
    await store.syncManifest([planned("a"), planned("b", "a new prompt for b")], "local");
    expect(await Promise.all(["job-a", "img-b", "job-x", "img-x"].map((ref) => store.isClaimed(ref)))).toEqual([true, true, false, false]);
    // One indexed lookup per ref a search meets, not a scan of every record.
    const plan = sqliteConnectionOf(store).prepare("EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM items WHERE job_id = @ref) OR EXISTS (SELECT 1 FROM items WHERE image_ref = @ref)").all({ ref: "x" }) as { detail: string }[];
    expect(plan.map((p) => p.detail).join("\n")).toMatch(/USING COVERING INDEX items_job[\s\S]*USING COVERING INDEX items_image/);
    await store.close();
  });

  it("keeps rows that left the manifest, out of the counts, listed as removed, never claimed", async () => {
    const store = openStore();
    await store.syncManifest([planned("a"), planned("b")], "local");
    await store.syncManifest([planned("a")], "local");
    expect((await store.counts()).queued).toBe(1);
    expect((await store.removedFromManifest()).map((i) => i.key)).toEqual(["b"]);
    expect((await store.claimQueued("w", Number.MAX_SAFE_INTEGER, 10, Number.MAX_SAFE_INTEGER)).map((i) => i.key)).toEqual(["a"]);
    await store.close();
  });

  it("hands out queued items in order, none the worker (or another) already holds", async () => {
    const store = openStore();
    await store.syncManifest(["a", "b", "c", "d"].map((k) => planned(k)), "local");
    expect((await store.claimQueued("w", 1_000, 2, 61_000)).map((i) => i.key)).toEqual(["a", "b"]);
    expect((await store.claimQueued("w", 1_000, 5, 61_000)).map((i) => i.key)).toEqual(["c", "d"]);
    expect(await store.claimQueued("w", 1_000, 5, 61_000)).toEqual([]);
    await store.close();
  });

  it("re-queues failed items by row and by code with fresh attempts", async () => {
    const store = openStore();
    await store.syncManifest([planned("a--v1"), planned("a--v2"), planned("b")], "local");
    for (const [key, code] of [["a--v1", "X"], ["a--v2", "Y"], ["b", "X"]] as const) {
      const item = (await store.byKey(key))!;
      await move(store, await move(store, item, "submitting", { attempts: 5 }), "failed", { errorCode: code, errorMessage: "boom" });
    }
    expect((await store.requeue({ codes: ["Y"] })).map((i) => i.key)).toEqual(["a--v2"]);
    expect((await store.requeue({ rowIds: ["b"] })).map((i) => i.key)).toEqual(["b"]);
    expect(await store.byKey("b")).toMatchObject({ state: "queued", attempts: 0, errorCode: null });
    expect((await store.byKey("a--v1"))!.state).toBe("failed");
    await store.close();
  });

  it("gives the lock to one run at a time and takes over a stale one", async () => {
    const dir = tempDir();
    const first = Store.open(join(dir, "m.sqlite"));
    const second = Store.open(join(dir, "m.sqlite"));
    const info = { pid: 111, host: "h", provider: "local", manifestFile: "m.yaml" };
    const a = await first.beginRun(info, () => false);
    expect(a.acquired).toBe(true);
    const b = await second.beginRun({ ...info, pid: 222 }, () => false);
    expect(b).toMatchObject({ acquired: false, holder: { pid: 111, host: "h" } });
    const c = await second.beginRun({ ...info, pid: 222 }, (holder) => holder.pid === 111);
    expect(c).toMatchObject({ acquired: true, tookOverFrom: { pid: 111 } });
    await first.close();
    await second.close();
  });

  it("frees a dead run's claims when the next run closes it, so its items are taken up again", async () => {
    const store = openStore();
    await store.syncManifest([planned("a")], "local");
    const [a] = await store.claimQueued("dead:1", 1_000, 1, Number.MAX_SAFE_INTEGER);
    await move(store, a!, "submitting", { attempts: 1 });
    const begun = await store.beginRun({ pid: 2, host: "h", provider: "local", manifestFile: "m.yaml" }, () => true);
    if (!begun.acquired) throw new Error("unreachable");
    await store.closeAbandonedRuns(begun.run.id);
    expect((await store.claimInFlight("live:2", 2_000, 62_000)).map((i) => [i.key, i.state, i.owner])).toEqual([["a", "submitting", "live:2"]]);
    await store.close();
  });
});
