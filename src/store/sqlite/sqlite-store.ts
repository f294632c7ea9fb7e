// The SQLite adapter of the store port: one file, one connection, every change also an event.
// Its parts are synchronous (better-sqlite3) and split by concern: reads (reads.ts), item writes
// and claims (item-writes.ts), commit groups and durability (commit-groups.ts), runs and the lock
// (runs.ts), the manifest sync (manifest-sync.ts), report pages (report-cursors.ts), reference
// uploads (uploads.ts).
import type Database from "better-sqlite3";
import type { ProviderName } from "../../providers/provider.js";
import type { InFlightState, ItemWrite, JobTiming, PlanDigests, RequeueFilter, RunEnd, RunStart, RunStartInfo, StateCounts, Store, SyncRules } from "../port.js";
import type { ItemState } from "../states.js";
import type { PlannedWithHash, SyncSummary } from "../sync.js";
import type { DecisionRecord, ItemPatch, ItemRecord, LockHolder, RenditionRecord, ReportItem, ReviewDecision, SheetItem, UploadRecord } from "../types.js";
import { CommitGroups } from "./commit-groups.js";
import { DecisionBook } from "./decisions.js";
import { ItemWrites } from "./item-writes.js";
import { syncManifestInChunks } from "./manifest-sync.js";
import { openDatabase } from "./open.js";
import { jobTimings, planDigests } from "./plan-reads.js";
import { SqliteReads, statementCache, type Statement } from "./reads.js";
import { setManifestOrder } from "./report-cursors.js";
import { RunBook } from "./runs.js";
import { UploadBook } from "./uploads.js";

export { DatabaseUnusableError } from "../database-unusable.js";

export interface SqliteStoreOptions {
  readonly?: boolean;
  now?: () => number;
}

/** Rows per page of a report: large enough that SQLite works in bulk, small enough to be soon garbage. */
const REPORT_PAGE_ROWS = 500;

export class SqliteStore implements Store {
  readonly sharesRuns = false;
  /** Events written by item writes carry the id of the run that made them. */
  private runId: number | null = null;
  private readonly statement: Statement;
  private readonly reads: SqliteReads;
  private readonly groups: CommitGroups;
  private readonly items: ItemWrites;
  private readonly runBook: RunBook;
  private readonly decisions: DecisionBook;
  private readonly uploads: UploadBook;

