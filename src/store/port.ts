// The store port: everything imgbatch asks of its checkpoint database. Every call may await, so
// a networked database can stand behind it; no handle to the database leaks out. The SQLite
// adapter (sqlite/sqlite-store.ts) implements it; test/store-conformance.ts is its contract.
import type { ImageModel } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import type { HashWith, PlannedWithHash, StoredItemDigest, SyncSummary } from "./sync.js";
import type { ItemState } from "./states.js";
import type { DecisionRecord, EventRecord, FailureReason, ItemPatch, ItemRecord, LockHolder, RenditionRecord, ReportItem, ReviewDecision, RunOutcome, RunRecord, SheetItem, UploadRecord } from "./types.js";

export type StateCounts = Record<ItemState, number>;

export type InFlightState = "submitting" | "running" | "downloading";
export const IN_FLIGHT_STATES: readonly InFlightState[] = ["submitting", "running", "downloading"];

/**
 * One write to an item (the only verb for one): a move to another state when `to` is given
 * (checked against the state machine, with its event), columns to `set`, and a `note` that
 * becomes an event even without a move. A worker's write holds its claim: the record's owner
 * and epoch must still be the row's, or ClaimLostError is thrown and nothing is written.
 */
export interface ItemWrite {
  to?: ItemState;
  set?: ItemPatch;
  note?: string | null;
  /** Resolve only once the write is on disk: the `submitting` on which money rests. */
  durable?: boolean;
  /**
   * Renew the writer's lease for this long, refusing the write (ClaimLostError) when the lease
   * has already run out: the re-confirmation right before a paid submit.
   */
  renewLeaseMs?: number;
}

export interface RequeueFilter {
  rowIds?: readonly string[];
  keys?: readonly string[];
  codes?: readonly string[];
  states?: readonly ("failed" | "missing")[];
  /** Done items whose image was rejected in review (instead of `states`): made anew, paid again. */
  rejected?: boolean;
}

export interface RunEnd {
  outcome: RunOutcome;
  exitCode: number;
  stopReason: string | null;
  itemsDone: number;
  itemsFailed: number;
  credits: number;
}

export interface RunStartInfo {
  pid: number;
  host: string;
  provider: string;
  manifestFile: string;
  /** The manifest's content hash: workers sharing a run must run the same one. */
  manifestHash?: string;
  /** The worker's name in claims (host:pid unless --worker). */
  worker?: string;
}

/** `reason`: why a live holder refuses this run, when it is more than "it is running". */
export type RunStart = { acquired: true; run: RunRecord; tookOverFrom: LockHolder | null } | { acquired: false; holder: LockHolder; reason?: string };

export interface SyncRules {
  hashWith?: HashWith;
  allowProviderSwitch?: boolean;
  abandonInFlight?: boolean;
}

/** Some keys' records as a plan sees them: the live ones (as the sync does), and the earlier done ones. */
export interface PlanDigests {
  live: StoredItemDigest[];
  /** `[key, request hash]` of superseded done records: asked for again, they are brought back, not paid. */
  doneBefore: [string, string][];
}

/** How long one done item's job took here, in ms. */
export interface JobTiming {
  provider: ProviderName;
  model: string;
  /** Submit → the read that saw it complete: the item's time in a slot at the service. */
  serviceMs: number;
  /** That read → done: download, checks, thumbnail, renditions, the sync of its files. */
  imageMs: number;
}

/** Word between the workers of a shared run, so an idle one need not wait for its next look. */
export interface RunChanges {
  /** Calls `listener` whenever a worker of the run announces a change; resolves to how to stop listening. */
  listen(listener: () => void): Promise<() => Promise<void>>;
  /** Tells the run's workers that it changed: this worker ends, or let its items go. */
  announce(): Promise<void>;
}

/** One report for the workers of a shared run that end together, not one each. */
export interface ReportTurns {
  /**
   * Runs `write` (the run's report into `outDir`) under the run's report lock, unless the report
   * in `outDir` began to read the run after this worker ended (so it holds all its changes) and
   * its files are still there (`filesPresent`, asked under the lock). A writer killed mid-write
   * records nothing: the next one writes. Resolves to whether `write` ran.
   */
  take(outDir: string, filesPresent: () => boolean, write: () => Promise<void>): Promise<boolean>;
}

