// A night's history read back: the events, and why items failed (overall, and in one run).
import type Database from "better-sqlite3";
import type { ItemState } from "../states.js";
import type { Row } from "../rows.js";
import type { EventRecord, FailureReason } from "../types.js";

const LIVE = "superseded_at IS NULL";

type Statement = (source: string) => Database.Statement;


/** Every event (of one item, or all), oldest first. */
export function readEvents(statement: Statement, itemId?: number): EventRecord[] {
  const rows = statement(`SELECT e.*, i.key FROM events e JOIN items i ON i.id = e.item_id ${itemId === undefined ? "" : "WHERE e.item_id = ?"} ORDER BY e.id`)
    .all(...(itemId === undefined ? [] : [itemId])) as Row[];
  return rows.map((r) => ({
    itemId: r.item_id as number,
    key: r.key as string,
    runId: r.run_id as number | null,
    at: r.at as number,
    from: r.from_state as ItemState | null,
    to: r.to_state as ItemState,
    detail: r.detail as string | null,
  }));
}

/** Failed items' codes with counts, most common first. */
export function failureReasons(statement: Statement, limit: number): FailureReason[] {
  const rows = statement(
    `SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n, MAX(error_message) AS example FROM items
     WHERE ${LIVE} AND in_manifest = 1 AND state = 'failed' GROUP BY 1 ORDER BY n DESC, code LIMIT ?`,
  ).all(limit) as Row[];
  return rows.map((r) => ({ code: r.code as string, count: r.n as number, example: (r.example as string | null) ?? "" }));
}

/**
 * Why items failed during one run, most common first: from the run's own events, so the
 * answer does not change when those items are retried later. `schemaVersion` < 3 (a database
 * status opens read-only, not yet migrated) has no codes on its events.
 */
export function runFailureReasons(statement: Statement, schemaVersion: number, runId: number, limit: number): FailureReason[] {
  const eventCode = schemaVersion >= 3 ? "e.error_code, " : "";
  const rows = statement(
    `SELECT COALESCE(${eventCode}i.error_code, 'UNKNOWN') AS code, COUNT(*) AS n, COALESCE(MAX(e.detail), MAX(i.error_message)) AS example
     FROM events e JOIN items i ON i.id = e.item_id
     WHERE e.run_id = ? AND e.to_state = 'failed' GROUP BY 1 ORDER BY n DESC, code LIMIT ?`,
  ).all(runId, limit) as Row[];
  return rows.map((r) => ({ code: r.code as string, count: r.n as number, example: (r.example as string | null) ?? "" }));
}
