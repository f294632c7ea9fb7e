// The PostgreSQL adapter of the store port: several worker processes, on several hosts, share
// one run. Reads here; item writes and claims in pg-items.ts; the manifest sync in pg-sync.ts;
// runs, workers and decisions in pg-runs.ts. Every call is one round trip where it can be.
import type { ImageModel } from "../../providers/catalog.js";
import type { ProviderName } from "../../providers/provider.js";
import type { InFlightState, ItemWrite, JobTiming, PlanDigests, ReportTurns, RequeueFilter, RunChanges, RunEnd, RunStart, RunStartInfo, StateCounts, Store, SyncRules } from "../port.js";
import { toItem, toRendition } from "../rows.js";
import { ITEM_STATES, type ItemState } from "../states.js";
import type { PlannedWithHash, SyncSummary } from "../sync.js";
import type { DecisionRecord, EventRecord, FailureReason, ItemPatch, ItemRecord, LockHolder, RenditionRecord, ReportItem, ReviewDecision, RunRecord, SheetItem, UploadRecord } from "../types.js";
import { Connection, type Row } from "./connection.js";
import { redactUrl } from "./redact-url.js";
import { PgItems, pauseKeyPg, seedKeyPg, takeRequestTokenPg } from "./pg-items.js";
import { jobTimingsPg, planDigestsPg, recordUploadPg, uploadOfPg } from "./pg-plan.js";
import { failureReasonsPg, liveItemsInSheetOrderPg, liveItemsPg, renditionsByItemPg, runFailureReasonsPg } from "./pg-reports.js";
import { PgReportTurns } from "./pg-report-turns.js";
import { PgRowmates } from "./pg-rowmates.js";
import { PgRunChanges } from "./pg-run-changes.js";
import { PgRuns } from "./pg-runs.js";
import { keepManifestOrderPg, syncManifestPg } from "./pg-sync.js";
import { importSqlite, type ImportSummary } from "./pg-import.js";
import { migrate } from "./schema.js";

const LIVE = "superseded_at IS NULL";

export interface PgStoreOptions {
  /** A clock for tests; without one, leases are judged by the database's clock. */
  now?: () => number;
  /** How long a worker waits for another's turn at the report (default a minute; tests shorten it). */
  reportWaitMs?: number;
}

export class PgStore implements Store {
  readonly sharesRuns = true;
  readonly runChanges: RunChanges;
  readonly reportTurns: ReportTurns;
  private readonly rowmates: PgRowmates;
  private runId: number | null = null;
  private readonly now: () => number;
  private readonly items: PgItems;
  private readonly runs: PgRuns;

  private constructor(
    private readonly connection: Connection,
    options: PgStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    const injected = options.now !== undefined;
    this.runs = new PgRuns(connection, this.now);
    this.runChanges = new PgRunChanges(connection);
    this.reportTurns = new PgReportTurns(connection, options.reportWaitMs ?? 60_000);
    this.rowmates = new PgRowmates(connection);
    this.items = new PgItems({
      connection,
      now: this.now,
      leaseClock: () => (injected ? this.now() : null),
      injected,
      runId: () => this.runId,
      rejectedKeys: async () => new Set([...(await this.runs.currentDecisions()).values()].filter((d) => d.decision === "rejected").map((d) => d.key)),
      inStates: (states) => this.inStates(states),
    });
  }

