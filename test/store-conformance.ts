// The behaviour every store backend must show (issue 15's conformance suite), written against
// the store port (src/store/port.ts) with `await` on every call, so the same suite runs
// unchanged against the PostgreSQL backend. store-conformance.sqlite.test.ts runs it on SQLite.
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import type { ProviderName } from "../src/providers/provider.js";
import type { ItemWrite, Store } from "../src/store/port.js";
import type { ItemState } from "../src/store/states.js";
import type { ItemPatch, ItemRecord } from "../src/store/types.js";

/** What the suite needs of a backend: a fresh, empty store per call, on a clock the test moves. */
export interface ConformanceBackend {
  open(clock: { t: number }): Promise<Store> | Store;
}

export function planned(key: string, prompt = `a picture of ${key}`, provider: ProviderName = "local"): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key.split("--")[0]!, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt, model: "seedream3.0", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, provider) };
}

/** One write that moves an item (the suite's shorthand for store.write). */
const move = (store: Store, item: ItemRecord, to: ItemState, set: ItemPatch = {}, note: string | null = null, extra: Partial<ItemWrite> = {}) => store.write(item, { to, set, note, ...extra });

/** Takes an item through a paid job to `done`, as a run would (claimed, then moved). */
async function deliver(store: Store, key: string, worker = "w1", done: ItemPatch = {}): Promise<ItemRecord> {
  const [item] = await store.claimQueued(worker, 0, 1, Number.MAX_SAFE_INTEGER);
  expect(item?.key).toBe(key);
  let at = await move(store, item!, "submitting", { attempts: 1 }, null, { durable: true });
  at = await move(store, at, "running", { jobId: `job-${key}` });
  at = await move(store, at, "downloading", { credits: 0.6 });
  return move(store, at, "done", { sha256: "s", filePath: `images/${key}.png`, bytes: 1, ...done });
}

/** A call's refusal, whether the backend throws at once or rejects later. */
const refusal = (call: () => unknown) => expect(Promise.resolve().then(call)).rejects;

const sync = (store: Store, items: ReturnType<typeof planned>[], provider: ProviderName = "local", rules: { allowProviderSwitch?: boolean; abandonInFlight?: boolean } = {}) =>
  store.syncManifest(items, provider, { hashWith: requestHash, ...rules });

