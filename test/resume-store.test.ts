// The run history the store keeps for `status`: a run whose process died is closed by the next
// run with figures from its own events, and each run's failure reasons come from its events,
// so they stay as they were after the items are retried.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { useTempDir } from "./helpers/tmp.js";
import { move } from "./helpers/store.js";

const tempDir = useTempDir();

function planned(key: string): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt: `a picture of ${key}`, model: "flux-schnell", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "pictory") };
}

const RUN = { pid: 4242, host: "here", provider: "pictory", manifestFile: "m.yaml" };

describe("run history", () => {
  it("closes a dead run with its own figures, and keeps each run's failure reasons", async () => {
    const clock = { t: 1_000 };
    const store = Store.open(join(tempDir(), "m.sqlite"), { now: () => clock.t });
    await store.syncManifest(["a", "b", "c"].map(planned), "pictory");

    // Run 1 makes one picture, fails two items, then its process dies (no endRun).
    const first = await store.beginRun(RUN, () => false);
    if (!first.acquired) throw new Error("lock refused");
    clock.t = 2_000;
    let a = await move(store, (await store.byKey("a"))!, "submitting", { attempts: 1 });
    a = await move(store, a, "running", { jobId: "job-a" });
    a = await move(store, a, "downloading", { credits: 0.6 });
    clock.t = 3_000;
    await move(store, a, "done");
    await move(store, await move(store, (await store.byKey("b"))!, "submitting"), "failed", { errorCode: "CONTENT_POLICY_VIOLATION", errorMessage: "policy" }, "policy");
    clock.t = 4_000;
    await move(store, await move(store, (await store.byKey("c"))!, "submitting"), "failed", { errorCode: "CONTENT_POLICY_VIOLATION", errorMessage: "policy" }, "policy");

    clock.t = 60_000;
    const second = await store.beginRun({ ...RUN, pid: 4343 }, () => true);
    if (!second.acquired) throw new Error("stale lock not taken over");
    expect(second.tookOverFrom).toMatchObject({ pid: 4242, host: "here", startedAt: 1_000 });
    expect(await store.closeAbandonedRuns(second.run.id)).toBe(1);
    expect(await store.run(first.run.id)).toMatchObject({
      outcome: "died",
      exitCode: null,
      stopReason: "no clean exit: killed or crashed",
      endedAt: 4_000, // its last event
      itemsDone: 1,
      itemsFailed: 2,
      credits: 0.6,
    });
    expect(await store.run(second.run.id)).toMatchObject({ outcome: null, endedAt: null });

    // Run 2 retries both; one fails again, for another reason.
    await store.requeue({});
    await move(store, await move(store, (await store.byKey("b"))!, "submitting"), "failed", { errorCode: "IMAGE_GENERATION_FAILED", errorMessage: "try again" }, "try again");
    expect(await store.runFailureReasons(first.run.id)).toEqual([{ code: "CONTENT_POLICY_VIOLATION", count: 2, example: "policy" }]);
    expect(await store.runFailureReasons(second.run.id)).toEqual([{ code: "IMAGE_GENERATION_FAILED", count: 1, example: "try again" }]);
    // Items failed now: only b, with its latest reason.
    expect(await store.failureReasons()).toEqual([{ code: "IMAGE_GENERATION_FAILED", count: 1, example: "try again" }]);
    await store.close();
  });
});
