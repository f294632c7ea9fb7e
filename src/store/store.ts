// The SQLite checkpoint store. All SQL of imgbatch lives in src/store/. Every state change
// also appends an event, so a night's history can be read back; the changes of one turn of
// the event loop commit together (beforeWrite).
import type Database from "better-sqlite3";
import { FatalRunError, InternalError } from "../errors.js";
import { redactSecrets } from "../secrets.js";
import type { ImageModel } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import { CommitGroups, type WriteCommit } from "./sqlite/commit-groups.js";
import { openDatabase } from "./sqlite/open.js";
import { failureReasons, readEvents, runFailureReasons, type FailureReason } from "./sqlite/history.js";
import { RunBook } from "./sqlite/runs.js";
import { canTransition, ITEM_STATES, type ItemState } from "./states.js";
import { type SyncSummary, syncManifestInChunks } from "./manifest-sync.js";
import type { HashWith, PlannedWithHash } from "./sync.js";
import type { EventRecord, ItemPatch, ItemRecord, LockHolder, RenditionRecord, RunOutcome, RunRecord } from "./types.js";
import { liveItemsById, liveItemsInSheetOrder, setManifestOrder, type ReportItem, type SheetItem } from "./report-cursors.js";
import { patched, patchSql, type Row, toItem, toRendition } from "./rows.js";

const LIVE = "superseded_at IS NULL";

/**
 * A stored message may quote the service, which may echo the key: masked again here, where
 * it is written, whatever the caller did (secrets.ts).
 */
function redactedPatch(patch: ItemPatch): ItemPatch {
  return patch.errorMessage ? { ...patch, errorMessage: redactSecrets(patch.errorMessage) } : patch;
}

/** Failures that keep the item's job id: a retry reads that job again before paying for another. */
const JOB_KEPT_CODES: ReadonlySet<string> = new Set(["JOB_TIMEOUT", "POLL_FAILED"]);

/**
 * Pure: where `retry` sends a failed or missing item. Never to a new submit while the item may
 * still get an image it paid for: a finished, charged job is read again for its image; a job
 * that could not be followed is read again; a lost submit is looked for once more. The
 * attempts count 0 marks a second chance, after which the next retry submits.
 */
export function retryStepOf(item: Pick<ItemRecord, "state" | "jobId" | "credits" | "errorCode" | "attempts" | "sha256">): { to: "running" | "downloading" | "submitting" | "queued"; detail: string } {
  const was = item.state === "missing" ? "missing" : (item.errorCode ?? "failed");
  if (item.state === "failed" && item.jobId !== null && item.credits !== null && item.attempts > 0) {
    return { to: "downloading", detail: `retry requested (was ${was}): job ${item.jobId} finished and was charged; reading it again for its image` };
  }
  if (item.state === "failed" && item.jobId !== null && JOB_KEPT_CODES.has(item.errorCode ?? "")) {
    return { to: "running", detail: `retry requested (was ${was}): reading job ${item.jobId} again before paying for a new one` };
  }
  if (item.state === "failed" && item.errorCode === "UNRECONCILED" && item.attempts > 0) {
    return { to: "submitting", detail: "retry requested (was UNRECONCILED): looking for the lost submit's job once more before paying" };
  }
  return { to: "queued", detail: `retry requested (was ${was})` };
}

export { DatabaseUnusableError } from "./sqlite/open.js";

export type StateCounts = Record<ItemState, number>;

export interface StoreOptions {
  readonly?: boolean;
  now?: () => number;
}

export class Store {
  readonly db: Database.Database;
  private readonly now: () => number;
  /** Events written by transitions carry the id of the run that made them. */
  runId: number | null = null;

  /** Each SQL text is prepared once per connection: preparing costs more than running. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly groups: CommitGroups;
  private readonly runBook: RunBook;

  /**
   * Runs `work` in one transaction (nested: a savepoint). Made once: better-sqlite3 builds
   * five wrapper functions per transaction() call, a large share of what a commit allocates.
   */
  private readonly atomically: <T>(work: () => T) => T;

