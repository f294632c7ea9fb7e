// The reports' reads: live items a page at a time, so a report of 20,000 items never holds
// 20,000 records and no cursor stays open across an await; and the manifest's item order
// kept per connection for the contact sheet.
import type Database from "better-sqlite3";
import { UNFINISHED_STATES } from "../states.js";
import { type Row, toItem } from "../rows.js";
import type { ReportItem, SheetItem } from "../types.js";

const PENDING_STATES = UNFINISHED_STATES.map((s) => `'${s}'`)
  .join(", ");

const RENDITIONS = `(SELECT json_group_object(name, path) FROM (SELECT name, path FROM renditions WHERE item_id = i.id ORDER BY name)) AS renditions_json`;

function renditionsOf(row: Row): Record<string, string> {
  return row.renditions_json ? (JSON.parse(row.renditions_json as string) as Record<string, string>) : {};
}

/** Up to `limit` live items after id `afterId`, in database order (results.csv, results.jsonl). */
export function liveItemsPage(db: Database.Database, afterId: number, limit: number): ReportItem[] {
  const rows = db.prepare(`SELECT i.*, ${RENDITIONS} FROM items i WHERE i.superseded_at IS NULL AND i.id > ? ORDER BY i.id LIMIT ?`).all(afterId, limit) as Row[];
  return rows.map((row) => ({ item: toItem(row), renditions: renditionsOf(row) }));
}

/**
 * The manifest's item order for this connection: a TEMP table (allowed on a read-only
 * connection too, gone when it closes), so the contact sheet can follow it in SQL. Written
 * by the manifest sync, or by setManifestOrder from a manifest's keys. Keys go in a chunk at
 * a time as one JSON array: one statement per chunk, not one per key.
 */
export function manifestOrder(db: Database.Database): { clear(): void; append(keys: readonly string[]): void } {
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS manifest_order (key TEXT PRIMARY KEY, pos INTEGER NOT NULL)`);
  const clear = db.prepare(`DELETE FROM temp.manifest_order`);
  const insert = db.prepare(`INSERT OR IGNORE INTO temp.manifest_order (key, pos) SELECT value, ? + key FROM json_each(?)`);
  let pos = 0;
  return {
    clear() {
      clear.run();
      pos = 0;
    },
    append(keys) {
      insert.run(pos, JSON.stringify(keys));
      pos += keys.length;
    },
  };
}

/** Keeps `keys` as the manifest's order for this connection's reports. */
export function setManifestOrder(db: Database.Database, keys: Iterable<string>): void {
  const order = manifestOrder(db);
  db.transaction(() => {
    order.clear();
    let chunk: string[] = [];
    for (const key of keys) {
      chunk.push(key);
      if (chunk.length >= 500) {
        order.append(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) order.append(chunk);
  })();
}

/** An item's place on the contact sheet: `[id, starts its group, group size, failed, pending]`. */
export type SheetPlace = [number, 0 | 1, number, number, number];

/**
 * The contact sheet's order of the live items: the manifest's items first, then those it no
 * longer has; within each, grouped by row in the order a row first appears, items in the order
 * manifestOrder kept (keys the manifest does not name come after, in database order). Only
 * narrow columns: the full rows are read a page at a time (sheetItems).
 */
export function sheetPlaces(db: Database.Database): SheetPlace[] {
  // 2^52 is above any position and any rowid a run makes, and exact in a double.
  const ord = `COALESCE((SELECT pos FROM temp.manifest_order m WHERE m.key = i.key), 4503599627370496 + i.id)`;
  manifestOrder(db);
  const sql = `
    WITH placed AS (
      SELECT id, in_manifest, ord, ROW_NUMBER() OVER (PARTITION BY in_manifest, row_id ORDER BY ord) AS group_index,
             MIN(ord) OVER w AS group_ord, COUNT(*) OVER w AS group_size,
             SUM(state IN ('failed', 'missing')) OVER w AS group_failed, SUM(state IN (${PENDING_STATES})) OVER w AS group_pending
      FROM (SELECT i.id, i.row_id, i.in_manifest, i.state, ${ord} AS ord FROM items i WHERE i.superseded_at IS NULL)
      WINDOW w AS (PARTITION BY in_manifest, row_id)
    )
    SELECT id, group_index = 1, group_size, group_failed, group_pending FROM placed ORDER BY in_manifest DESC, group_ord, ord`;
  return db.prepare(sql).raw().all() as SheetPlace[];
}

/** The full records of a page of sheet places, in their order. */
export function sheetItems(db: Database.Database, places: readonly SheetPlace[]): SheetItem[] {
  const rows = db.prepare(`SELECT i.*, ${RENDITIONS} FROM items i WHERE i.id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(places.map((p) => p[0]))) as Row[];
  const byId = new Map(rows.map((row) => [row.id as number, row]));
  return places.map(([id, startsGroup, groupSize, groupFailed, groupPending]) => {
    const row = byId.get(id)!;
    return { item: toItem(row), renditions: renditionsOf(row), startsGroup: startsGroup === 1, groupSize, groupFailed, groupPending };
  });
}
