// One report for the workers of a shared run that end together (PostgreSQL): each takes a
// ticket as it ends and the report lock in turn, and writes only when the report in its folder
// was begun after its ticket; a writer that dies mid-write leaves the report to the next, and
// one that holds its turn too long lets the others write their own.
import { describe, expect, it } from "vitest";
import { PgStore } from "../src/store/postgres/pg-store.js";
import { freshSchema, query } from "./helpers/postgres-server.mjs";

const present = () => true;

/** `count` workers of one run. */
function workers(url: string, count: number, options: { reportWaitMs?: number } = {}): Promise<PgStore[]> {
  return Promise.all(Array.from({ length: count }, () => PgStore.open(url, options)));
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

/** A report writer that stays in its write until let go, as one paused mid-write does. */
function heldWriter(): { writes: () => number; inside: Promise<void>; letGo: () => void; write: () => Promise<void> } {
  let writes = 0;
  let entered!: () => void;
  let gates: (() => void)[] = [];
  const inside = new Promise<void>((resolve) => (entered = resolve));
  return {
    writes: () => writes,
    inside,
    letGo: () => {
      for (const open of gates) open();
      gates = [];
    },
    write: () => {
      writes++;
      entered();
      return writes === 1 ? new Promise<void>((resolve) => gates.push(resolve)) : Promise.resolve();
    },
  };
}

/** The newest ticket handed out. */
async function newestTicket(url: string): Promise<number> {
  const [row] = await query(url, "SELECT last_value::int AS t FROM report_tickets");
  return Number(row?.t);
}

/** Until a worker has taken its ticket (the newest moved past `after`). */
async function ticketTaken(url: string, after: number): Promise<void> {
  while ((await newestTicket(url)) <= after) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("one report for the workers of a shared run (PostgreSQL)", () => {
  it("three workers ending together write it once; one ending later, another folder or files gone have it written again", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const stores = await workers(url, 3);
    try {
      const report = reportWriter();
      const wrote = await Promise.all(stores.map((store) => store.reportTurns.take("/out", present, report.write)));
      expect(report.writes()).toBe(1);
      expect(wrote.filter(Boolean)).toHaveLength(1);
      expect(await stores[1]!.reportTurns.take("/elsewhere", present, report.write)).toBe(true);
      // A worker that ends after the report began to read the run: its changes may not be in it.
      expect(await stores[2]!.reportTurns.take("/elsewhere", present, report.write)).toBe(true);
      // Its files are gone from the folder: written again.
      expect(await stores[0]!.reportTurns.take("/out", () => false, report.write)).toBe(true);
      expect(report.writes()).toBe(4);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 30_000);

  it("a worker that ends while another writes has it written again by that one, and keeps it", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [first, late] = await workers(url, 2);
    try {
      const held = heldWriter();
      const firstTake = first!.reportTurns.take("/out", present, held.write);
      await held.inside;
      const t = await newestTicket(url);
      const report = reportWriter();
      const lateTake = late!.reportTurns.take("/out", present, report.write);
      await ticketTaken(url, t);
      held.letGo();
      expect(await firstTake).toBe(true);
      expect(await lateTake).toBe(false);
      expect([held.writes(), report.writes()]).toEqual([2, 0]);
    } finally {
      await Promise.all([first!.close(), late!.close()]);
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

  it("a writer paused mid-write (SIGSTOP) holds the others only for the wait: they write their own, and it writes again once let go", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const [paused, waiting] = await workers(url, 2, { reportWaitMs: 300 });
    try {
      const held = heldWriter();
      const pausedTake = paused!.reportTurns.take("/out", present, held.write);
      await held.inside;
      const report = reportWriter();
      expect(await waiting!.reportTurns.take("/out", present, report.write)).toBe(true);
      expect(report.writes()).toBe(1);
      held.letGo();
      expect(await pausedTake).toBe(true);
      // Its first report began before the other worker ended: written again over the other's.
      expect(held.writes()).toBe(2);
    } finally {
      await Promise.all([paused!.close(), waiting!.close()]);
    }
  }, 30_000);
});