  /** Connects and migrates; the URL's password never appears in what it throws. */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const connection = new Connection(url);
    try {
      const client = await connection.pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await connection.close().catch(() => {});
      const message = error instanceof Error ? error.message : String(error);
      throw Object.assign(new Error(`the PostgreSQL database ${redactUrl(url)} cannot be used: ${message}`), { code: (error as { code?: unknown }).code });
    }
    return new PgStore(connection, options);
  }

  /** Copies a SQLite run (every table, ids kept) into this database, which must hold no items yet. */
  importSqlite(sqlitePath: string): Promise<ImportSummary> {
    return importSqlite(this.connection, sqlitePath).finally(() => this.rowmates.forget());
  }

  private q<T extends Row = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.connection.query<T>(sql, params);
  }

  // ---- the database itself

  async close(): Promise<void> {
    await this.connection.close();
  }

  async flush(): Promise<void> {}

  async probeWrite(): Promise<void> {
    await this.connection.transaction(async (client) => {
      await this.connection.query("CREATE TEMP TABLE IF NOT EXISTS imgbatch_probe (x INTEGER) ON COMMIT DROP", [], client);
    });
  }

  async integrityCheck(): Promise<string> {
    await this.q("SELECT COUNT(*) FROM items");
    return "ok";
  }

  async isEmpty(): Promise<boolean> {
    return (await this.q("SELECT 1 FROM items LIMIT 1")).length === 0;
  }

  async rememberedProvider(): Promise<ProviderName | null> {
    const [row] = await this.q<{ value: string }>("SELECT value FROM settings WHERE name = 'provider'");
    return (row?.value as ProviderName | undefined) ?? null;
  }

  // ---- items

  async get(id: number): Promise<ItemRecord | undefined> {
    const [row] = await this.q("SELECT * FROM items WHERE id = $1", [id]);
    return row ? toItem(row) : undefined;
  }

  async byKey(key: string): Promise<ItemRecord | undefined> {
    const [row] = await this.q(`SELECT * FROM items WHERE key = $1 AND ${LIVE}`, [key]);
    return row ? toItem(row) : undefined;
  }

  async inStates(states: readonly ItemState[]): Promise<ItemRecord[]> {
    return (await this.q(`SELECT * FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = ANY($1::text[]) ORDER BY id`, [states])).map(toItem);
  }

  async counts(): Promise<StateCounts> {
    const counts = Object.fromEntries(ITEM_STATES.map((s) => [s, 0])) as StateCounts;
    for (const r of await this.q<{ state: ItemState; n: number }>(`SELECT state, COUNT(*)::int AS n FROM items WHERE ${LIVE} AND in_manifest = 1 GROUP BY state`)) counts[r.state] = r.n;
    return counts;
  }

  async removedFromManifest(): Promise<ItemRecord[]> {
    return (await this.q(`SELECT * FROM items WHERE ${LIVE} AND in_manifest = 0 ORDER BY id`)).map(toItem);
  }

  async totalCredits(): Promise<number> {
    const [row] = await this.q<{ c: number }>("SELECT COALESCE(SUM(credits), 0)::float8 AS c FROM items WHERE state IN ('done', 'missing')");
    return row?.c ?? 0;
  }

  async toSubmitByModel(): Promise<{ provider: ProviderName; model: ImageModel; count: number }[]> {
    return this.q(
      `SELECT provider, (request_json::json ->> 'model') AS model, COUNT(*)::int AS count FROM items
       WHERE ${LIVE} AND in_manifest = 1 AND state IN ('queued', 'submitting') GROUP BY 1, 2 ORDER BY 1, 2`,
    ) as Promise<{ provider: ProviderName; model: ImageModel; count: number }[]>;
  }

  async earliestQueuedAt(): Promise<number | null> {
    const [row] = await this.q<{ t: number | null }>(`SELECT MIN(next_attempt_at) AS t FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'queued'`);
    return row?.t ?? null;
  }

  async isClaimed(ref: string): Promise<boolean> {
    return (await this.q("SELECT 1 FROM items WHERE job_id = $1 OR image_ref = $1 LIMIT 1", [ref])).length > 0;
  }

  async doneImagesAfter(provider: ProviderName, afterId: number, limit: number): Promise<[number, string, string | null, number | null][]> {
    const rows = await this.q<{ id: number; key: string; file_path: string | null; bytes: number | null }>(
      `SELECT id, key, file_path, bytes FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'done' AND provider = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [provider, afterId, limit],
    );
    return rows.map((r) => [r.id, r.key, r.file_path, r.bytes]);
  }

  rowImages(rowId: string, exceptKey: string): ReturnType<Store["rowImages"]> {
    return this.rowmates.of(rowId, exceptKey);
  }

  async untriedKeys(): Promise<Set<string>> {
    return new Set((await this.q<{ key: string }>(`SELECT key FROM items WHERE ${LIVE} AND state = 'queued' AND attempts = 0`)).map((r) => r.key));
  }

  // ---- claims and writes (pg-items.ts)

  claimQueued(worker: string, now: number, limit: number, leaseUntil: number, concurrency?: number): Promise<ItemRecord[]> {
    return this.items.claimQueued(worker, now, limit, leaseUntil, concurrency);
  }

  private readonly seededKeys = new Set<string>();
  async takeRequestToken(keyHash: string, perMinute: number, burst: number): Promise<number> {
    if (!this.seededKeys.has(keyHash)) await seedKeyPg(this.connection, keyHash, burst).then(() => this.seededKeys.add(keyHash));
    return takeRequestTokenPg(this.connection, keyHash, perMinute, burst);
  }

  pauseKey(keyHash: string, untilMs: number): Promise<void> {
    return pauseKeyPg(this.connection, keyHash, untilMs - this.now());
  }

  claimInFlight(worker: string, now: number, leaseUntil: number, states?: readonly InFlightState[]): Promise<ItemRecord[]> {
    return this.items.claimInFlight(worker, now, leaseUntil, states);
  }

  releaseItem(item: ItemRecord): Promise<void> {
    return this.items.releaseItem(item);
  }

  claimAtRest(id: number, worker: string, now: number, leaseUntil: number): Promise<ItemRecord | null> {
    return this.items.claimAtRest(id, worker, now, leaseUntil);
  }

  renewLeases(worker: string, leaseUntil: number): Promise<void> {
    return this.items.renewLeases(worker, leaseUntil - this.now());
  }

  releaseClaims(worker: string): Promise<void> {
    return this.items.releaseClaims(worker);
  }

  write(item: ItemRecord, change: ItemWrite): Promise<ItemRecord> {
    return this.items.write(item, change);
  }

  remake(item: ItemRecord, why: string, carry?: { qcRetries?: number }): Promise<ItemRecord> {
    return this.items.remake(item, why, carry);
  }

  requeue(filter: RequeueFilter): Promise<ItemRecord[]> {
    return this.items.requeue(filter);
  }

  adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): Promise<ItemRecord> {
    return this.items.adoptDelivered(item, adopted, detail);
  }

  syncManifest(planned: Iterable<PlannedWithHash>, provider: ProviderName, rules: SyncRules = {}): Promise<SyncSummary> {
    const { hashWith = () => "", allowProviderSwitch = false, abandonInFlight = false } = rules;
    return syncManifestPg(this.connection, planned, provider, { now: this.now(), runId: this.runId }, { hashWith, allowProviderSwitch, abandonInFlight }).finally(() => this.rowmates.forget());
  }

  async saveRendition(r: RenditionRecord): Promise<void> {
    await this.q(
      `INSERT INTO renditions (item_id, name, settings_hash, path, width, height, made_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (item_id, name) DO UPDATE SET settings_hash = excluded.settings_hash, path = excluded.path, width = excluded.width, height = excluded.height, made_at = excluded.made_at`,
      [r.itemId, r.name, r.settingsHash, r.path, r.width, r.height, this.now()],
    );
  }

  async recordOrphanJob(key: string, jobId: string, worker: string): Promise<void> {
    await this.q("INSERT INTO orphan_jobs (item_key, job_id, worker, at) VALUES ($1, $2, $3, $4)", [key, jobId, worker, this.now()]);
  }

  async orphanJobs(): ReturnType<Store["orphanJobs"]> {
    return this.q<{ key: string; jobId: string; worker: string; at: number }>(`SELECT item_key AS key, job_id AS "jobId", worker, at FROM orphan_jobs ORDER BY id`);
  }

  // ---- history and reports

  async events(itemId?: number): Promise<EventRecord[]> {
    const rows = await this.q(`SELECT e.*, i.key FROM events e JOIN items i ON i.id = e.item_id ${itemId === undefined ? "" : "WHERE e.item_id = $1"} ORDER BY e.id`, itemId === undefined ? [] : [itemId]);
    return rows.map((r) => ({ itemId: r.item_id as number, key: r.key as string, runId: r.run_id as number | null, at: r.at as number, from: r.from_state as ItemState | null, to: r.to_state as ItemState, detail: r.detail as string | null }));
  }

  readonly failureReasons = (limit = 5): Promise<FailureReason[]> => failureReasonsPg(this.connection, limit);
  readonly runFailureReasons = (runId: number, limit = 5): Promise<FailureReason[]> => runFailureReasonsPg(this.connection, runId, limit);

  async renditionsOf(itemId: number): Promise<RenditionRecord[]> {
    return (await this.q("SELECT * FROM renditions WHERE item_id = $1 ORDER BY name", [itemId])).map(toRendition);
  }

  readonly renditionsByItem = (): Promise<Map<number, RenditionRecord[]>> => renditionsByItemPg(this.connection);
  readonly keepManifestOrder = (keys: Iterable<string>): Promise<void> => keepManifestOrderPg(this.connection, keys);
  readonly liveItems = (): AsyncGenerator<ReportItem> => liveItemsPg(this.connection);
  readonly liveItemsInSheetOrder = (): AsyncGenerator<SheetItem> => liveItemsInSheetOrderPg(this.connection);

  // ---- a plan's reads and the reference uploads (pg-plan.ts)
  readonly planDigests = (keys: readonly string[]): Promise<PlanDigests> => planDigestsPg(this.connection, keys);
  readonly jobTimings = (limit: number): Promise<JobTiming[]> => jobTimingsPg(this.connection, limit);
  readonly uploadOf = (sha256: string, service: string): Promise<UploadRecord | undefined> => uploadOfPg(this.connection, sha256, service);
  readonly recordUpload = (upload: UploadRecord): Promise<void> => recordUploadPg(this.connection, upload);

  // ---- the morning review, runs and workers (pg-runs.ts)

  recordDecision(d: { key: string; sha256: string; decision: ReviewDecision; note: string | null; reviewer: string }): Promise<DecisionRecord> {
    return this.runs.recordDecision(d);
  }

  undoDecision(key: string, sha256: string, reviewer: string): Promise<DecisionRecord | null> {
    return this.runs.undoDecision(key, sha256, reviewer);
  }

  decisionHistory(key: string): Promise<DecisionRecord[]> {
    return this.runs.decisionHistory(key);
  }

  currentDecisions(): Promise<Map<string, DecisionRecord>> {
    return this.runs.currentDecisions();
  }

  changeMark(): Promise<string> {
    return this.runs.changeMark();
  }

  async beginRun(info: RunStartInfo, isStale: (holder: LockHolder) => boolean): Promise<RunStart> {
    const result = await this.runs.beginRun(info, isStale);
    if (result.acquired) this.runId = result.run.id;
    return result;
  }

  endRun(id: number, end: RunEnd): Promise<void> {
    return this.runs.endRun(id, end);
  }

  run(id: number): Promise<RunRecord | undefined> {
    return this.runs.run(id);
  }

  recentRuns(limit: number): Promise<RunRecord[]> {
    return this.runs.recentRuns(limit);
  }

  lockHolder(): Promise<LockHolder | null> {
    return this.runs.lockHolder();
  }

  heartbeat(runId: number): Promise<void> {
    return this.runs.heartbeat(runId);
  }

  liveWorkers(): ReturnType<Store["liveWorkers"]> {
    return this.runs.liveWorkers();
  }

  releaseLock(runId: number): Promise<void> {
    return this.runs.releaseLock(runId);
  }

  closeAbandonedRuns(exceptId: number): Promise<number> {
    return this.runs.closeAbandonedRuns(exceptId);
  }
}
