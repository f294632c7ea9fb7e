// One report for the workers of a shared run that end together (PostgreSQL): each takes the
// report lock in turn and writes only when no worker of the run wrote the report of this same
// state since it began; a writer that dies mid-write leaves the report to the next.
import { describe, expect, it } from "vitest";
import type { RunEnd } from "../src/store/port.js";
import { PgStore } from "../src/store/postgres/pg-store.js";
import { planned } from "./store-conformance.js";
import { freshSchema } from "./helpers/postgres-server.mjs";

const info = (pid: number) => ({ pid, host: "h", provider: "local", manifestFile: "/m.yaml", manifestHash: "aaa", worker: `w${pid}` });
const present = () => true;
const ended: RunEnd = { outcome: "done", exitCode: 0, stopReason: null, itemsDone: 0, itemsFailed: 0, credits: 0 };

/** `count` workers of one run, each begun. */
async function workers(url: string, count: number, options: { reportWaitMs?: number } = {}): Promise<PgStore[]> {
  const stores = await Promise.all(Array.from({ length: count }, () => PgStore.open(url, options)));
  for (const [i, store] of stores.entries()) expect((await store.beginRun(info(i + 1), () => false)).acquired).toBe(true);
  return stores;
}

/** A report writer that counts its writes and takes a while, as a real one does. */
function reportWriter(): { writes: () => number; write: () => Promise<void> } {
  let writes = 0;
  return {
    writes: () => writes,
    write: async () => {
      writes++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    },
  };
}

describe("one report for the workers of a shared run (PostgreSQL)", () => {
  it("three workers ending together write it once; a change after it, or files gone, has it written again", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const stores = await workers(url, 3);
    try {
      await stores[0]!.syncManifest([planned("a")], "local");
      const report = reportWriter();
      const wrote = await Promise.all(stores.map((store) => store.reportTurns.take("/out", present, report.write)));
      expect(report.writes()).toBe(1);
      expect(wrote.filter(Boolean)).toHaveLength(1);
      // Another folder has its own report.
      expect(await stores[1]!.reportTurns.take("/elsewhere", present, report.write)).toBe(true);
      // The run changed (an item moved): the report of the old state is not this one.
      const [item] = await stores[0]!.claimQueued("w1", 0, 1, Number.MAX_SAFE_INTEGER);
      await stores[0]!.write(item!, { to: "submitting", set: { attempts: 1 } });
      expect(await stores[1]!.reportTurns.take("/out", present, report.write)).toBe(true);
      expect(await stores[2]!.reportTurns.take("/out", present, report.write)).toBe(false);
      // Its files are gone from the folder: written again.
      expect(await stores[2]!.reportTurns.take("/out", () => false, report.write)).toBe(true);
      expect(report.writes()).toBe(4);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 30_000);

  it("a worker that begins after the report was written writes its own: a run again rewrites the report", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [earlier] = await workers(url, 1);
    const later = await PgStore.open(url);
    try {
      const report = reportWriter();
      expect(await earlier!.reportTurns.take("/out", present, report.write)).toBe(true);
      await earlier!.endRun(1, ended);
      expect((await later.beginRun(info(9), () => false)).acquired).toBe(true);
      expect(await later.reportTurns.take("/out", present, report.write)).toBe(true);
      expect(report.writes()).toBe(2);
    } finally {
      await Promise.all([earlier!.close(), later.close()]);
    }
  }, 30_000);

  it("a writer that fails mid-write records nothing: the next worker writes the report", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [dying, next] = await workers(url, 2);
    try {
      await expect(dying!.reportTurns.take("/out", present, () => Promise.reject(new Error("killed mid-write")))).rejects.toThrow(/killed mid-write/);
      const report = reportWriter();
      expect(await next!.reportTurns.take("/out", present, report.write)).toBe(true);
      expect(report.writes()).toBe(1);
    } finally {
      await Promise.all([dying!.close(), next!.close()]);
    }
  }, 30_000);

  it("a writer paused mid-write (SIGSTOP) holds the others only for the wait: then each writes its own", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [paused, waiting] = await workers(url, 2, { reportWaitMs: 300 });
    try {
      let resume!: () => void;
      let inside!: () => void;
      const writing = new Promise<void>((resolve) => (inside = resolve));
      const pausedTake = paused!.reportTurns.take("/out", present, () => {
        inside();
        return new Promise<void>((resolve) => (resume = resolve));
      });
      await writing;
      const report = reportWriter();
      expect(await waiting!.reportTurns.take("/out", present, report.write)).toBe(true);
      expect(report.writes()).toBe(1);
      resume();
      expect(await pausedTake).toBe(true);
    } finally {
      await Promise.all([paused!.close(), waiting!.close()]);
    }
  }, 30_000);
});