  private constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.statement = statementCache(db);
    this.reads = new SqliteReads(db, this.statement);
    this.groups = new CommitGroups(db, this.statement);
    // Made once: better-sqlite3 builds five wrapper functions per transaction() call.
    const transaction = db.transaction((work: () => unknown) => work());
    const atomically = <T>(work: () => T): T => transaction(work) as T;
    const beforeWrite = this.groups.beforeWrite.bind(this.groups);
    this.decisions = new DecisionBook(this.statement, beforeWrite, now);
    const rejectedKeys = () => new Set([...this.decisions.current().values()].filter((d) => d.decision === "rejected").map((d) => d.key));
    const inGroup = <T>(work: () => T): T => this.groups.writeInGroup(work, atomically);
    this.items = new ItemWrites({ statement: this.statement, beforeWrite, atomically, inGroup, now, runId: () => this.runId, inStates: (states) => this.reads.inStates(states), rejectedKeys });
    this.runBook = new RunBook(db, this.statement, beforeWrite, now);
    this.uploads = new UploadBook(this.statement, beforeWrite);
  }

  /**
   * Opens (and creates or migrates) a database. A file that is no database, or one of a
   * newer imgbatch, throws DatabaseUnusableError: the caller names the way out (rebuild).
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    return new SqliteStore(openDatabase(path, options), options.now ?? Date.now);
  }

  // ---- the database itself

  async close(): Promise<void> {
    try {
      this.groups.commitGroup();
    } finally {
      if (this.db.open) this.db.close();
    }
  }

  async flush(): Promise<void> {
    this.groups.commitGroup();
    if (this.groups.failure) throw this.groups.failure;
  }

  async probeWrite(): Promise<void> {
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      // Another run holding the lock is the lock's business (beginRun), not a broken file.
      if ((error as { code?: string }).code === "SQLITE_BUSY") return;
      throw error;
    }
    this.db.exec("ROLLBACK");
  }

  /** The migrations applied (SQLite's user_version): not part of the port, each backend numbers its own. */
  async schemaVersion(): Promise<number> {
    return this.reads.schemaVersion();
  }

  async integrityCheck(): Promise<string> {
    return this.reads.integrityCheck();
  }

  async isEmpty(): Promise<boolean> {
    return this.reads.isEmpty();
  }

  async rememberedProvider(): Promise<ProviderName | null> {
    return this.reads.rememberedProvider();
  }

  // ---- items

  async get(id: number): Promise<ItemRecord | undefined> {
    return this.reads.get(id);
  }

  async byKey(key: string): Promise<ItemRecord | undefined> {
    return this.reads.byKey(key);
  }

  async inStates(states: readonly ItemState[]): Promise<ItemRecord[]> {
    return this.reads.inStates(states);
  }

  async counts(): Promise<StateCounts> {
    return this.reads.counts();
  }

  async removedFromManifest(): Promise<ItemRecord[]> {
    return this.reads.removedFromManifest();
  }

  async totalCredits(): Promise<number> {
    return this.reads.totalCredits();
  }

  async toSubmitByModel(): ReturnType<Store["toSubmitByModel"]> {
    return this.reads.toSubmitByModel();
  }

  async earliestQueuedAt(): Promise<number | null> {
    return this.reads.earliestQueuedAt();
  }

  async isClaimed(ref: string): Promise<boolean> {
    return this.reads.isClaimed(ref);
  }

  async doneImagesAfter(provider: ProviderName, afterId: number, limit: number): ReturnType<Store["doneImagesAfter"]> {
    return this.reads.doneImagesAfter(provider, afterId, limit);
  }

  async rowImages(rowId: string, exceptKey: string): ReturnType<Store["rowImages"]> {
    return this.reads.rowImages(rowId, exceptKey);
  }

  async untriedKeys(): Promise<Set<string>> {
    return this.reads.untriedKeys();
  }

  // ---- claims

  /** One worker at a time holds a SQLite run: its own slots bound its concurrency. */
  async claimQueued(worker: string, now: number, limit: number, leaseUntil: number): Promise<ItemRecord[]> {
    return this.items.claimQueued(worker, now, limit, leaseUntil);
  }

  /** One worker: its own in-memory bucket (ServiceGate) is the key's, so these hold nothing. */
  takeRequestToken = async (): Promise<number> => 0;
  pauseKey = async (): Promise<void> => {};

  async claimInFlight(worker: string, now: number, leaseUntil: number, states?: readonly InFlightState[]): Promise<ItemRecord[]> {
    return this.items.claimInFlight(worker, now, leaseUntil, states);
  }

  async releaseItem(item: ItemRecord): Promise<void> {
    this.items.releaseItem(item);
  }

  async claimAtRest(id: number, worker: string, now: number, leaseUntil: number): Promise<ItemRecord | null> {
    return this.items.claimAtRest(id, worker, now, leaseUntil);
  }

  async renewLeases(worker: string, leaseUntil: number): Promise<void> {
    this.items.renewLeases(worker, leaseUntil);
  }

  async releaseClaims(worker: string): Promise<void> {
    this.items.releaseClaims(worker);
  }

  // ---- writes

  async write(item: ItemRecord, change: ItemWrite): Promise<ItemRecord> {
    const written = this.items.write(item, change);
    // The group commits at the end of this turn, with an fsync: the other submits of the turn share it.
    if (change.durable) await this.groups.committed();
    return written;
  }

  async remake(item: ItemRecord, why: string, carry?: { qcRetries?: number }): Promise<ItemRecord> {
    return this.items.remake(item, why, carry);
  }

  async requeue(filter: RequeueFilter): Promise<ItemRecord[]> {
    return this.items.requeue(filter);
  }

  async adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): Promise<ItemRecord> {
    return this.items.adoptDelivered(item, adopted, detail);
  }

  async syncManifest(planned: Iterable<PlannedWithHash>, provider: ProviderName, rules: SyncRules = {}): Promise<SyncSummary> {
    this.groups.beforeWrite("fsync");
    return syncManifestInChunks(this.db, planned, provider, { now: this.now(), runId: this.runId }, {
      hashWith: rules.hashWith ?? (() => ""),
      allowProviderSwitch: rules.allowProviderSwitch ?? false,
      abandonInFlight: rules.abandonInFlight ?? false,
    });
  }

  async saveRendition(r: RenditionRecord): Promise<void> {
    this.items.saveRendition(r);
  }

  async recordOrphanJob(key: string, jobId: string, worker: string): Promise<void> {
    this.groups.beforeWrite("fsync");
    this.statement(`INSERT INTO orphan_jobs (item_key, job_id, worker, at) VALUES (?, ?, ?, ?)`).run(key, jobId, worker, this.now());
  }

  async orphanJobs(): ReturnType<Store["orphanJobs"]> {
    return (this.statement(`SELECT item_key AS key, job_id AS jobId, worker, at FROM orphan_jobs ORDER BY id`).all() as { key: string; jobId: string; worker: string; at: number }[]);
  }

  // ---- history and reports

  async events(itemId?: number): ReturnType<Store["events"]> {
    return this.reads.events(itemId);
  }

  async failureReasons(limit?: number): ReturnType<Store["failureReasons"]> {
    return this.reads.failureReasons(limit);
  }

  async runFailureReasons(runId: number, limit?: number): ReturnType<Store["runFailureReasons"]> {
    return this.reads.runFailureReasons(runId, limit);
  }

  async renditionsOf(itemId: number): Promise<RenditionRecord[]> {
    return this.reads.renditionsOf(itemId);
  }

  async renditionsByItem(): Promise<Map<number, RenditionRecord[]>> {
    return this.reads.renditionsByItem();
  }

  async keepManifestOrder(keys: Iterable<string>): Promise<void> {
    setManifestOrder(this.db, keys);
  }

  async *liveItems(): AsyncGenerator<ReportItem> {
    for (let afterId = 0; ; ) {
      const page = this.reads.liveItemsPage(afterId, REPORT_PAGE_ROWS);
      yield* page;
      if (page.length < REPORT_PAGE_ROWS) return;
      afterId = page[page.length - 1]!.item.id;
    }
  }

  async *liveItemsInSheetOrder(): AsyncGenerator<SheetItem> {
    const places = this.reads.sheetPlaces();
    for (let start = 0; start < places.length; start += REPORT_PAGE_ROWS) yield* this.reads.sheetItems(places.slice(start, start + REPORT_PAGE_ROWS));
  }

  // ---- the morning review (decisions.ts)

  async recordDecision(d: { key: string; sha256: string; decision: ReviewDecision; note: string | null; reviewer: string }): Promise<DecisionRecord> {
    return this.decisions.record(d);
  }

  async undoDecision(key: string, sha256: string, reviewer: string): Promise<DecisionRecord | null> {
    return this.decisions.undo(key, sha256, reviewer);
  }

  async decisionHistory(key: string): Promise<DecisionRecord[]> {
    return this.decisions.history(key);
  }

  async currentDecisions(): Promise<Map<string, DecisionRecord>> {
    return this.decisions.current();
  }

  async changeMark(): Promise<string> {
    return this.decisions.changeMark();
  }

  // ---- a plan's reads (plan-reads.ts) and reference uploads (uploads.ts)
  readonly planDigests = async (keys: readonly string[]): Promise<PlanDigests> => planDigests(this.statement, keys);
  readonly jobTimings = async (limit: number): Promise<JobTiming[]> => jobTimings(this.statement, limit);
  readonly uploadOf = async (sha256: string, service: string): Promise<UploadRecord | undefined> => this.uploads.get(sha256, service);
  readonly recordUpload = async (upload: UploadRecord): Promise<void> => this.uploads.record(upload);

  // ---- runs and the lock (runs.ts)

  async beginRun(info: RunStartInfo, isStale: (holder: LockHolder) => boolean): Promise<RunStart> {
    const result = this.runBook.beginRun(info, isStale);
    if (result.acquired) this.runId = result.run.id;
    return result;
  }

  async endRun(id: number, end: RunEnd): Promise<void> {
    this.runBook.endRun(id, end);
  }

  async run(id: number): ReturnType<Store["run"]> {
    return this.runBook.run(id);
  }

  async recentRuns(limit: number): ReturnType<Store["recentRuns"]> {
    return this.runBook.recentRuns(limit);
  }

  async lockHolder(): Promise<LockHolder | null> {
    return this.runBook.lockHolder();
  }

  /** The one run holding the lock, as SQLite has at most one worker (whose claims are its run's). */
  async liveWorkers(): ReturnType<Store["liveWorkers"]> {
    const holder = this.runBook.lockHolder();
    if (!holder) return [];
    const inHand = this.statement(`SELECT COUNT(*) FROM items WHERE owner IS NOT NULL`).pluck().get() as number;
    return [{ worker: `${holder.host}:${holder.pid}`, host: holder.host, pid: holder.pid, heartbeatAt: holder.heartbeatAt, itemsInHand: inHand }];
  }

  async heartbeat(runId: number): Promise<void> {
    this.runBook.heartbeat(runId);
  }

  async releaseLock(runId: number): Promise<void> {
    this.runBook.releaseLock(runId);
  }

  async closeAbandonedRuns(exceptId: number): Promise<number> {
    return this.runBook.closeAbandonedRuns(exceptId);
  }
}
