// The SQLite checkpoint store. All SQL of imgbatch lives in src/store/. Every state change
// also appends an event, so a night's history can be read back; the changes of one turn of
// the event loop commit together (beforeWrite).
import type Database from "better-sqlite3";
import { FatalRunError, InternalError } from "../errors.js";
import { redactSecrets } from "../secrets.js";
import type { ProviderName } from "../providers/provider.js";
import { CommitGroups, type WriteCommit } from "./sqlite/commit-groups.js";
import { openDatabase } from "./sqlite/open.js";
import { SqliteReads } from "./sqlite/reads.js";
import { RunBook } from "./sqlite/runs.js";
import { retryStepOf } from "./retry-step.js";
import { canTransition, type ItemState } from "./states.js";
import { type SyncSummary, syncManifestInChunks } from "./manifest-sync.js";
import type { HashWith, PlannedWithHash } from "./sync.js";
import type { ItemPatch, ItemRecord, LockHolder, RenditionRecord, RunOutcome, RunRecord } from "./types.js";
import { setManifestOrder } from "./report-cursors.js";
import { patched, patchSql } from "./rows.js";

const LIVE = "superseded_at IS NULL";

/**
 * A stored message may quote the service, which may echo the key: masked again here, where
 * it is written, whatever the caller did (secrets.ts).
 */
function redactedPatch(patch: ItemPatch): ItemPatch {
  return patch.errorMessage ? { ...patch, errorMessage: redactSecrets(patch.errorMessage) } : patch;
}

export { DatabaseUnusableError } from "./sqlite/open.js";

export type { StateCounts } from "./sqlite/reads.js";
export { retryStepOf } from "./retry-step.js";

export interface StoreOptions {
  readonly?: boolean;
  now?: () => number;
}

export class Store extends SqliteReads {
  private readonly now: () => number;
  /** Events written by transitions carry the id of the run that made them. */
  runId: number | null = null;

  private readonly groups: CommitGroups;
  private readonly runBook: RunBook;

  /**
   * Runs `work` in one transaction (nested: a savepoint). Made once: better-sqlite3 builds
   * five wrapper functions per transaction() call, a large share of what a commit allocates.
   */
  private readonly atomically: <T>(work: () => T) => T;

  private constructor(db: Database.Database, now: () => number) {
    super(db);
    this.now = now;
    const transaction = db.transaction((work: () => unknown) => work());
    this.atomically = <T>(work: () => T): T => transaction(work) as T;
    this.groups = new CommitGroups(db, (source) => this.statement(source));
    this.runBook = new RunBook(db, (source) => this.statement(source), (commit) => this.beforeWrite(commit), () => this.now());
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

  /** Keeps `keys` as the manifest's item order for this connection's sheet (a sync keeps it too). */
  keepManifestOrder(keys: Iterable<string>): void {
    setManifestOrder(this.db, keys);
  }

  // ---- renditions ----------------------------------------------------------------

  saveRendition(r: RenditionRecord): void {
    this.beforeWrite("grouped");
    this.statement(`INSERT OR REPLACE INTO renditions (item_id, name, settings_hash, path, width, height, made_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(r.itemId, r.name, r.settingsHash, r.path, r.width, r.height, this.now());
  }
}