  private constructor(db: Database.Database, now: () => number) {
    this.db = db;
    this.now = now;
    const transaction = db.transaction((work: () => unknown) => work());
    this.atomically = <T>(work: () => T): T => transaction(work) as T;
    this.groups = new CommitGroups(db, (source) => this.statement(source));
    this.runBook = new RunBook(db, (source) => this.statement(source), (commit) => this.beforeWrite(commit), () => this.now());
  }

  private statement(source: string): Database.Statement {
    let statement = this.statements.get(source);
    if (!statement) {
      statement = this.db.prepare(source);
      this.statements.set(source, statement);
    }
    return statement;
  }

  /** How a write commits: see CommitGroups.beforeWrite. */
  private beforeWrite(commit: WriteCommit): void {
    this.groups.beforeWrite(commit);
  }

  /** Commits the open group of state changes now, if there is one. */
  commitGroup(): void {
    this.groups.commitGroup();
  }

  /** Set once a group failed to commit: every write since throws it. */
  get failure(): FatalRunError | null {
    return this.groups.failure;
  }

  /** Resolves once every state change so far is committed (on disk, when one was `submitting`). */
  committed(): Promise<void> {
    return this.groups.committed();
  }

  /**
   * Opens (and creates or migrates) a database. A file that is no database, or one of a
   * newer imgbatch, throws DatabaseUnusableError: the caller names the way out (rebuild).
   */
  static open(path: string, options: StoreOptions = {}): Store {
    return new Store(openDatabase(path, options), options.now ?? Date.now);
  }

  /** Commits the open group (throwing when it cannot) and closes. */
  close(): void {
    try {
      this.commitGroup();
    } finally {
      if (this.db.open) this.db.close();
    }
  }