export function describeStoreConformance(name: string, backend: ConformanceBackend): void {
  describe(`store conformance: ${name}`, () => {
    it("writes each transition with its event, and refuses a stale or illegal one", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      await sync(store, [planned("a")]);
      const queued = (await store.byKey("a"))!;
      clock.t = 2_000;
      const submitting = await move(store, queued, "submitting", { attempts: 1, submittedAt: 2_000 }, "attempt 1", { durable: true });
      expect(submitting).toMatchObject({ state: "submitting", attempts: 1, updatedAt: 2_000 });
      await refusal(() => move(store, queued, "submitting")).toThrow(/no longer queued/);
      await refusal(() => move(store, submitting, "done")).toThrow(/illegal transition/);
      const running = await move(store, submitting, "running", { jobId: "job-1" });
      // Columns alone write no event; a note does, without a move.
      const read = await store.write(running, { set: { polls: 1, nextAttemptAt: 5_000 } });
      await store.write(read, { note: "looked" });
      await store.flush();
      expect((await store.events(running.id)).map((e) => [e.from, e.to, e.detail])).toEqual([
        [null, "queued", "planned from manifest"],
        ["queued", "submitting", "attempt 1"],
        ["submitting", "running", null],
        ["running", "running", "looked"],
      ]);
      expect((await store.get(running.id))!).toMatchObject({ polls: 1, nextAttemptAt: 5_000 });
      expect(await store.isClaimed("job-1")).toBe(true);
      await store.close();
    });

    it("syncs a manifest: inserts, keeps unchanged items, supersedes changed ones, marks removed and returned keys", async () => {
      const store = await backend.open({ t: 1_000 });
      const first = await sync(store, [planned("a"), planned("b"), planned("c")]);
      expect(first.inserted).toBe(3);
      const second = await sync(store, [planned("a"), planned("b", "another picture of b")]);
      expect([second.inserted, second.unchanged, second.removed, second.supersede.map((s) => s.key)]).toEqual([1, 1, 1, ["b"]]);
      expect((await store.removedFromManifest()).map((i) => i.key)).toEqual(["c"]);
      const third = await sync(store, [planned("a"), planned("b", "another picture of b"), planned("c")]);
      expect(third.returned).toBe(1);
      expect(await store.counts()).toMatchObject({ queued: 3 });
      await store.close();
    });

    it("refuses a sync that would remake a paying provider's done item with another provider, writing nothing", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a", undefined, "pictory")], "pictory");
      await deliver(store, "a");
      await refusal(() => sync(store, [planned("a")], "local")).toThrow(/made anew by another provider/);
      expect((await store.byKey("a"))!.state).toBe("done");
      expect(await store.rememberedProvider()).toBe("pictory");
      const switched = await sync(store, [planned("a")], "local", { allowProviderSwitch: true });
      expect(switched.supersede.map((s) => [s.key, s.reason])).toEqual([["a", "provider"]]);
      // Asked for again, the paid record comes back instead of a new one.
      const back = await sync(store, [planned("a", undefined, "pictory")], "pictory");
      expect(back.revived.map((r) => r.key)).toEqual(["a"]);
      expect((await store.byKey("a"))!.state).toBe("done");
      await store.close();
    });

    it("re-queues failed items by row, key and code; a charged job is read again instead of paid again", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a--v1"), planned("a--v2"), planned("b")]);
      for (const key of ["a--v1", "a--v2", "b"]) {
        const item = (await store.byKey(key))!;
        const submitting = await move(store, item, "submitting", { attempts: 1 });
        if (key === "b") {
          const running = await move(store, submitting, "running", { jobId: "job-b" });
          const downloading = await move(store, running, "downloading", { credits: 0.6 });
          await move(store, downloading, "failed", { errorCode: "DOWNLOAD_TRUNCATED" });
        } else await move(store, submitting, "failed", { errorCode: key === "a--v1" ? "X" : "Y" });
      }
      expect((await store.requeue({ rowIds: ["a--v2"] })).map((i) => i.key)).toEqual(["a--v2"]);
      expect((await store.requeue({ codes: ["X"] })).map((i) => i.key)).toEqual(["a--v1"]);
      const b = await store.requeue({ keys: ["b"] });
      expect(b.map((i) => [i.key, i.state, i.jobId])).toEqual([["b", "downloading", "job-b"]]);
      await store.close();
    });

    it("keeps runs: a run of another manifest is refused while a live one runs; a second worker of the same one shares the run only where the backend shares runs", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      const info = { pid: 1, host: "h", provider: "local", manifestFile: "/m.yaml", manifestHash: "aaa" };
      const first = await store.beginRun(info, () => false);
      expect(first.acquired).toBe(true);
      const refused = await store.beginRun({ ...info, pid: 2, manifestHash: "bbb" }, () => false);
      expect(refused).toMatchObject({ acquired: false, holder: { pid: 1 } });
      const second = await store.beginRun({ ...info, pid: 3 }, () => false);
      expect(second.acquired).toBe(store.sharesRuns);
      if (second.acquired) await store.endRun(second.run.id, { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 });
      // Once the first is gone (its process dead), another version of the manifest may start.
      clock.t = 1_000 + 10 * 60_000;
      const taken = await store.beginRun({ ...info, pid: 4, manifestHash: "bbb" }, () => true);
      expect(taken.acquired).toBe(true);
      if (!taken.acquired) throw new Error("unreachable");
      expect(await store.closeAbandonedRuns(taken.run.id)).toBe(1);
      await store.endRun(taken.run.id, { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 });
      await store.releaseLock(taken.run.id);
      expect((await store.recentRuns(5)).map((r) => r.outcome)).toEqual(store.sharesRuns ? ["done", "done", "died"] : ["done", "died"]);
      await store.close();
    });

    it("reads the live items back for reports, in the manifest's order", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("b"), planned("a"), planned("c")]);
      expect((await keysOf(store.liveItemsInSheetOrder()))).toEqual(["b", "a", "c"]);
      await store.keepManifestOrder(["c", "b", "a"]);
      expect(await keysOf(store.liveItemsInSheetOrder())).toEqual(["c", "b", "a"]);
      expect(await keysOf(store.liveItems())).toEqual(["b", "a", "c"]);
      await store.close();
    });

    it("reads every live item of a large manifest back, page after page, with its row group", async () => {
      const store = await backend.open({ t: 1_000 });
      const keys = Array.from({ length: 1_203 }, (_, i) => `r${Math.floor(i / 3)}--v${(i % 3) + 1}`);
      await sync(store, keys.map((k) => planned(k)));
      const sheet: { key: string; startsGroup: boolean; groupSize: number }[] = [];
      for await (const at of store.liveItemsInSheetOrder()) sheet.push({ key: at.item.key, startsGroup: at.startsGroup, groupSize: at.groupSize });
      expect(sheet.map((s) => s.key)).toEqual(keys);
      expect(sheet.filter((s) => s.startsGroup).length).toBe(401);
      expect(new Set(sheet.map((s) => s.groupSize))).toEqual(new Set([3]));
      expect((await keysOf(store.liveItems())).length).toBe(1_203);
      await store.close();
    });

    it("gives a claim once: a claimed item is nobody else's until its lease runs out, and each claim bumps the epoch", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a"), planned("b"), planned("c")]);
      const one = await store.claimQueued("w1", 1_000, 2, 61_000);
      const two = await store.claimQueued("w2", 1_000, 5, 61_000);
      expect(one.map((i) => [i.key, i.owner, i.claimEpoch, i.leaseUntil])).toEqual([["a", "w1", 1, 61_000], ["b", "w1", 1, 61_000]]);
      expect(two.map((i) => [i.key, i.owner])).toEqual([["c", "w2"]]);
      expect(await store.claimQueued("w2", 1_000, 5, 61_000)).toEqual([]);
      // w1 stops renewing; past its lease w2 takes its items over, under a new epoch.
      await store.renewLeases("w2", 121_000);
      const taken = await store.claimQueued("w2", 62_000, 5, 122_000);
      expect(taken.map((i) => [i.key, i.owner, i.claimEpoch])).toEqual([["a", "w2", 2], ["b", "w2", 2]]);
      await store.close();
    });

    it("refuses a stale writer's write (another owner, or an older claim) and changes nothing", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a")]);
      const [old] = await store.claimQueued("w1", 1_000, 1, 2_000);
      const [fresh] = await store.claimQueued("w2", 3_000, 1, 63_000);
      expect(fresh!.claimEpoch).toBe(old!.claimEpoch + 1);
      await refusal(() => move(store, old!, "submitting", { attempts: 1 })).toThrow(expect.objectContaining({ name: "ClaimLostError" }));
      await refusal(() => store.write(old!, { set: { nextAttemptAt: 9 } })).toThrow(expect.objectContaining({ name: "ClaimLostError" }));
      expect((await store.byKey("a"))!).toMatchObject({ state: "queued", attempts: 0, owner: "w2", nextAttemptAt: 0 });
      const submitting = await move(store, fresh!, "submitting", { attempts: 1 }, null, { durable: true });
      expect(submitting).toMatchObject({ owner: "w2", claimEpoch: fresh!.claimEpoch });
      await store.close();
    });

    it("lets a claim go when the item comes to rest, and on release; in-flight items are claimed again where they stood", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a"), planned("b")]);
      const done = await deliver(store, "a");
      expect(done).toMatchObject({ state: "done", owner: null, leaseUntil: null });
      const [b] = await store.claimQueued("w1", 1_000, 1, 61_000);
      const submitting = await move(store, b!, "submitting", { attempts: 1 });
      const running = await move(store, submitting, "running", { jobId: "job-b", nextAttemptAt: 7_000 });
      await store.write(running, { set: { polls: 3, readFailures: 1 } });
      // Held by a live claim: not taken.
      expect(await store.claimInFlight("w2", 2_000, 62_000)).toEqual([]);
      await store.releaseClaims("w1");
      const [resumed] = await store.claimInFlight("w2", 2_000, 62_000);
      expect(resumed).toMatchObject({ key: "b", state: "running", jobId: "job-b", nextAttemptAt: 7_000, polls: 3, readFailures: 1, owner: "w2" });
      // An item at rest is claimed for a delivery again (a lost image), once.
      expect(await store.claimAtRest(done.id, "w2", 2_000, 62_000)).toMatchObject({ key: "a", owner: "w2" });
      expect(await store.claimAtRest(done.id, "w3", 2_000, 62_000)).toBeNull();
      await store.close();
    });

    it("keeps review decisions per image, with history; undo restores the one before; a remade image starts undecided", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      await sync(store, [planned("a"), planned("b")]);
      const a = await deliver(store, "a");
      await deliver(store, "b");
      const mark = await store.changeMark();
      await store.recordDecision({ key: "a", sha256: a.sha256!, decision: "approved", note: null, reviewer: "ana" });
      expect(await store.changeMark()).not.toBe(mark);
      clock.t = 2_000;
      await store.recordDecision({ key: "a", sha256: a.sha256!, decision: "rejected", note: "logo cut off", reviewer: "ben" });
      await store.recordDecision({ key: "b", sha256: "s", decision: "approved", note: null, reviewer: "ana" });
      expect([...(await store.currentDecisions()).values()].map((d) => [d.key, d.decision, d.note, d.reviewer])).toEqual(expect.arrayContaining([["a", "rejected", "logo cut off", "ben"], ["b", "approved", null, "ana"]]));
      expect(await store.undoDecision("a", a.sha256!, "ben")).toMatchObject({ decision: "approved" });
      expect((await store.currentDecisions()).get("a")).toMatchObject({ decision: "approved" });
      await store.recordDecision({ key: "a", sha256: a.sha256!, decision: "rejected", note: "still cut off", reviewer: "ben" });
      expect((await store.decisionHistory("a")).map((d) => d.decision)).toEqual(["approved", "rejected", "approved", "rejected"]);
      // retry --rejected: only a is made anew; its rejected record stays, superseded, with its credits.
      const remade = await store.requeue({ rejected: true });
      expect(remade.map((i) => [i.key, i.state, i.sha256])).toEqual([["a", "queued", null]]);
      expect((await store.currentDecisions()).has("a")).toBe(false);
      expect((await store.byKey("b"))!.state).toBe("done");
      expect(await store.totalCredits()).toBeCloseTo(1.2);
      expect(await store.requeue({ rejected: true })).toEqual([]);
      await store.close();
    });

    it("reads a delivered image's rowmates for the duplicate gate: the row's other done images, a key a later sync adds to the row included", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("solo"), planned("pair--1"), planned("pair--2")]);
      await deliver(store, "solo", "w1", { phash: "00ff00ff00ff00ff" });
      await deliver(store, "pair--1", "w1", { phash: "0f0f0f0f0f0f0f0f" });
      expect(await store.rowImages("solo", "solo")).toEqual([]);
      expect(await store.rowImages("pair", "pair--2")).toEqual([{ key: "pair--1", phash: "0f0f0f0f0f0f0f0f", qcFlags: [] }]);
      expect(await store.rowImages("pair", "pair--1")).toEqual([]);
      // The row that made one item makes two now: its first image is the new one's rowmate.
      await sync(store, [planned("solo"), planned("solo--2"), planned("pair--1"), planned("pair--2")]);
      expect(await store.rowImages("solo", "solo--2")).toEqual([{ key: "solo", phash: "00ff00ff00ff00ff", qcFlags: [] }]);
      await store.close();
    });

    it("remakes a done item for a quality gate, carrying the count of remakes", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("a")]);
      const done = await store.write(await deliver(store, "a"), { set: { qcFlags: [{ gate: "blank", mode: "retry", message: "a flat frame" }], phash: "0000000000000000" } });
      expect((await store.byKey("a"))!).toMatchObject({ qcFlags: [{ gate: "blank" }], phash: "0000000000000000" });
      const again = await store.remake(done, "quality gate blank: remade (1 of 1)", { qcRetries: 1 });
      expect(again).toMatchObject({ key: "a", state: "queued", qcRetries: 1, qcFlags: [], sha256: null });
      expect((await store.claimQueued("w", 1_000, 5, 61_000)).map((i) => i.id)).toEqual([again.id]);
      await store.close();
    });

    it("reads for a plan, writing nothing: each key's live record as the sync sees it, earlier done records, and job times", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      await sync(store, [planned("a"), planned("b"), planned("c")]);
      // a: submitted at 2 s, seen complete at 5 s, done at 5.6 s.
      const [a] = await store.claimQueued("w1", 1_000, 1, Number.MAX_SAFE_INTEGER);
      clock.t = 2_000;
      let at = await move(store, a!, "submitting", { attempts: 1, submittedAt: 2_000 }, null, { durable: true });
      at = await move(store, at, "running", { jobId: "job-a" });
      clock.t = 5_000;
      at = await move(store, at, "downloading", { credits: 0.6 });
      clock.t = 5_600;
      await move(store, at, "done", { sha256: "s", filePath: "images/a.png", bytes: 1, completedAt: 5_600 });
      await deliver(store, "b");
      // b's request changes: its done record is superseded, a new one queued.
      await sync(store, [planned("a"), planned("b", "another picture of b"), planned("c")]);
      await store.flush();
      const counts = await store.counts();
      const digests = await store.planDigests(["a", "b", "c", "d"]);
      expect(digests.live.map((d) => [d.key, d.state, d.requestHash === planned(d.key, d.key === "b" ? "another picture of b" : undefined).requestHash]).sort()).toEqual([
        ["a", "done", true],
        ["b", "queued", true],
        ["c", "queued", true],
      ]);
      expect(digests.doneBefore).toEqual([["b", planned("b").requestHash]]);
      expect(await store.jobTimings(10)).toEqual([{ provider: "local", model: "seedream3.0", serviceMs: 3_000, imageMs: 600 }]);
      // Reads only: the counts are as they were.
      expect(await store.counts()).toEqual(counts);
      await store.close();
    });

    it("keeps each reference file's upload per service, one record per file, replaced when uploaded again", async () => {
      const store = await backend.open({ t: 1_000 });
      const upload = { sha256: "a".repeat(64), service: "https://api.example/pictoryapis", url: "https://cdn.example/refs/earbuds.png", key: "public/teams/t/earbuds.png", contentType: "image/png", bytes: 2048, uploadedAt: 1_000 };
      expect(await store.uploadOf(upload.sha256, upload.service)).toBeUndefined();
      await store.recordUpload(upload);
      await store.flush();
      expect(await store.uploadOf(upload.sha256, upload.service)).toEqual(upload);
      // Another service (the simulator, another base URL) has not seen the file; another file is another record.
      expect(await store.uploadOf(upload.sha256, "http://127.0.0.1:9/pictoryapis")).toBeUndefined();
      expect(await store.uploadOf("b".repeat(64), upload.service)).toBeUndefined();
      await store.recordUpload({ ...upload, url: "https://cdn.example/refs/earbuds-2.png", key: null, uploadedAt: 2_000 });
      expect(await store.uploadOf(upload.sha256, upload.service)).toEqual({ ...upload, url: "https://cdn.example/refs/earbuds-2.png", key: null, uploadedAt: 2_000 });
      await store.close();
    });

    it("shares a key's limits between the workers of a shared run: --concurrency at claim time, one request bucket, one pause", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      if (!store.sharesRuns) {
        // One worker holds a SQLite run: its own slots and in-memory bucket are the key's.
        expect(await store.takeRequestToken("k", 60, 1)).toBe(0);
        await store.close();
        return;
      }
      await sync(store, ["a", "b", "c", "d", "e"].map((k) => planned(k)));
      const one = await store.claimQueued("w1", 1_000, 2, 61_000, 3);
      const two = await store.claimQueued("w2", 1_000, 5, 61_000, 3);
      expect(one.length + two.length).toBe(3);
      await move(store, one[0]!, "submitting", { attempts: 1 });
      expect(await store.claimQueued("w3", 1_000, 5, 61_000, 3)).toEqual([]);
      // Two tokens of a burst of 2, then a wait; a pause holds every taker.
      expect([await store.takeRequestToken("key", 60, 2), await store.takeRequestToken("key", 60, 2)]).toEqual([0, 0]);
      expect(await store.takeRequestToken("key", 60, 2)).toBeGreaterThan(0);
      await store.pauseKey("other", clock.t + 30_000);
      expect(await store.takeRequestToken("other", 1e9, 1e9)).toBeGreaterThan(20_000);
      await store.close();
    });
  });
}

async function keysOf(items: AsyncIterable<{ item: { key: string } }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const at of items) keys.push(at.item.key);
  return keys;
}
