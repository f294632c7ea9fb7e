// Cursors over the live items for the reports: one row at a time from SQLite, so a report
// of 20,000 items never holds 20,000 records. While a cursor is open, better-sqlite3 refuses
// every other statement on the connection: consume it without awaiting in between.
import type Database from "better-sqlite3";
import { UNFINISHED_STATES } from "./states.js";
import { type Row, toItem } from "./rows.js";
import type { ItemRecord } from "./types.js";

export interface ReportItem {
  item: ItemRecord;
  /** Rendition name → path, by name. */
  renditions: Record<string, string>;
}

/** The contact sheet's place of an item: the row group it belongs to and that group's counts. */
export interface SheetItem extends ReportItem {
  /** First item of its row group (within the manifest's items, or within the removed ones). */
  startsGroup: boolean;
  groupSize: number;
  groupFailed: number;
  groupPending: number;
}

const PENDING_STATES = UNFINISHED_STATES.map((s) => `'${s}'`)
  .join(", ");

const RENDITIONS = `(SELECT json_group_object(name, path) FROM (SELECT name, path FROM renditions WHERE item_id = i.id ORDER BY name)) AS renditions_json`;

function renditionsOf(row: Row): Record<string, string> {
  return row.renditions_json ? (JSON.parse(row.renditions_json as string) as Record<string, string>) : {};
}

/** Live items in database order (results.csv, results.jsonl). */
export function* liveItemsById(db: Database.Database): Generator<ReportItem> {
  for (const row of db.prepare(`SELECT i.*, ${RENDITIONS} FROM items i WHERE i.superseded_at IS NULL ORDER BY i.id`).iterate() as Iterable<Row>) {
    yield { item: toItem(row), renditions: renditionsOf(row) };
  }
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

/**
 * Live items in contact-sheet order: the manifest's items first, then those it no longer
 * has; within each, grouped by row in the order a row first appears, items in the order
 * manifestOrder kept (keys the manifest does not name come after, in database order).
 */
export function* liveItemsInSheetOrder(db: Database.Database): Generator<SheetItem> {
  // 2^52 is above any position and any rowid a run makes, and exact in a double.
  const ord = `COALESCE((SELECT pos FROM temp.manifest_order m WHERE m.key = i.key), 4503599627370496 + i.id)`;
  // The window functions see only the narrow columns they need (SQLite materialises their
  // input in a temporary table: whole rows made that 12 MB at 20,000 items); the full rows
  // are joined afterwards, and the sort spills to disk past the connection's page cache.
  const sql = `
    WITH placed AS (
      SELECT id, in_manifest, ord, ROW_NUMBER() OVER (PARTITION BY in_manifest, row_id ORDER BY ord) AS group_index,
             MIN(ord) OVER w AS group_ord, COUNT(*) OVER w AS group_size,
             SUM(state IN ('failed', 'missing')) OVER w AS group_failed, SUM(state IN (${PENDING_STATES})) OVER w AS group_pending
      FROM (SELECT i.id, i.row_id, i.in_manifest, i.state, ${ord} AS ord FROM items i WHERE i.superseded_at IS NULL)
      WINDOW w AS (PARTITION BY in_manifest, row_id)
    )
    SELECT i.*, ${RENDITIONS}, p.group_index, p.group_size, p.group_failed, p.group_pending
    FROM placed p JOIN items i ON i.id = p.id
    ORDER BY p.in_manifest DESC, p.group_ord, p.ord`;
  for (const row of db.prepare(sql).iterate() as Iterable<Row>) {
    yield {
      item: toItem(row),
      renditions: renditionsOf(row),
      startsGroup: row.group_index === 1,
      groupSize: row.group_size as number,
      groupFailed: row.group_failed as number,
      groupPending: row.group_pending as number,
    };
  }
}
