// One report for the workers of a shared run that end together. A worker takes a ticket as it
// ends, its writes committed; a report records the newest ticket handed out before it read
// anything, so it holds every change of a worker whose ticket is not newer. Each worker takes
// the report lock in turn and writes unless the report in its folder records its ticket. The
// record is made after the files, in the same transaction: a worker killed mid-write leaves
// none, and the next in line writes. One paused mid-write holds the others only so long: then
// each writes its own, and the paused one writes again if a worker ended while it wrote.
import type pg from "pg";
import type { ReportTurns } from "../port.js";
import type { Connection } from "./connection.js";
import { REPORT_LOCK } from "./schema.js";

interface Written {
  /** The folder the report went to. */
  outDir: string;
  /** The newest ticket when the report began to read the run. */
  ticket: number;
}

/** Workers ending while the report is written have it written again, so many times at most. */
const REWRITES_AT_MOST = 5;

export class PgReportTurns implements ReportTurns {
  constructor(
    private readonly connection: Connection,
    /** How long to wait for the turn: a writer paused mid-write (SIGSTOP) holds it, and the others write their own after this. */
    private readonly waitMs: number,
  ) {}

  async take(outDir: string, filesPresent: () => boolean, write: () => Promise<void>): Promise<boolean> {
    const [own] = await this.connection.query<{ ticket: number }>("SELECT nextval('report_tickets') AS ticket");
    let wrote = false;
    let writeFailed = false;
    const writeOnce = async (): Promise<void> => {
      await write().catch((error: unknown) => {
        writeFailed = true;
        throw error;
      });
      wrote = true;
    };
    try {
      return await this.connection.transaction((client) => this.inTurn(client, { outDir, ticket: Number(own!.ticket) }, filesPresent, writeOnce));
    } catch (error) {
      // A failure of the report's own writing is the run's; once written, a lost record costs
      // only a second writing by the next worker.
      if (writeFailed) throw error;
      if (wrote) return true;
      // The turn itself failed (its wait ran out, the session was ended): written without it.
      await write();
      return true;
    }
  }

  private async inTurn(client: pg.PoolClient, own: Written, filesPresent: () => boolean, write: () => Promise<void>): Promise<boolean> {
    const q = <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => this.connection.query<T>(sql, params, client);
    // The session idles while the files are written: no server-side timeout may end it then.
    await q(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.waitMs))}; SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0`);
    await q("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", [REPORT_LOCK]);
    const [row] = await q<{ written: string | null }>("SELECT value AS written FROM settings WHERE name = 'report_written'");
    const before = row?.written ? (JSON.parse(row.written) as Written) : null;
    if (before !== null && before.outDir === own.outDir && before.ticket >= own.ticket && filesPresent()) return false;
    let ticket = await this.newestTicket(client);
    for (let pass = 1; ; pass++) {
      await write();
      const newest = await this.newestTicket(client);
      if (newest === ticket || pass >= REWRITES_AT_MOST) break;
      ticket = newest;
    }
    const written: Written = { outDir: own.outDir, ticket };
    await q("INSERT INTO settings (name, value) VALUES ('report_written', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [JSON.stringify(written)]);
    return true;
  }

  private async newestTicket(client: pg.PoolClient): Promise<number> {
    const [row] = await this.connection.query<{ ticket: number }>("SELECT last_value AS ticket FROM report_tickets", [], client);
    return Number(row!.ticket);
  }
}
