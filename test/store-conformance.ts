// The behaviour every store backend must show (issue 15's conformance suite), written against
// the store's API with `await` on every call, so the same suite runs unchanged against an
// async port and the PostgreSQL backend. test/store-conformance.sqlite.test.ts runs it on SQLite.
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import type { ProviderName } from "../src/providers/provider.js";
import type { Store } from "../src/store/store.js";

/** What the suite needs of a backend: a fresh, empty store per call, on a clock the test moves. */
export interface ConformanceBackend {
  open(clock: { t: number }): Promise<Store> | Store;
}

export function planned(key: string, prompt = `a picture of ${key}`, provider: ProviderName = "local"): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key.split("--")[0]!, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt, model: "seedream3.0", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, provider) };
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
      const submitting = await store.transition(queued, "submitting", { attempts: 1, submittedAt: 2_000 }, "attempt 1");
      expect(submitting).toMatchObject({ state: "submitting", attempts: 1, updatedAt: 2_000 });
      await refusal(() => store.transition(queued, "submitting")).toThrow(/no longer queued/);
      await refusal(() => store.transition(submitting, "done")).toThrow(/illegal transition/);
      const running = await store.transition(submitting, "running", { jobId: "job-1" });
      await store.commitGroup();
      expect((await store.events(running.id)).map((e) => [e.from, e.to])).toEqual([[null, "queued"], ["queued", "submitting"], ["submitting", "running"]]);
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
      let item = (await store.byKey("a"))!;
      item = await store.transition(item, "submitting", { attempts: 1 });
      item = await store.transition(item, "running", { jobId: "j" });
      item = await store.transition(item, "downloading", { credits: 0.6 });
      await store.transition(item, "done", { sha256: "s", filePath: "images/a.png", bytes: 1 });
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
        const submitting = await store.transition(item, "submitting", { attempts: 1 });
        if (key === "b") {
          const running = await store.transition(submitting, "running", { jobId: "job-b" });
          const downloading = await store.transition(running, "downloading", { credits: 0.6 });
          await store.transition(downloading, "failed", { errorCode: "DOWNLOAD_TRUNCATED" });
        } else await store.transition(submitting, "failed", { errorCode: key === "a--v1" ? "X" : "Y" });
      }
      expect((await store.requeueFailed({ rowIds: ["a--v2"] })).map((i) => i.key)).toEqual(["a--v2"]);
      expect((await store.requeueFailed({ codes: ["X"] })).map((i) => i.key)).toEqual(["a--v1"]);
      const b = await store.requeueFailed({ keys: ["b"] });
      expect(b.map((i) => [i.key, i.state, i.jobId])).toEqual([["b", "downloading", "job-b"]]);
      await store.close();
    });

    it("keeps runs and the lock: a second run is refused while the first lives, a stale one is taken over", async () => {
      const clock = { t: 1_000 };
      const store = await backend.open(clock);
      const info = { pid: 1, host: "h", provider: "local", manifestFile: "/m.yaml" };
      const first = await store.beginRun(info, () => false);
      expect(first.acquired).toBe(true);
      const refused = await store.beginRun({ ...info, pid: 2 }, () => false);
      expect(refused).toMatchObject({ acquired: false, holder: { pid: 1 } });
      const taken = await store.beginRun({ ...info, pid: 3 }, () => true);
      expect(taken).toMatchObject({ acquired: true, tookOverFrom: { pid: 1 } });
      if (!taken.acquired) throw new Error("unreachable");
      expect(await store.closeAbandonedRuns(taken.run.id)).toBe(1);
      await store.endRun(taken.run.id, { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 });
      await store.releaseLock(taken.run.id);
      expect(await store.lockHolder()).toBeNull();
      expect((await store.recentRuns(5)).map((r) => r.outcome)).toEqual(["done", "died"]);
      await store.close();
    });

    it("reads the live items back for reports, in the manifest's order", async () => {
      const store = await backend.open({ t: 1_000 });
      await sync(store, [planned("b"), planned("a"), planned("c")]);
      expect([...(await store.liveItemsInSheetOrder())].map((i) => i.item.key)).toEqual(["b", "a", "c"]);
      await store.keepManifestOrder(["c", "b", "a"]);
      expect([...(await store.liveItemsInSheetOrder())].map((i) => i.item.key)).toEqual(["c", "b", "a"]);
      expect([...(await store.liveItems())].map((i) => i.item.key)).toEqual(["b", "a", "c"]);
      await store.close();
    });
  });
}