  /** Takes the write lock and lets it go: throws (SQLITE_READONLY, an I/O error) when no write can be made. */
  probeWrite(): void {
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      // Another run holding the lock is the lock's business (beginRun), not a broken file.
      if ((error as { code?: string }).code === "SQLITE_BUSY") return;
      throw error;
    }
    this.db.exec("ROLLBACK");
  }

  schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  integrityCheck(): string {
    return this.db.pragma("integrity_check", { simple: true }) as string;
  }

  // ---- manifest sync -------------------------------------------------------------

  /**
   * Brings the stored items in line with the manifest, in one transaction, a chunk at a time
   * (manifest-sync.ts). Also keeps the manifest's item order for this connection's reports.
   */
  syncManifest(planned: Iterable<PlannedWithHash>, provider: ProviderName, rules: { hashWith?: HashWith; allowProviderSwitch?: boolean; abandonInFlight?: boolean } = {}): SyncSummary {
    this.beforeWrite("fsync");
    return syncManifestInChunks(this.db, planned, provider, { now: this.now(), runId: this.runId }, {
      hashWith: rules.hashWith ?? (() => ""),
      allowProviderSwitch: rules.allowProviderSwitch ?? false,
      abandonInFlight: rules.abandonInFlight ?? false,
    });
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

  // ---- transitions ---------------------------------------------------------------

  /**
   * Moves an item to `to`, checking that it is still in the state the caller saw, writing
   * the row and its event together (a savepoint in the turn's group). Returns the new record.
   * A `submitting` is on disk once `committed()` resolves: send nothing before.
   */
  transition(item: ItemRecord, to: ItemState, patch: ItemPatch = {}, detail: string | null = null): ItemRecord {
    patch = redactedPatch(patch);
    if (!canTransition(item.state, to)) throw new InternalError(`illegal transition ${item.state} → ${to} for ${item.key}`);
    this.beforeWrite(to === "submitting" ? "grouped-fsync" : "grouped");
    return this.atomically(() => {
      const now = this.now();
      const { sql, values } = patchSql(patch);
      const result = this.statement(`UPDATE items SET state = ?, updated_at = ?${sql} WHERE id = ? AND state = ? AND ${LIVE}`).run(to, now, ...values, item.id, item.state);
      if (result.changes !== 1) throw new InternalError(`${item.key} is no longer ${item.state}; transition to ${to} refused`);
      this.appendEvent(item.id, item.state, to, detail, now, to === "failed" ? (patch.errorCode ?? null) : null);
      return patched(item, patch, { state: to, updatedAt: now });
    });
  }

  /** Changes columns without a state change (a poll's next time, a fresh URL): no event. */
  update(item: ItemRecord, patch: ItemPatch): ItemRecord {
    patch = redactedPatch(patch);
    const { sql, values } = patchSql(patch);
    if (values.length === 0) return item;
    this.beforeWrite("grouped");
    const now = this.now();
    this.statement(`UPDATE items SET updated_at = ?${sql} WHERE id = ?`).run(now, ...values, item.id);
    return patched(item, patch, { updatedAt: now });
  }

  /** Records a decision that does not change the state (a reconcile that waits, a lock take-over). */
  note(item: ItemRecord, detail: string, patch: ItemPatch = {}): ItemRecord {
    this.beforeWrite("grouped");
    return this.atomically(() => {
      const updated = this.update(item, patch);
      this.appendEvent(item.id, item.state, item.state, detail, this.now());
      return updated;
    });
  }

  private appendEvent(itemId: number, from: ItemState | null, to: ItemState, detail: string | null, at: number, errorCode: string | null = null): void {
    this.statement(`INSERT INTO events (item_id, run_id, at, from_state, to_state, detail, error_code) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(itemId, this.runId, at, from, to, redactSecrets(detail), errorCode);
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

  /**
   * Queued items whose wait is over: those eligible longest first, then in manifest order,
   * so fresh items (never tried) go before retries waiting out a backoff.
   */
  nextQueued(now: number, limit: number, excludeIds: ReadonlySet<number> = new Set()): ItemRecord[] {
    // The ids to skip (items the runner holds) are left out in SQL: reading and parsing up
    // to `concurrency` extra rows per slot refill only to drop them cost 0.4 ms per item.
    const rows = this.statement(
      `SELECT * FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'queued' AND next_attempt_at <= ? AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY next_attempt_at, id LIMIT ?`,
    ).all(now, JSON.stringify([...excludeIds]), limit) as Row[];
    return rows.map(toItem);
  }

  /** When the earliest waiting queued item becomes eligible, or null when none waits. */
  earliestQueuedAt(): number | null {
    const row = this.statement(`SELECT MIN(next_attempt_at) AS t FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'queued'`).get() as Row;
    return (row.t as number | null) ?? null;
  }

  /** Items still to submit (queued, or submitted with no answer) by provider and model, for the credit estimate. */
  toSubmitByModel(): { provider: ProviderName; model: ImageModel; count: number }[] {
    return this.db
      .prepare(
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

  // ---- retry ---------------------------------------------------------------------

  /**
   * Puts chosen failed (or, when asked, missing) items back in the queue with fresh attempts.
   * Filters combine: rows or keys (either matches; a key given as a row counts, as people copy
   * what status shows), then codes. Returns the items requeued.
   */
  requeueFailed(filter: { rowIds?: readonly string[]; keys?: readonly string[]; codes?: readonly string[]; states?: readonly ("failed" | "missing")[] } = {}): ItemRecord[] {
    this.beforeWrite("fsync");
    return this.atomically(() => {
      let chosen = this.inStates(filter.states ?? ["failed"]);
      if (filter.rowIds || filter.keys) chosen = chosen.filter((i) => (filter.rowIds?.some((r) => r === i.rowId || r === i.key) ?? false) || (filter.keys?.includes(i.key) ?? false));
      if (filter.codes) chosen = chosen.filter((i) => i.errorCode !== null && filter.codes!.includes(i.errorCode));
      return chosen.map((item) => {
        const step = retryStepOf(item);
        switch (step.to) {
          case "running":
            return this.transition(item, "running", { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, submittedAt: this.now() }, step.detail);
          case "downloading":
            return this.transition(item, "downloading", { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, resultUrl: null }, step.detail);
          case "submitting":
            return this.transition(item, "submitting", { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null }, step.detail);
          case "queued":
            return this.transition(
              item,
              "queued",
              {
                attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, jobId: null, imageRef: null, resultUrl: null,
                // A missing image's record: the next delivery is a new image (its old sidecar is kept aside).
                ...(item.state === "missing" ? { filePath: null, thumbPath: null, sha256: null, bytes: null, width: null, height: null, format: null, completedAt: null } : {}),
              },
              step.detail,
            );
        }
      });
    });
  }

  // ---- delivered files -------------------------------------------------------------

  /**
   * A page of the done items of the manifest that `provider` made, after id `afterId`, as
   * `[id, key, file path, bytes]` (raw rows): a resume of 100,000 items reads them a page at a time.
   */
  doneImagesAfter(provider: ProviderName, afterId: number, limit: number): [number, string, string | null, number | null][] {
    return this.statement(`SELECT id, key, file_path, bytes FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'done' AND provider = ? AND id > ? ORDER BY id LIMIT ?`)
      .raw()
      .all(provider, afterId, limit) as [number, string, string | null, number | null][];
  }

  /** Calls `visit` with the key of each live queued item never submitted, one row at a time. */
  forEachUntriedKey(visit: (key: string) => void): void {
    for (const key of this.statement(`SELECT key FROM items WHERE ${LIVE} AND state = 'queued' AND attempts = 0`).pluck().iterate() as Iterable<string>) visit(key);
  }

  /**
   * Records a queued item as done with an image already on disk (adopted from its sidecar
   * after the database was lost): no request to any service. `provider` and `requestHash`
   * are the sidecar's, so a later run with another provider sees who made it.
   */
  adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): ItemRecord {
    this.beforeWrite("grouped");
    return this.atomically(() => {
      const now = this.now();
      const patch = redactedPatch(adopted.patch);
      const { sql, values } = patchSql(patch);
      const result = this.statement(`UPDATE items SET state = 'done', provider = ?, request_hash = ?, updated_at = ?${sql} WHERE id = ? AND state = 'queued' AND ${LIVE}`)
        .run(adopted.provider, adopted.requestHash, now, ...values, item.id);
      if (result.changes !== 1) throw new InternalError(`${item.key} is no longer queued; adoption refused`);
      this.appendEvent(item.id, "queued", "done", detail, now);
      return patched({ ...item, provider: adopted.provider, requestHash: adopted.requestHash }, patch, { state: "done", updatedAt: now });
    });
  }

  // ---- runs and the lock (sqlite/runs.ts) ----------------------------------------

  endRun(id: number, end: { outcome: RunOutcome; exitCode: number; stopReason: string | null; itemsDone: number; itemsFailed: number; credits: number }): void {
    this.runBook.endRun(id, end);
  }

  run(id: number): RunRecord | undefined {
    return this.runBook.run(id);
  }

  recentRuns(limit: number): RunRecord[] {
    return this.runBook.recentRuns(limit);
  }

  /** Starts a run unless a live process holds the lock (RunBook.beginRun); its events carry the run's id. */
  beginRun(...args: Parameters<RunBook["beginRun"]>): ReturnType<RunBook["beginRun"]> {
    const result = this.runBook.beginRun(...args);
    if (result.acquired) this.runId = result.run.id;
    return result;
  }

  lockHolder(): LockHolder | null {
    return this.runBook.lockHolder();
  }

  heartbeat(runId: number): void {
    this.runBook.heartbeat(runId);
  }

  releaseLock(runId: number): void {
    this.runBook.releaseLock(runId);
  }

  /** Marks runs whose process died (RunBook.closeAbandonedRuns); returns how many. */
  closeAbandonedRuns(exceptId: number): number {
    return this.runBook.closeAbandonedRuns(exceptId);
  }

  // ---- report cursors ------------------------------------------------------------

  /** Live items in database order, one row at a time (results.csv, results.jsonl). Consume without awaiting. */
  liveItems(): Generator<ReportItem> {
    return liveItemsById(this.db);
  }

  /** Live items in contact-sheet order (report-cursors.ts). Consume without awaiting. */
  liveItemsInSheetOrder(): Generator<SheetItem> {
    return liveItemsInSheetOrder(this.db);
  }

  /** Keeps `keys` as the manifest's item order for this connection's sheet (a sync keeps it too). */
  keepManifestOrder(keys: Iterable<string>): void {
    setManifestOrder(this.db, keys);
  }

  // ---- renditions ----------------------------------------------------------------

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

  saveRendition(r: RenditionRecord): void {
    this.beforeWrite("grouped");
    this.statement(`INSERT OR REPLACE INTO renditions (item_id, name, settings_hash, path, width, height, made_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(r.itemId, r.name, r.settingsHash, r.path, r.width, r.height, this.now());
  }
}
