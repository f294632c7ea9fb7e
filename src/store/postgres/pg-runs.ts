// Runs, workers and review decisions in PostgreSQL. Unlike SQLite's one-row lock, any number of
// worker processes share a run: each has a run record with a heartbeat, and only a worker of
// another manifest (its hash differs from a live worker's) is refused.
import { redactSecrets } from "../../secrets.js";
import type { RunEnd, RunStart, RunStartInfo } from "../port.js";
import { toDecision, toRun } from "../rows.js";
import type { DecisionRecord, LockHolder, ReviewDecision, RunRecord } from "../types.js";
import type { Connection, Row } from "./connection.js";

/** A worker whose heartbeat is older than this (on its own host's clock) is taken for dead. */
export const WORKER_STALE_MS = 3 * 60_000;

function holderOf(row: Row): LockHolder {
  return { runId: row.id as number, pid: row.pid as number, host: row.host as string, startedAt: row.started_at as number, heartbeatAt: row.heartbeat_at as number };
}

export class PgRuns {
  constructor(
    private readonly connection: Connection,
    private readonly now: () => number,
  ) {}

  private q<T extends Row = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.connection.query<T>(sql, params);
  }

  /** Joins (or starts) the run: refused only while a live worker runs another version of the manifest. */
  async beginRun(info: RunStartInfo, isStale: (holder: LockHolder) => boolean): Promise<RunStart> {
    const open = await this.q("SELECT * FROM runs WHERE outcome IS NULL ORDER BY id");
    const live = open.filter((row) => !isStale(holderOf(row)));
    const other = live.find((row) => info.manifestHash !== undefined && row.manifest_hash !== "" && row.manifest_hash !== info.manifestHash);
    if (other) return { acquired: false, holder: holderOf(other), reason: `its workers run another version of the manifest (${String(other.manifest_file)}, ${String(other.manifest_hash).slice(0, 12)}; this one is ${info.manifestHash!.slice(0, 12)})` };
    const now = this.now();
    const [row] = await this.q(
      `INSERT INTO runs (started_at, pid, host, provider, manifest_file, manifest_hash, worker, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $1) RETURNING *`,
      [now, info.pid, info.host, info.provider, info.manifestFile, info.manifestHash ?? "", info.worker ?? `${info.host}:${info.pid}`],
    );
    return { acquired: true, run: toRun(row!), tookOverFrom: null };
  }

  async endRun(id: number, end: RunEnd): Promise<void> {
    await this.q("UPDATE runs SET ended_at = $1, outcome = $2, exit_code = $3, stop_reason = $4, items_done = $5, items_failed = $6, credits = $7 WHERE id = $8", [
      this.now(), end.outcome, end.exitCode, redactSecrets(end.stopReason), end.itemsDone, end.itemsFailed, end.credits, id,
    ]);
  }

  async run(id: number): Promise<RunRecord | undefined> {
    const [row] = await this.q("SELECT * FROM runs WHERE id = $1", [id]);
    return row ? toRun(row) : undefined;
  }

  async recentRuns(limit: number): Promise<RunRecord[]> {
    return (await this.q("SELECT * FROM runs ORDER BY id DESC LIMIT $1", [limit])).map(toRun);
  }

  /** The newest worker still running (by its heartbeat), or null. */
  async lockHolder(): Promise<LockHolder | null> {
    const [row] = await this.q("SELECT * FROM runs WHERE outcome IS NULL ORDER BY heartbeat_at DESC LIMIT 1");
    return row ? holderOf(row) : null;
  }

  /** The workers still running, newest heartbeat first, with the items each holds. */
  async liveWorkers(): Promise<{ worker: string; host: string; pid: number; heartbeatAt: number; itemsInHand: number }[]> {
    const rows = await this.q(
      `SELECT r.worker, r.host, r.pid, r.heartbeat_at, (SELECT COUNT(*)::int FROM items i WHERE i.owner = r.worker) AS in_hand
       FROM runs r WHERE r.outcome IS NULL AND r.heartbeat_at >= $1 ORDER BY r.heartbeat_at DESC`,
      [this.now() - WORKER_STALE_MS],
    );
    return rows.map((row) => ({ worker: row.worker as string, host: row.host as string, pid: row.pid as number, heartbeatAt: row.heartbeat_at as number, itemsInHand: row.in_hand as number }));
  }

  async heartbeat(runId: number): Promise<void> {
    await this.q("UPDATE runs SET heartbeat_at = $1 WHERE id = $2", [this.now(), runId]);
  }

  async releaseLock(_runId: number): Promise<void> {
    // Nothing is held beyond the run's record: its claims went with releaseClaims.
  }

  /** Workers whose heartbeat went quiet are marked died, their figures from their events; their claims expire with their leases. */
  async closeAbandonedRuns(exceptId: number): Promise<number> {
    const rows = await this.q(
      `UPDATE runs SET outcome = 'died', stop_reason = 'no clean exit: killed or crashed', exit_code = NULL,
         ended_at = COALESCE((SELECT MAX(at) FROM events WHERE run_id = runs.id), started_at),
         items_done = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'done'),
         items_failed = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'failed'),
         credits = (SELECT COALESCE(SUM(i.credits), 0) FROM events e JOIN items i ON i.id = e.item_id
                    WHERE e.run_id = runs.id AND e.to_state = 'downloading' AND e.from_state IN ('running', 'submitting'))
       WHERE outcome IS NULL AND id <> $1 AND heartbeat_at < $2 RETURNING id`,
      [exceptId, this.now() - WORKER_STALE_MS],
    );
    return rows.length;
  }

  // ---- decisions

  async recordDecision(d: { key: string; sha256: string; decision: ReviewDecision; note: string | null; reviewer: string }): Promise<DecisionRecord> {
    const [row] = await this.q("INSERT INTO decisions (item_key, sha256, decision, note, reviewer, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *", [d.key, d.sha256, d.decision, d.note, d.reviewer, this.now()]);
    return toDecision(row!);
  }

  async undoDecision(key: string, sha256: string, reviewer: string): Promise<DecisionRecord | null> {
    const [latest, before] = (await this.q("SELECT * FROM decisions WHERE item_key = $1 AND sha256 = $2 ORDER BY id DESC LIMIT 2", [key, sha256])).map(toDecision);
    if (!latest) return null;
    return this.recordDecision({ key, sha256, decision: before?.decision ?? "undecided", note: before?.note ?? null, reviewer });
  }

  async decisionHistory(key: string): Promise<DecisionRecord[]> {
    return (await this.q("SELECT * FROM decisions WHERE item_key = $1 ORDER BY id", [key])).map(toDecision);
  }

  async currentDecisions(): Promise<Map<string, DecisionRecord>> {
    const rows = await this.q(
      `SELECT DISTINCT ON (d.item_key) d.* FROM decisions d JOIN items i ON i.key = d.item_key AND i.sha256 = d.sha256 AND i.superseded_at IS NULL
       ORDER BY d.item_key, d.id DESC`,
    );
    return new Map(rows.map((row) => [row.item_key as string, toDecision(row)]));
  }

  async changeMark(): Promise<string> {
    const [row] = await this.q<{ mark: string }>("SELECT (SELECT COALESCE(MAX(id), 0) FROM events) || ':' || (SELECT COALESCE(MAX(id), 0) FROM decisions) AS mark");
    return row!.mark;
  }
}