export interface Store {
  /** Whether several worker processes may share a run (PostgreSQL), or one holds it at a time (SQLite). */
  readonly sharesRuns: boolean;
  /** Absent where one worker holds a run at a time: nobody to tell. */
  readonly runChanges?: RunChanges;
  /** Absent where one worker holds a run at a time: it writes the report at its end. */
  readonly reportTurns?: ReportTurns;
  // ---- the database itself
  close(): Promise<void>;
  /** Commits every write made so far; rejects (FatalRunError) when one could not be committed. */
  flush(): Promise<void>;
  /** Throws when no write can be made (read-only file, I/O error); another run's lock is no failure. */
  probeWrite(): Promise<void>;
  integrityCheck(): Promise<string>;
  isEmpty(): Promise<boolean>;
  rememberedProvider(): Promise<ProviderName | null>;

  // ---- items
  get(id: number): Promise<ItemRecord | undefined>;
  byKey(key: string): Promise<ItemRecord | undefined>;
  /** Live items of the manifest in these states, oldest first. */
  inStates(states: readonly ItemState[]): Promise<ItemRecord[]>;
  counts(): Promise<StateCounts>;
  removedFromManifest(): Promise<ItemRecord[]>;
  totalCredits(): Promise<number>;
  toSubmitByModel(): Promise<{ provider: ProviderName; model: ImageModel; count: number }[]>;
  /** When the earliest waiting queued item becomes eligible, or null. */
  earliestQueuedAt(): Promise<number | null>;
  /** Whether any record (live or superseded) owns this job id or image ref. */
  isClaimed(ref: string): Promise<boolean>;
  /** A page of done images `provider` made, after id `afterId`: `[id, key, file path, bytes]`. */
  doneImagesAfter(provider: ProviderName, afterId: number, limit: number): Promise<[number, string, string | null, number | null][]>;
  /** The delivered images of a row's live items but `exceptKey`'s, with their perceptual hash (the duplicate gate). */
  rowImages(rowId: string, exceptKey: string): Promise<{ key: string; phash: string; qcFlags: ItemRecord["qcFlags"] }[]>;
  /** Keys of live queued items never submitted. */
  untriedKeys(): Promise<Set<string>>;

  // ---- claims: who works an item (owner, epoch bumped on every claim, lease)
  /**
   * Claims up to `limit` eligible queued items for `worker`, leased until `leaseUntil`. With
   * `concurrency`, no more than that many items are claimed or at the service across every
   * worker of the run (a shared run's --concurrency; one worker enforces it by itself).
   */
  claimQueued(worker: string, now: number, limit: number, leaseUntil: number, concurrency?: number): Promise<ItemRecord[]>;
  /** Claims the items in flight (submitting, running, downloading, or only `states`) whose claim is free or expired. */
  claimInFlight(worker: string, now: number, leaseUntil: number, states?: readonly InFlightState[]): Promise<ItemRecord[]>;
  /** Lets one item's claim go (a worker that does not deliver hands a finished job on); refused when no longer this claim. */
  releaseItem(item: ItemRecord): Promise<void>;
  /** Claims one item at rest (done, missing) for `worker`, or null when it is not at rest or is held. */
  claimAtRest(id: number, worker: string, now: number, leaseUntil: number): Promise<ItemRecord | null>;
  renewLeases(worker: string, leaseUntil: number): Promise<void>;
  /** Lets every claim of `worker` go (its run ends). */
  releaseClaims(worker: string): Promise<void>;

  // ---- a key's limits shared by every worker of a shared run (the key known by a hash only)
  /** Takes one request token of the key's bucket: 0 when taken, else how long to wait first (a pause counts). */
  takeRequestToken(keyHash: string, perMinute: number, burst: number): Promise<number>;
  /** Pauses every worker's requests with this key until `untilMs` (a throttled key). */
  pauseKey(keyHash: string, untilMs: number): Promise<void>;

