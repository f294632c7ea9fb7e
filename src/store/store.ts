// The SQLite checkpoint store. All SQL of imgbatch lives in src/store/. Every state change
// also appends an event, so a night's history can be read back; the changes of one turn of
// the event loop commit together (beforeWrite).
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { deferred, type Deferred } from "../deferred.js";
import { FatalRunError, InternalError, errorMessage } from "../errors.js";
import { redactSecrets } from "../secrets.js";
import type { ImageModel } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import { MIGRATIONS } from "./migrations.js";
import { canTransition, ITEM_STATES, type ItemState } from "./states.js";
import { type SyncSummary, syncManifestInChunks } from "./manifest-sync.js";
import type { HashWith, PlannedWithHash } from "./sync.js";
import type { EventRecord, ItemPatch, ItemRecord, LockHolder, RenditionRecord, RunOutcome, RunRecord } from "./types.js";
import { liveItemsById, liveItemsInSheetOrder, setManifestOrder, type ReportItem, type SheetItem } from "./report-cursors.js";
import { patched, patchSql, type Row, toItem, toLockHolder, toRendition, toRun } from "./rows.js";

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

export type StateCounts = Record<ItemState, number>;

interface CommitGroup {
  /** Commits with synchronous=FULL: it holds a `submitting`. */
  fsync: boolean;
  committed: Deferred;
}

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
  /** Mirrors PRAGMA synchronous: FULL (fsync at each commit) unless a light write set NORMAL. */
  private fsyncEachCommit = true;
  /** The open transaction of this turn's state changes (beforeWrite). */
  private group: CommitGroup | null = null;
  /** Why a group failed to commit (failGroup): thrown by every later write. */
  private broken: FatalRunError | null = null;

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
  }

  private statement(source: string): Database.Statement {
    let statement = this.statements.get(source);
    if (!statement) {
      statement = this.db.prepare(source);
      this.statements.set(source, statement);
    }
    return statement;
  }

  /**
   * How a write commits. An item's state changes made in one turn of the event loop share one
   * transaction, committed when the turn ends (`grouped`): at zero latency four commits per
   * item became about one (benchmark scenario 3).
   * - "grouped-fsync": `submitting`, written before a submit is sent, on which money rests.
   *   Its group commits with synchronous=FULL (an fsync of the WAL), and the submit waits for
   *   that commit (`committed`). The other submits of the turn share the fsync.
   * - "grouped": the item's later steps (running with its job id, downloading, done, failed,
   *   notes, poll times, renditions) and the heartbeat. Alone in a group they commit with
   *   NORMAL: in WAL mode that survives a killed process, and the next FULL commit makes it
   *   durable on disk.
   * - "fsync": planning and run bookkeeping, alone and FULL, after the open group commits.
   * A kill loses at most the state changes of its last turn, a power cut those since the last
   * FULL commit: each goes back to a state the next run resumes without paying again (a
   * `submitting` row is reconciled through the listings, a `running` one is read again, a
   * `downloading` one delivered again), as a kill during a submit's request always could.
   */
  private beforeWrite(commit: "fsync" | "grouped" | "grouped-fsync"): void {
    if (this.db.readonly) return;
    if (this.broken) throw this.broken;
    this.failIfRolledBack();
    if (commit === "fsync") {
      this.commitGroup();
      this.fsyncCommits(true);
      return;
    }
    const fsync = commit === "grouped-fsync";
    if (this.group) {
      if (!fsync || this.group.fsync) return;
      // A NORMAL group ends early: SQLite cannot make it FULL once begun.
      this.commitGroup();
    } else if (this.db.inTransaction) {
      // Inside an outer write (requeueFailed), which commits FULL; no submit belongs there.
      if (fsync) throw new InternalError("a submit inside another write's transaction could not be waited for");
      return;
    }
    this.openGroup(fsync);
  }

  private fsyncCommits(durable: boolean): void {
    // Inside a transaction the outer write has chosen already (SQLite refuses a change there).
    if (this.fsyncEachCommit === durable || this.db.inTransaction) return;
    this.statement(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL").run();
    this.fsyncEachCommit = durable;
  }

  private openGroup(fsync: boolean): void {
    this.fsyncCommits(fsync);
    this.statement("BEGIN").run();
    const group: CommitGroup = { fsync, committed: deferred() };
    // Most groups have nobody waiting on them: their failure reaches every later write.
    group.committed.promise.catch(() => {});
    this.group = group;
    setImmediate(() => {
      if (this.group !== group) return; // committed early
      try {
        this.commitGroup();
      } catch {
        /* kept in `broken`: every later write throws it */
      }
    });
  }

  /** Commits the open group of state changes now, if there is one. */
  commitGroup(): void {
    const group = this.group;
    if (!group || !this.db.open) return;
    this.failIfRolledBack();
    try {
      this.statement("COMMIT").run();
    } catch (error) {
      this.failGroup(error);
    }
    this.group = null;
    group.committed.resolve();
  }

  /** An I/O error or a full disk makes SQLite roll the whole open transaction back by itself. */
  private failIfRolledBack(): void {
    if (this.group && !this.db.inTransaction) this.failGroup(new Error("SQLite rolled the open transaction back"));
  }

  /**
   * The open group did not commit. Its waiters (submits) are told first, and the store
   * refuses every later write: the run's records in memory no longer match the database, and
   * whatever the next run finds there it resumes without paying again.
   */
  private failGroup(cause: unknown): never {
    const group = this.group;
    this.group = null;
    this.broken = new FatalRunError(`the job database could not commit: ${errorMessage(cause)}`, "DB_COMMIT_FAILED", 3, { cause });
    group?.committed.reject(this.broken);
    try {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
    } catch {
      /* the connection is closed on exit; nothing more is written through it */
    }
    throw this.broken;
  }

  /** Set once a group failed to commit: every write since throws it. */
  get failure(): FatalRunError | null {
    return this.broken;
  }

  /**
   * Resolves once every state change made so far is committed: on disk, when one of them
   * was `submitting` (its group committed FULL). Rejects when that commit failed.
   */
  committed(): Promise<void> {
    return this.group ? this.group.committed.promise : Promise.resolve();
  }

  /**
   * Opens (and creates or migrates) a database. A file that is no database, or one of a
   * newer imgbatch, throws DatabaseUnusableError: the caller names the way out (rebuild).
   */
  static open(path: string, options: StoreOptions = {}): Store {
    if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
      db.pragma("busy_timeout = 5000");
      // SQLite's own default page cache (2 MiB) instead of better-sqlite3's 16 MiB, which
      // made memory grow with the manifest; the OS page cache keeps reads cheap.
      db.pragma("cache_size = -2000");
      // A file of a newer imgbatch is refused before anything here changes it (WAL mode included).
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > MIGRATIONS.length) throw newerSchema(version);
      if (!options.readonly) {
        switchToWal(db);
        // FULL: a committed transition survives power loss, which is what "never pay twice" rests on.
        db.pragma("synchronous = FULL");
        // Off while a migration rebuilds a table that others reference (SQLite's own recipe).
        db.pragma("foreign_keys = OFF");
        migrate(db);
        db.pragma("foreign_keys = ON");
      } else {
        // A read of the schema: a file that is no database fails here, not at the first query.
        db.prepare("SELECT COUNT(*) FROM sqlite_master").get();
      }
    } catch (error) {
      db?.close();
      if (error instanceof DatabaseUnusableError) throw error;
      if (isSqliteCorruption(error)) throw new DatabaseUnusableError(`${path} is not a readable imgbatch database (${errorMessage(error)})`, { cause: error });
      throw error;
    }
    return new Store(db, options.now ?? Date.now);
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

  events(itemId?: number): EventRecord[] {
    const rows = this.statement(
        `SELECT e.*, i.key FROM events e JOIN items i ON i.id = e.item_id ${itemId === undefined ? "" : "WHERE e.item_id = ?"} ORDER BY e.id`,
      )
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
  failureReasons(limit = 5, runId?: number): { code: string; count: number; example: string }[] {
    const filter = runId === undefined ? "" : `AND id IN (SELECT item_id FROM events WHERE run_id = ${Number(runId)} AND to_state = 'failed')`;
    const rows = this.statement(
        `SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n, MAX(error_message) AS example FROM items
         WHERE ${LIVE} AND in_manifest = 1 AND state = 'failed' ${filter} GROUP BY 1 ORDER BY n DESC, code LIMIT ?`,
      )
      .all(limit) as Row[];
    return rows.map((r) => ({ code: r.code as string, count: r.n as number, example: (r.example as string | null) ?? "" }));
  }

  /**
   * Why items failed during one run, most common first: from the run's own events, so the
   * answer does not change when those items are retried later.
   */
  runFailureReasons(runId: number, limit = 5): { code: string; count: number; example: string }[] {
    // A database not yet migrated to 3 (status opens it read-only) has no event codes.
    const eventCode = this.schemaVersion() >= 3 ? "e.error_code, " : "";
    const rows = this.statement(
        `SELECT COALESCE(${eventCode}i.error_code, 'UNKNOWN') AS code, COUNT(*) AS n, COALESCE(MAX(e.detail), MAX(i.error_message)) AS example
         FROM events e JOIN items i ON i.id = e.item_id
         WHERE e.run_id = ? AND e.to_state = 'failed' GROUP BY 1 ORDER BY n DESC, code LIMIT ?`,
      )
      .all(runId, limit) as Row[];
    return rows.map((r) => ({ code: r.code as string, count: r.n as number, example: (r.example as string | null) ?? "" }));
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
      return chosen.map((item) =>
        item.state === "failed" && item.jobId !== null && JOB_KEPT_CODES.has(item.errorCode ?? "")
          ? this.transition(item, "running", { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, submittedAt: this.now() }, `retry requested (was ${item.errorCode}): reading job ${item.jobId} again before paying for a new one`)
          : // A lost submit not settled: one more look at the listings first (attempts 0 marks it;
            // if that look cannot settle it either, the next retry submits).
            item.state === "failed" && item.errorCode === "UNRECONCILED" && item.attempts > 0
            ? this.transition(item, "submitting", { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null }, "retry requested (was UNRECONCILED): looking for the lost submit's job once more before paying")
            : this.transition(
          item,
          "queued",
          {
            attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, jobId: null, imageRef: null, resultUrl: null,
            // A missing image's record: the next delivery is a new image (its old sidecar is kept aside).
            ...(item.state === "missing" ? { filePath: null, thumbPath: null, sha256: null, bytes: null, width: null, height: null, format: null, completedAt: null } : {}),
          },
          `retry requested (was ${item.state === "missing" ? "missing" : (item.errorCode ?? "failed")})`,
        ),
      );
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

  // ---- runs and the lock ---------------------------------------------------------

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
    if (result.acquired) this.runId = result.run.id;
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
   * Returns how many were closed.
   */
  closeAbandonedRuns(exceptId: number): number {
    this.beforeWrite("fsync");
    return this.statement(
        `UPDATE runs SET outcome = 'died', stop_reason = 'no clean exit: killed or crashed', exit_code = NULL,
           ended_at = COALESCE((SELECT MAX(at) FROM events WHERE run_id = runs.id), started_at),
           items_done = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'done'),
           items_failed = (SELECT COUNT(*) FROM events WHERE run_id = runs.id AND to_state = 'failed'),
           credits = (SELECT COALESCE(SUM(i.credits), 0) FROM events e JOIN items i ON i.id = e.item_id
                      WHERE e.run_id = runs.id AND e.to_state = 'downloading' AND e.from_state IN ('running', 'submitting'))
         WHERE outcome IS NULL AND id <> ?`,
      )
      .run(exceptId).changes;
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

/** A database this imgbatch cannot use as it is: not a database, damaged, or of a newer version. */
export class DatabaseUnusableError extends Error {
  override name = "DatabaseUnusableError";
}

function newerSchema(version: number): DatabaseUnusableError {
  return new DatabaseUnusableError(`its schema (${version}) is newer than this imgbatch's (${MIGRATIONS.length}); upgrade imgbatch`);
}

const CORRUPTION_CODES = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_INDEX"]);

function isSqliteCorruption(error: unknown): boolean {
  return typeof (error as { code?: unknown })?.code === "string" && CORRUPTION_CODES.has((error as { code: string }).code);
}

/**
 * WAL mode needs the database to itself for a moment: two processes opening a new database at
 * once may be told "busy" at once (SQLite does not wait out busy_timeout there), so it retries.
 */
function switchToWal(db: Database.Database, timeoutMs = 5_000): void {
  const started = Date.now();
  for (;;) {
    try {
      db.pragma("journal_mode = WAL");
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "SQLITE_BUSY" || Date.now() - started > timeoutMs) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/**
 * Applies the migrations not yet applied, each in its own immediate transaction that reads the
 * version again: two processes opening a new database at once take turns instead of both
 * creating the schema.
 */
function migrate(db: Database.Database): void {
  for (;;) {
    const applied = db.transaction(() => {
      const current = db.pragma("user_version", { simple: true }) as number;
      if (current > MIGRATIONS.length) throw newerSchema(current);
      if (current === MIGRATIONS.length) return false;
      const migration = MIGRATIONS[current]!;
      if (typeof migration === "string") db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${current + 1}`);
      return true;
    }).immediate();
    if (!applied) return;
  }
}
