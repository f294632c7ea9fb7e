// The SQLite store's reads: items, counts, history, the delivered files to check, report
// pages, renditions, settings. Synchronous: SqliteStore (sqlite-store.ts) serves them through the port.
import type Database from "better-sqlite3";
import type { ImageModel } from "../../providers/catalog.js";
import type { ProviderName } from "../../providers/provider.js";
import { liveItemsPage, sheetItems, sheetPlaces, type SheetPlace } from "./report-cursors.js";
import { type Row, toItem, toRendition, toRowImage } from "../rows.js";
import { ITEM_STATES, type ItemState } from "../states.js";
import type { EventRecord, FailureReason, ItemRecord, RenditionRecord, ReportItem, SheetItem } from "../types.js";
import { failureReasons, readEvents, runFailureReasons } from "./history.js";
import type { StateCounts } from "../port.js";

const LIVE = "superseded_at IS NULL";

export type Statement = (source: string) => Database.Statement;

/** Each SQL text is prepared once per connection: preparing costs more than running. */
export function statementCache(db: Database.Database): Statement {
  const statements = new Map<string, Database.Statement>();
  return (source) => {
    let statement = statements.get(source);
    if (!statement) {
      statement = db.prepare(source);
      statements.set(source, statement);
    }
    return statement;
  };
}

export class SqliteReads {
  constructor(
    private readonly db: Database.Database,
    private readonly statement: Statement,
  ) {}

  schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  integrityCheck(): string {
    return this.db.pragma("integrity_check", { simple: true }) as string;
  }

  /** The provider the manifest was last run with (saved by a sync), or null. */
  rememberedProvider(): ProviderName | null {
    if (!this.hasTable("settings")) return null;
    const value = this.statement(`SELECT value FROM settings WHERE name = 'provider'`).pluck().get() as string | undefined;
    return (value as ProviderName | undefined) ?? null;
  }

  /** True when no item was ever planned here (a new database, or one emptied). */
  isEmpty(): boolean {
    return this.statement(`SELECT NOT EXISTS (SELECT 1 FROM items)`).pluck().get() === 1;
  }

  private hasTable(name: string): boolean {
    return this.statement(`SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)`).pluck().get(name) === 1;
  }

  // ---- reads ---------------------------------------------------------------------

  get(id: number): ItemRecord | undefined {
    const row = this.statement(`SELECT * FROM items WHERE id = ?`).get(id) as Row | undefined;
    return row ? toItem(row) : undefined;
  }

  byKey(key: string): ItemRecord | undefined {
    const row = this.statement(`SELECT * FROM items WHERE key = ? AND ${LIVE}`).get(key) as Row | undefined;
    return row ? toItem(row) : undefined;
  }

  /** Live items of the manifest in the given states, oldest first. */
  inStates(states: readonly ItemState[]): ItemRecord[] {
    const marks = states.map(() => "?").join(", ");
    return (this.statement(`SELECT * FROM items WHERE ${LIVE} AND in_manifest = 1 AND state IN (${marks}) ORDER BY id`).all(...states) as Row[]).map(
      toItem,
    );
  }

  /** When the earliest waiting queued item becomes eligible, or null when none waits. */
  earliestQueuedAt(): number | null {
    const row = this.statement(`SELECT MIN(next_attempt_at) AS t FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'queued'`).get() as Row;
    return (row.t as number | null) ?? null;
  }

  /** Items still to submit (queued, or submitted with no answer) by provider and model, for the credit estimate. */
  toSubmitByModel(): { provider: ProviderName; model: ImageModel; count: number }[] {
    return this
      .statement(
        `SELECT provider, json_extract(request_json, '$.model') AS model, COUNT(*) AS count FROM items
         WHERE ${LIVE} AND in_manifest = 1 AND state IN ('queued', 'submitting') GROUP BY 1, 2 ORDER BY 1, 2`,
      )
      .all() as { provider: ProviderName; model: ImageModel; count: number }[];
  }

