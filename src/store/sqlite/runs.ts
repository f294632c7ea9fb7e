// Runs and the lock of a SQLite database: a run's record from start to end, the one-row lock a
// run holds (with its heartbeat), and closing the runs whose process died.
import type Database from "better-sqlite3";
import { redactSecrets } from "../../secrets.js";
import { type Row, toLockHolder, toRun } from "../rows.js";
import type { LockHolder, RunOutcome, RunRecord } from "../types.js";
import type { WriteCommit } from "./commit-groups.js";
import { DIED_RUN_SET } from "../died-run.js";

export class RunBook {
  constructor(
    private readonly db: Database.Database,
    private readonly statement: (source: string) => Database.Statement,
    private readonly beforeWrite: (commit: WriteCommit) => void,
    private readonly now: () => number,
  ) {}


  endRun(id: number, end: { outcome: RunOutcome; exitCode: number; stopReason: string | null; itemsDone: number; itemsFailed: number; credits: number }): void {
    this.beforeWrite("fsync");
    this.statement(`UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, stop_reason = ?, items_done = ?, items_failed = ?, credits = ? WHERE id = ?`)
      .run(this.now(), end.outcome, end.exitCode, redactSecrets(end.stopReason), end.itemsDone, end.itemsFailed, end.credits, id);
  }

  run(id: number): RunRecord | undefined {
    const row = this.statement(`SELECT * FROM runs WHERE id = ?`).get(id) as Row | undefined;
    return row ? toRun(row) : undefined;
  }

  recentRuns(limit: number): RunRecord[] {
    return (this.statement(`SELECT * FROM runs ORDER BY id DESC LIMIT ?`).all(limit) as Row[]).map(toRun);
  }

  /**
   * Starts a run if no live process holds this database's lock, taking the lock in the
   * same transaction. `isStale` judges a holder (same host: is its pid alive; other host:
   * is its heartbeat old). BEGIN IMMEDIATE makes check-and-take atomic between two
   * processes starting at once.
   */
  beginRun(
    info: { pid: number; host: string; provider: string; manifestFile: string },
    isStale: (holder: LockHolder) => boolean,
  ): { acquired: true; run: RunRecord; tookOverFrom: LockHolder | null } | { acquired: false; holder: LockHolder } {
    // A live holder is seen with a plain read: a busy run holds the write lock for most of
    // each turn (its group), and BEGIN IMMEDIATE could wait out busy_timeout for it.
    const seen = this.lockHolder();
    if (seen && !isStale(seen)) return { acquired: false, holder: seen };
    this.beforeWrite("fsync");
    const result = this.db.transaction(() => {
      const holder = this.lockHolder();
      if (holder && !isStale(holder)) return { acquired: false as const, holder };
      const now = this.now();
      const runId = Number(
        this.statement(`INSERT INTO runs (started_at, pid, host, provider, manifest_file) VALUES (?, ?, ?, ?, ?)`)
          .run(now, info.pid, info.host, info.provider, info.manifestFile).lastInsertRowid,
      );
      this.statement(`INSERT OR REPLACE INTO run_lock (id, run_id, pid, host, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?, ?)`)
        .run(runId, info.pid, info.host, now, now);
      return { acquired: true as const, run: this.run(runId)!, tookOverFrom: holder ?? null };
    }).immediate();
    return result;
  }

  lockHolder(): LockHolder | null {
    const row = this.statement(`SELECT * FROM run_lock WHERE id = 1`).get() as Row | undefined;
    return row ? toLockHolder(row) : null;
  }

  heartbeat(runId: number): void {
    this.beforeWrite("grouped");
    this.statement(`UPDATE run_lock SET heartbeat_at = ? WHERE id = 1 AND run_id = ?`).run(this.now(), runId);
  }

  releaseLock(runId: number): void {
    this.beforeWrite("fsync");
    this.statement(`DELETE FROM run_lock WHERE id = 1 AND run_id = ?`).run(runId);
  }

  /**
   * Runs that never closed (the process died) are marked so status tells the truth. Their
   * figures come from their events; their end is their last event (or their start).
   * Returns how many were closed. Every claim is freed too: one run at a time holds a SQLite
   * database (the lock), so a claim the new run did not make belongs to a process that is gone.
   */
  closeAbandonedRuns(exceptId: number): number {
    this.beforeWrite("fsync");
    this.statement(`UPDATE items SET owner = NULL, lease_until = NULL WHERE owner IS NOT NULL`).run();
    return this.statement(`UPDATE runs SET ${DIED_RUN_SET} WHERE outcome IS NULL AND id <> ?`).run(exceptId).changes;
  }

}
