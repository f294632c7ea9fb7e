// Claims under a shared --concurrency on PostgreSQL, raced: many workers (each its own store and
// pool) asking at once never hold more items between them than the cap.
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { PgStore } from "../src/store/postgres/pg-store.js";
import { freshSchema } from "./helpers/postgres-server.mjs";

function planned(key: string): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt: `a picture of ${key}`, model: "seedream3.0", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "local") };
}

describe("claims under a shared --concurrency (PostgreSQL)", () => {
  it("six workers claiming at once, over and over, never hold more than the cap between them", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const stores = await Promise.all(Array.from({ length: 6 }, () => PgStore.open(url)));
    try {
      await stores[0]!.syncManifest(Array.from({ length: 60 }, (_, i) => planned(`k${i}`)), "local", { hashWith: requestHash });
      const cap = 5;
      let held = 0;
      for (let round = 0; round < 4; round++) {
        const now = Date.now();
        const claimed = await Promise.all(stores.flatMap((store, w) => [0, 1, 2].map(() => store.claimQueued(`w${w}`, now, 3, now + 60_000, cap))));
        held += claimed.reduce((sum, batch) => sum + batch.length, 0);
        expect(held).toBe(cap);
        // One item of the cap leaves for the image stage: exactly one slot frees for the next round.
        const first = claimed.find((batch) => batch.length > 0)![0]!;
        const owner = stores[Number(first.owner!.slice(1))]!;
        let at = await owner.write(first, { to: "submitting", set: { attempts: 1 } });
        at = await owner.write(at, { to: "running", set: { jobId: `job-${round}` } });
        await owner.write(at, { to: "downloading", set: { credits: 1 } });
        held -= 1;
      }
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 60_000);
});