  counts(): StateCounts {
    const counts = Object.fromEntries(ITEM_STATES.map((s) => [s, 0])) as StateCounts;
    const rows = this.statement(`SELECT state, COUNT(*) AS n FROM items WHERE ${LIVE} AND in_manifest = 1 GROUP BY state`).all() as Row[];
    for (const r of rows) counts[r.state as ItemState] = r.n as number;
    return counts;
  }

  /** Live items no longer in the manifest (left alone, shown by status). */
  removedFromManifest(): ItemRecord[] {
    return (this.statement(`SELECT * FROM items WHERE ${LIVE} AND in_manifest = 0 ORDER BY id`).all() as Row[]).map(toItem);
  }

  totalCredits(): number {
    // Superseded records too: their images were paid for. Missing ones as well.
    const row = this.statement(`SELECT COALESCE(SUM(credits), 0) AS c FROM items WHERE state IN ('done', 'missing')`).get() as Row;
    return row.c as number;
  }

  /** Whether a record (live or superseded) owns this job id or adopted image ref, so reconciliation never adopts one twice. */
  isClaimed(ref: string): boolean {
    return this.statement(`SELECT EXISTS (SELECT 1 FROM items WHERE job_id = @ref) OR EXISTS (SELECT 1 FROM items WHERE image_ref = @ref)`).pluck().get({ ref }) === 1;
  }

  /** Every event (of one item, or all), oldest first. */
  events(itemId?: number): EventRecord[] {
    return readEvents((source) => this.statement(source), itemId);
  }

  /** Failed items' codes with counts, most common first. */
  failureReasons(limit = 5): FailureReason[] {
    return failureReasons((source) => this.statement(source), limit);
  }

  /** Why items failed during one run, from its own events (retries later do not change it). */
  runFailureReasons(runId: number, limit = 5): FailureReason[] {
    return runFailureReasons((source) => this.statement(source), this.schemaVersion(), runId, limit);
  }

  /**
   * A page of the done items of the manifest that `provider` made, after id `afterId`, as
   * `[id, key, file path, bytes]` (raw rows): a resume of 100,000 items reads them a page at a time.
   */
  doneImagesAfter(provider: ProviderName, afterId: number, limit: number): [number, string, string | null, number | null][] {
    return this.statement(`SELECT id, key, file_path, bytes FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'done' AND provider = ? AND id > ? ORDER BY id LIMIT ?`)
      .raw()
      .all(provider, afterId, limit) as [number, string, string | null, number | null][];
  }

  rowImages(rowId: string, exceptKey: string): { key: string; phash: string; qcFlags: ItemRecord["qcFlags"] }[] {
    const rows = this.statement(`SELECT key, phash, qc_flags FROM items WHERE row_id = ? AND key <> ? AND ${LIVE} AND state = 'done' AND phash IS NOT NULL ORDER BY id`).all(rowId, exceptKey) as Row[];
    return rows.map(toRowImage);
  }

  /** Keys of the live queued items never submitted. */
  untriedKeys(): Set<string> {
    return new Set(this.statement(`SELECT key FROM items WHERE ${LIVE} AND state = 'queued' AND attempts = 0`).pluck().all() as string[]);
  }

  liveItemsPage(afterId: number, limit: number): ReportItem[] {
    return liveItemsPage(this.db, afterId, limit);
  }

  sheetPlaces(): SheetPlace[] {
    return sheetPlaces(this.db);
  }

  sheetItems(places: readonly SheetPlace[]): SheetItem[] {
    return sheetItems(this.db, places);
  }

  renditionsOf(itemId: number): RenditionRecord[] {
    return (this.statement(`SELECT * FROM renditions WHERE item_id = ? ORDER BY name`).all(itemId) as Row[]).map(toRendition);
  }

  /** Every item's renditions in one query, by item id (for reports over many items). */
  renditionsByItem(): Map<number, RenditionRecord[]> {
    const byItem = new Map<number, RenditionRecord[]>();
    for (const r of this.statement(`SELECT * FROM renditions ORDER BY item_id, name`).all() as Row[]) {
      const record = toRendition(r);
      const list = byItem.get(record.itemId);
      if (list) list.push(record);
      else byItem.set(record.itemId, [record]);
    }
    return byItem;
  }

}
