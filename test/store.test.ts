import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { canTransition, ITEM_STATES } from "../src/store/states.js";
import { Store } from "../src/store/store.js";
import { abandonsPaidJob, planSync, replacesPaidImage } from "../src/store/sync.js";
import { useTempDir } from "./helpers/tmp.js";

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

  it("done leaves only to be delivered again (its image went missing), never to a new submit", () => {
    expect(ITEM_STATES.filter((to) => canTransition("done", to))).toEqual(["downloading"]);
  });

  it("missing is paid for again only through the queue (an explicit retry)", () => {
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

  it("marks keys that left the manifest, and those that came back", () => {
    const plan = planSync([planned("a")], [
      { id: 1, key: "a", requestHash: planned("a").requestHash, inManifest: false },
      { id: 2, key: "gone", requestHash: "x", inManifest: true },
    ]);
    expect(plan.markPresent).toEqual([1]);
    expect(plan.markRemoved).toEqual([2]);
  });
});

describe("Store", () => {
  it("opens with WAL, synchronous FULL and the latest schema", () => {
    const store = openStore();
    expect(store.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(store.db.pragma("synchronous", { simple: true })).toBe(2);
    expect(store.schemaVersion()).toBeGreaterThanOrEqual(2);
    expect(store.integrityCheck()).toBe("ok");
    store.close();
  });

  it("writes each transition with its event, and refuses a stale or illegal one", () => {
    const clock = { t: 1_000 };
    const store = openStore(clock);
    store.syncManifest([planned("a")], "local");
    const queued = store.byKey("a")!;
    clock.t = 2_000;
    const submitting = store.transition(queued, "submitting", { attempts: 1, submittedAt: 2_000 }, "attempt 1");
    expect(submitting).toMatchObject({ state: "submitting", attempts: 1, submittedAt: 2_000, updatedAt: 2_000 });
    // The caller's copy is stale now: the move must not happen twice.
    expect(() => store.transition(queued, "submitting")).toThrow(/no longer queued/);
    expect(() => store.transition(submitting, "done")).toThrow(/illegal transition/);
    const running = store.transition(submitting, "running", { jobId: "job-1" });
    expect(store.events(running.id).map((e) => [e.from, e.to, e.detail])).toEqual([
      [null, "queued", "planned from manifest"],
      ["queued", "submitting", "attempt 1"],
      ["submitting", "running", null],
    ]);
    store.close();
  });

  it("returns exactly the record the row now holds after a transition, an update or a note", () => {
    const clock = { t: 1_000 };
    const store = openStore(clock);
    store.syncManifest([planned("a")], "local");
    let item = store.byKey("a")!;
    const steps: (() => typeof item)[] = [
      () => store.transition(item, "submitting", { attempts: 1, submittedAt: 2_000, errorCode: null }, "attempt 1"),
      () => store.note(item, "reconcile: looking again", { nextAttemptAt: 9_000, errorCode: "HTTP_503", errorMessage: "lost" }),
      () => store.transition(item, "running", { jobId: "job-1", nextAttemptAt: 3_000, errorCode: undefined }),
      () => store.update(item, { resultUrl: "https://x/y.png" }),
      () => store.transition(item, "downloading", { credits: 0.6, imageRef: "img-1", resultWidth: 64, resultHeight: 64 }),
      () => store.transition(item, "done", { filePath: "/o/a.png", sha256: "ab", width: 64, height: 64, format: "png", bytes: 10, completedAt: 5_000 }),
    ];
    for (const step of steps) {
      clock.t += 500;
      item = step();
      expect(item).toEqual(store.get(item.id));
    }
    store.close();
  });

  it("commits a turn's state changes together, fsynced when one is a submit, and `committed` waits for that", async () => {
    const store = openStore();
    const other = new Database(store.db.name, { readonly: true });
    const committedState = (key: string) => (other.prepare("SELECT state FROM items WHERE key = ?").get(key) as { state: string }).state;
    const synchronous = () => store.db.pragma("synchronous", { simple: true });
    store.syncManifest([planned("a"), planned("b"), planned("c")], "local");
    expect(synchronous()).toBe(2); // FULL

    const a = store.transition(store.byKey("a")!, "submitting", { attempts: 1 });
    const b = store.transition(store.byKey("b")!, "submitting", { attempts: 1 });
    expect(synchronous()).toBe(2);
    expect(store.byKey("a")!.state).toBe("submitting"); // the store reads its own changes at once
    expect([committedState("a"), committedState("b")]).toEqual(["queued", "queued"]); // others do not, yet
    await store.committed();
    expect([committedState("a"), committedState("b")]).toEqual(["submitting", "submitting"]);

    // An item's later steps commit without fsync: alone in their turn, NORMAL.
    const running = store.transition(a, "running", { jobId: "job-1" });
    expect(synchronous()).toBe(1); // NORMAL
    // A submit in that same turn cannot wait for a NORMAL commit: the group commits, a FULL one opens.
    store.transition(store.byKey("c")!, "submitting", { attempts: 1 });
    expect(committedState("a")).toBe("running");
    expect(synchronous()).toBe(2);
    store.transition(b, "failed", { errorCode: "X" }); // joins the FULL group
    await store.committed();
    expect([committedState("b"), committedState("c")]).toEqual(["failed", "submitting"]);

    store.transition(running, "failed", { errorCode: "X" });
    store.requeueFailed(); // bookkeeping: the open group commits first, then this alone, FULL
    expect(synchronous()).toBe(2);
    expect([committedState("a"), committedState("b")]).toEqual(["queued", "queued"]);
    // Every change is still in the history, one event each.
    const events = store.db.prepare("SELECT COUNT(*) AS n FROM events WHERE from_state IS NOT NULL").get() as { n: number };
    expect(events.n).toBe(8);
    other.close();
    store.close();
  });

  it("a group that does not commit fails its submits and every later write, so nothing is sent for them", async () => {
    const store = openStore();
    const other = new Database(store.db.name, { readonly: true });
    store.syncManifest([planned("a"), planned("b")], "local");
    const a = store.transition(store.byKey("a")!, "submitting", { attempts: 1 });
    const committed = store.committed();
    // What SQLite does by itself on an I/O error or a full disk: the whole open transaction goes.
    store.db.exec("ROLLBACK");
    expect(() => store.transition(store.byKey("b")!, "submitting", { attempts: 1 })).toThrow(/could not commit/);
    await expect(committed).rejects.toMatchObject({ code: "DB_COMMIT_FAILED", exitCode: 3 });
    expect((other.prepare("SELECT state FROM items WHERE key = 'a'").get() as { state: string }).state).toBe("queued");
    // The records in memory no longer match the database: no later write gets through.
    expect(() => store.transition(a, "running", { jobId: "job-1" })).toThrow(/could not commit/);
    expect(() => store.endRun(1, { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 })).toThrow(/could not commit/);
    expect(store.failure?.code).toBe("DB_COMMIT_FAILED");
    other.close();
    store.close();
  });

  it("supersedes an item whose request changed and never touches an unchanged done item", () => {
    const store = openStore();
    store.syncManifest([planned("a"), planned("b")], "local");
    let a = store.byKey("a")!;
    a = store.transition(a, "submitting");
    a = store.transition(a, "running", { jobId: "j" });
    a = store.transition(a, "downloading");
    a = store.transition(a, "done", { sha256: "abc" });
    const plan = store.syncManifest([planned("a"), planned("b", "a different prompt for b")], "local");
    expect(plan.unchanged).toBe(1);
    expect(plan.supersede.map((s) => s.key)).toEqual(["b"]);
    expect(store.byKey("a")).toMatchObject({ id: a.id, state: "done", sha256: "abc", updatedAt: a.updatedAt });
    const b = store.byKey("b")!;
    expect(b.request.prompt).toBe("a different prompt for b");
    expect(b.state).toBe("queued");
    const old = store.db.prepare("SELECT COUNT(*) AS n FROM items WHERE key = 'b' AND superseded_at IS NOT NULL").get() as { n: number };
    expect(old.n).toBe(1);
    store.close();
  });

  it("tells whether any record, superseded ones too, owns a job id or an adopted image, by index", () => {
    const store = openStore();
    store.syncManifest([planned("a"), planned("b")], "local");
    let a = store.transition(store.byKey("a")!, "submitting");
    a = store.transition(a, "running", { jobId: "job-a" });
    let b = store.transition(store.byKey("b")!, "submitting");
    b = store.transition(b, "downloading", { imageRef: "img-b" });
    // b's request changes: its old record, image and all, is kept for history and still owns it.
    store.syncManifest([planned("a"), planned("b", "a new prompt for b")], "local");
    expect(["job-a", "img-b", "job-x", "img-x"].map((ref) => store.isClaimed(ref))).toEqual([true, true, false, false]);
    // One indexed lookup per ref a search meets, not a scan of every record.
    const plan = store.db.prepare("EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM items WHERE job_id = @ref) OR EXISTS (SELECT 1 FROM items WHERE image_ref = @ref)").all({ ref: "x" }) as { detail: string }[];
    expect(plan.map((p) => p.detail).join("\n")).toMatch(/USING COVERING INDEX items_job[\s\S]*USING COVERING INDEX items_image/);
    store.close();
  });

  it("keeps rows that left the manifest, out of the counts, listed as removed", () => {
    const store = openStore();
    store.syncManifest([planned("a"), planned("b")], "local");
    store.syncManifest([planned("a")], "local");
    expect(store.counts().queued).toBe(1);
    expect(store.removedFromManifest().map((i) => i.key)).toEqual(["b"]);
    expect(store.nextQueued(Number.MAX_SAFE_INTEGER, 10).map((i) => i.key)).toEqual(["a"]);
    store.close();
  });

  it("hands out queued items in order, skipping those the runner already holds", () => {
    const store = openStore();
    store.syncManifest(["a", "b", "c", "d"].map((k) => planned(k)), "local");
    const ids = new Map(["a", "b", "c", "d"].map((k) => [k, store.byKey(k)!.id]));
    expect(store.nextQueued(Number.MAX_SAFE_INTEGER, 2).map((i) => i.key)).toEqual(["a", "b"]);
    expect(store.nextQueued(Number.MAX_SAFE_INTEGER, 2, new Set([ids.get("a")!, ids.get("c")!])).map((i) => i.key)).toEqual(["b", "d"]);
    expect(store.nextQueued(Number.MAX_SAFE_INTEGER, 5, new Set(ids.values()))).toEqual([]);
    store.close();
  });

  it("re-queues failed items by row and by code with fresh attempts", () => {
    const store = openStore();
    store.syncManifest([planned("a--v1"), planned("a--v2"), planned("b")], "local");
    for (const [key, code] of [["a--v1", "X"], ["a--v2", "Y"], ["b", "X"]] as const) {
      const item = store.byKey(key)!;
      store.transition(store.transition(item, "submitting", { attempts: 5 }), "failed", { errorCode: code, errorMessage: "boom" });
    }
    expect(store.requeueFailed({ codes: ["Y"] }).map((i) => i.key)).toEqual(["a--v2"]);
    expect(store.requeueFailed({ rowIds: ["b"] }).map((i) => i.key)).toEqual(["b"]);
    expect(store.byKey("b")).toMatchObject({ state: "queued", attempts: 0, errorCode: null });
    expect(store.byKey("a--v1")!.state).toBe("failed");
    store.close();
  });

  it("gives the lock to one run at a time and takes over a stale one", () => {
    const dir = tempDir();
    const first = Store.open(join(dir, "m.sqlite"));
    const second = Store.open(join(dir, "m.sqlite"));
    const info = { pid: 111, host: "h", provider: "local", manifestFile: "m.yaml" };
    const a = first.beginRun(info, () => false);
    expect(a.acquired).toBe(true);
    const b = second.beginRun({ ...info, pid: 222 }, () => false);
    expect(b).toMatchObject({ acquired: false, holder: { pid: 111, host: "h" } });
    const c = second.beginRun({ ...info, pid: 222 }, (holder) => holder.pid === 111);
    expect(c).toMatchObject({ acquired: true, tookOverFrom: { pid: 111 } });
    first.close();
    second.close();
  });
});
