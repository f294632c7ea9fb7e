// One report for the workers of a shared run that end together: each takes the report lock in
// turn, and writes unless one of them wrote the report of the same state to the same folder
// since it began. What was written is recorded only after the files are, in the same
// transaction: a worker killed mid-write leaves no record, and the next in line writes. One
// paused mid-write holds the others only so long: then each writes its own.
import type pg from "pg";
import type { ReportTurns } from "../port.js";
import type { Connection } from "./connection.js";
import { REPORT_LOCK } from "./schema.js";

interface Written {
  /** The run's change mark and the output folder the report went to. */
  state: string;
  /** The newest worker's run record when it was written: later than a worker's own, after that one began. */
  lastRun: number;
}

/** lock_not_available: the wait for the turn ran out. */
const LOCK_WAIT_RAN_OUT = "55P03";

export class PgReportTurns implements ReportTurns {
  constructor(
    private readonly connection: Connection,
    /** This worker's run record, once it has begun. */
    private readonly runId: () => number | null,
    /** How long to wait for the turn: a writer paused mid-write (SIGSTOP) holds it, and the others write their own after this. */
    private readonly waitMs: number,
  ) {}

  async take(outDir: string, filesPresent: () => boolean, write: () => Promise<void>): Promise<boolean> {
    try {
      return await this.connection.transaction((client) => this.inTurn(client, outDir, filesPresent, write));
    } catch (error) {
      if ((error as { code?: unknown }).code !== LOCK_WAIT_RAN_OUT) throw error;
      await write();
      return true;
    }
  }

  private async inTurn(client: pg.PoolClient, outDir: string, filesPresent: () => boolean, write: () => Promise<void>): Promise<boolean> {
    await this.connection.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.waitMs))}`, [], client);
    await this.connection.query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", [REPORT_LOCK], client);
    const [now] = await this.connection.query<{ mark: string; last_run: number; written: string | null }>(
      `SELECT (SELECT COALESCE(MAX(id), 0) FROM events) || ':' || (SELECT COALESCE(MAX(id), 0) FROM decisions) AS mark,
              (SELECT COALESCE(MAX(id), 0) FROM runs) AS last_run,
              (SELECT value FROM settings WHERE name = 'report_written') AS written`,
      [],
      client,
    );
    const state = `${now!.mark} ${outDir}`;
    const own = this.runId();
    const before = now!.written === null ? null : (JSON.parse(now!.written) as Written);
    if (own !== null && before !== null && before.state === state && before.lastRun >= own && filesPresent()) return false;
    await write();
    const written: Written = { state, lastRun: Number(now!.last_run) };
    await this.connection.query("INSERT INTO settings (name, value) VALUES ('report_written', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [JSON.stringify(written)], client);
    return true;
  }
}
