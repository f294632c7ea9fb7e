// Word between the workers of a shared run (PostgreSQL LISTEN/NOTIFY): a worker that ends wakes
// the others of its run at once; workers of another run (another schema) hear nothing.
import { describe, expect, it } from "vitest";
import { PgStore } from "../src/store/postgres/pg-store.js";
import { freshSchema } from "./helpers/postgres-server.mjs";

/** A listener that counts what it heard and can be awaited for its next call. */
function ear(): { heard: () => number; next: () => Promise<void>; listener: () => void } {
  let count = 0;
  let waiting: (() => void) | null = null;
  return {
    heard: () => count,
    next: () => new Promise<void>((resolve) => (waiting = resolve)),
    listener: () => {
      count++;
      waiting?.();
    },
  };
}

describe("word between the workers of a shared run (PostgreSQL)", () => {
  it("an announce wakes every listening worker of the run, and none of another run", async () => {
    const run = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const otherRun = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [idle, ending, stranger] = await Promise.all([PgStore.open(run), PgStore.open(run), PgStore.open(otherRun)]);
    const idleEar = ear();
    const strangerEar = ear();
    const stopIdle = await idle.runChanges.listen(idleEar.listener);
    const stopStranger = await stranger.runChanges.listen(strangerEar.listener);
    try {
      const woken = idleEar.next();
      await ending.runChanges.announce();
      await woken;
      expect(idleEar.heard()).toBe(1);
      // Notices reach a listener in the order they were sent: had the other run's announce
      // reached the stranger, it would have come before the stranger's own.
      const own = strangerEar.next();
      await stranger.runChanges.announce();
      await own;
      expect(strangerEar.heard()).toBe(1);
    } finally {
      await stopIdle();
      await stopStranger();
      await Promise.all([idle, ending, stranger].map((store) => store.close()));
    }
  }, 30_000);

  it("a worker that stopped listening hears nothing more", async () => {
    const run = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [gone, staying, ending] = await Promise.all([PgStore.open(run), PgStore.open(run), PgStore.open(run)]);
    const goneEar = ear();
    const stayingEar = ear();
    const stopGone = await gone.runChanges.listen(goneEar.listener);
    const stopStaying = await staying.runChanges.listen(stayingEar.listener);
    try {
      await stopGone();
      const heard = stayingEar.next();
      await ending.runChanges.announce();
      await heard;
      expect(goneEar.heard()).toBe(0);
    } finally {
      await stopStaying();
      await Promise.all([gone, staying, ending].map((store) => store.close()));
    }
  }, 30_000);
});