  // ---- writes
  write(item: ItemRecord, change: ItemWrite): Promise<ItemRecord>;
  /**
   * A done item made anew (rejected in review, or a quality gate's `retry`): its record stays,
   * superseded (its image, decisions and credits with it); a fresh queued record takes the key.
   */
  remake(item: ItemRecord, why: string, carry?: { qcRetries?: number }): Promise<ItemRecord>;
  /** Puts chosen failed (or missing, or rejected) items back on their way with fresh attempts. */
  requeue(filter: RequeueFilter): Promise<ItemRecord[]>;
  /** Records a queued item as done with an image already on disk (from its sidecar); no service asked. */
  adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): Promise<ItemRecord>;
  /** Brings the stored items in line with the manifest (throws PaidImagesWouldBeReplaced). */
  syncManifest(planned: Iterable<PlannedWithHash>, provider: ProviderName, rules?: SyncRules): Promise<SyncSummary>;
  saveRendition(r: RenditionRecord): Promise<void>;
  /** A job id whose submit answered after this worker lost the item's claim: kept for the audit, never dropped. */
  recordOrphanJob(key: string, jobId: string, worker: string): Promise<void>;
  orphanJobs(): Promise<{ key: string; jobId: string; worker: string; at: number }[]>;

  // ---- history and reports
  events(itemId?: number): Promise<EventRecord[]>;
  failureReasons(limit?: number): Promise<FailureReason[]>;
  runFailureReasons(runId: number, limit?: number): Promise<FailureReason[]>;
  renditionsOf(itemId: number): Promise<RenditionRecord[]>;
  renditionsByItem(): Promise<Map<number, RenditionRecord[]>>;
  /** Keeps `keys` as the manifest's item order for this store's sheet (a sync keeps it too). */
  keepManifestOrder(keys: Iterable<string>): Promise<void>;
  /** Live items in database order, a page at a time. */
  liveItems(): AsyncIterable<ReportItem>;
  /** Live items in contact-sheet order (grouped by row, the manifest's order within). */
  liveItemsInSheetOrder(): AsyncIterable<SheetItem>;

  // ---- the morning review
  /** A decision (or a note) on the image with this sha256; alone in its commit. */
  recordDecision(d: { key: string; sha256: string; decision: ReviewDecision; note: string | null; reviewer: string }): Promise<DecisionRecord>;
  /** Takes the latest decision on this image back; null when it had none. */
  undoDecision(key: string, sha256: string, reviewer: string): Promise<DecisionRecord | null>;
  /** Every decision on an item's images, oldest first. */
  decisionHistory(key: string): Promise<DecisionRecord[]>;
  /** The latest decision on each live item's current image, by key (no entry: undecided). */
  currentDecisions(): Promise<Map<string, DecisionRecord>>;
  /** Changes whenever an item moves or a decision is made. */
  changeMark(): Promise<string>;

  // ---- planning (imgbatch plan: read-only)
  /** The records of these keys (a chunk of the manifest's) as the sync would meet them. */
  planDigests(keys: readonly string[]): Promise<PlanDigests>;
  /** The times of the last `limit` done items, newest first. */
  jobTimings(limit: number): Promise<JobTiming[]>;

  // ---- reference images uploaded to a service
  /** The upload of this file (by sha256) to this service, or undefined (also in a database older than uploads). */
  uploadOf(sha256: string, service: string): Promise<UploadRecord | undefined>;
  /** Records (or replaces) a file's upload to a service; committed with the turn's other writes. */
  recordUpload(upload: UploadRecord): Promise<void>;

  // ---- runs and the lock
  beginRun(info: RunStartInfo, isStale: (holder: LockHolder) => boolean): Promise<RunStart>;
  endRun(id: number, end: RunEnd): Promise<void>;
  run(id: number): Promise<RunRecord | undefined>;
  recentRuns(limit: number): Promise<RunRecord[]>;
  lockHolder(): Promise<LockHolder | null>;
  /** The workers whose runs are open and whose heartbeat is recent, with the items each holds. */
  liveWorkers(): Promise<{ worker: string; host: string; pid: number; heartbeatAt: number; itemsInHand: number }[]>;
  heartbeat(runId: number): Promise<void>;
  releaseLock(runId: number): Promise<void>;
  /** Marks runs whose process died, and frees their claims; returns how many. */
  closeAbandonedRuns(exceptId: number): Promise<number>;
}
