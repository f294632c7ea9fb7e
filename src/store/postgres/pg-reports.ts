// The reports' reads in PostgreSQL: live items a page at a time, in database order or in the
// contact sheet's (grouped by row, the manifest's order within), no cursor held across an await.
import { toItem } from "../rows.js";
import { UNFINISHED_STATES } from "../states.js";
import type { ReportItem, SheetItem } from "../types.js";
import type { Connection, Row } from "./connection.js";

const PAGE_ROWS = 500;
const RENDITIONS = `(SELECT json_object_agg(name, path ORDER BY name) FROM renditions WHERE item_id = i.id)::text AS renditions_json`;
const renditionsOf = (row: Row): Record<string, string> => (row.renditions_json ? (JSON.parse(row.renditions_json as string) as Record<string, string>) : {});

export async function* liveItemsPg(connection: Connection): AsyncGenerator<ReportItem> {
  for (let afterId = 0; ; ) {
    const page = await connection.query(`SELECT i.*, ${RENDITIONS} FROM items i WHERE i.superseded_at IS NULL AND i.id > $1 ORDER BY i.id LIMIT $2`, [afterId, PAGE_ROWS]);
    yield* page.map((row) => ({ item: toItem(row), renditions: renditionsOf(row) }));
    if (page.length < PAGE_ROWS) return;
    afterId = page[page.length - 1]!.id as number;
  }
}

export async function* liveItemsInSheetOrderPg(connection: Connection): AsyncGenerator<SheetItem> {
  const pending = UNFINISHED_STATES.map((s) => `'${s}'`).join(", ");
  const places = await connection.query<{ id: number; first: boolean; size: number; failed: number; pending: number }>(
    `WITH base AS (
       SELECT i.id, i.row_id, i.in_manifest, i.state, COALESCE(m.pos, 4503599627370496 + i.id) AS ord FROM items i LEFT JOIN manifest_order m ON m.key = i.key WHERE i.superseded_at IS NULL
     ), placed AS (
       SELECT id, in_manifest, ord, ROW_NUMBER() OVER (PARTITION BY in_manifest, row_id ORDER BY ord) AS group_index, MIN(ord) OVER w AS group_ord,
              COUNT(*) OVER w AS size, SUM(CASE WHEN state IN ('failed', 'missing') THEN 1 ELSE 0 END) OVER w AS failed, SUM(CASE WHEN state IN (${pending}) THEN 1 ELSE 0 END) OVER w AS pending
       FROM base WINDOW w AS (PARTITION BY in_manifest, row_id)
     )
     SELECT id, group_index = 1 AS first, size::int, failed::int, pending::int FROM placed ORDER BY in_manifest DESC, group_ord, ord`,
  );
  for (let start = 0; start < places.length; start += PAGE_ROWS) {
    const page = places.slice(start, start + PAGE_ROWS);
    const rows = await connection.query(`SELECT i.*, ${RENDITIONS} FROM items i WHERE i.id = ANY($1::bigint[])`, [page.map((p) => p.id)]);
    const byId = new Map(rows.map((row) => [row.id as number, row]));
    yield* page.map((p) => {
      const row = byId.get(p.id)!;
      return { item: toItem(row), renditions: renditionsOf(row), startsGroup: p.first, groupSize: p.size, groupFailed: p.failed, groupPending: p.pending };
    });
  }
}
