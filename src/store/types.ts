import type { ImageRequest, ProviderName } from "../providers/provider.js";
import type { ItemState } from "./states.js";

/** An item row as the rest of the program sees it. Times are ms since the epoch. */
export interface ItemRecord {
  id: number;
  key: string;
  rowId: string;
  source: string;
  provider: ProviderName;
  request: ImageRequest;
  requestHash: string;
  state: ItemState;
  attempts: number;
  nextAttemptAt: number;
  jobId: string | null;
  /** The service's image id when a lost submit was adopted from its image list. */
  imageRef: string | null;
  submittedAt: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  credits: number | null;
  resultUrl: string | null;
  resultWidth: number | null;
  resultHeight: number | null;
  filePath: string | null;
  thumbPath: string | null;
  sha256: string | null;
  width: number | null;
  height: number | null;
  format: string | null;
  bytes: number | null;
  /** Consecutive reads so far of its running job (the poll schedule's step). */
  polls: number;
  /** Consecutive failed reads of its job, or failed looks for a lost submit's job. */
  readFailures: number;
  /** When a look for a lost submit's job last found nothing (a second look must agree before paying again). */
  foundNothingAt: number | null;
  /** What the quality gates said of its image (empty: nothing, or not checked). */
  qcFlags: ItemQcFlag[];
  /** Remakes the `retry` gates have asked for so far (each paid). */
  qcRetries: number;
  /** The perceptual hash of its image (near-duplicates within a row), or null. */
  phash: string | null;
  /** The worker that works it now (null: nobody), the epoch of that claim, and until when it holds. */
  owner: string | null;
  claimEpoch: number;
  leaseUntil: number | null;
  inManifest: boolean;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
}

/** Columns a transition may set besides the state. */
export type ItemPatch = Partial<
  Pick<
    ItemRecord,
    | "attempts"
    | "nextAttemptAt"
    | "jobId"
    | "imageRef"
    | "submittedAt"
    | "errorCode"
    | "errorMessage"
    | "credits"
    | "resultUrl"
    | "resultWidth"
    | "resultHeight"
    | "filePath"
    | "thumbPath"
    | "sha256"
    | "width"
    | "height"
    | "format"
    | "bytes"
    | "completedAt"
    | "polls"
    | "readFailures"
    | "foundNothingAt"
    | "qcFlags"
    | "qcRetries"
    | "phash"
  >
>;

/** "died": the process ended without closing its run (killed, crashed); set by the next run. */
export type RunOutcome = "done" | "some-failed" | "stopped" | "fatal" | "died";

export interface RunRecord {
  id: number;
  startedAt: number;
  endedAt: number | null;
  /** null: still running, or the process died and no run has started since. */
  outcome: RunOutcome | null;
  exitCode: number | null;
  stopReason: string | null;
  pid: number;
  host: string;
  provider: string;
  itemsDone: number;
  itemsFailed: number;
  credits: number;
}

export interface EventRecord {
  itemId: number;
  key: string;
  runId: number | null;
  at: number;
  from: ItemState | null;
  to: ItemState;
  detail: string | null;
}

export interface LockHolder {
  runId: number;
  pid: number;
  host: string;
  startedAt: number;
  heartbeatAt: number;
}

export interface RenditionRecord {
  itemId: number;
  name: string;
  settingsHash: string;
  path: string;
  width: number;
  height: number;
}

export interface FailureReason {
  code: string;
  count: number;
  example: string;
}

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

/**
 * A local reference image uploaded to a service: the file by its sha256, the service by its
 * base URL (a file uploaded to the simulator is not at the real service), and the permanent URL
 * sent as `referenceImageUrl`. The signed upload URL is never kept.
 */
export interface UploadRecord {
  sha256: string;
  service: string;
  url: string;
  /** The service's name of the object (Pictory's `key`), when it gives one. */
  key: string | null;
  contentType: string;
  bytes: number;
  uploadedAt: number;
}

/** A quality gate's verdict on an item's image (assets/qc.ts makes them). */
export interface ItemQcFlag {
  gate: "blank" | "size" | "duplicate";
  mode: "flag" | "retry";
  message: string;
}

export type ReviewDecision = "approved" | "rejected" | "undecided";

/** One decision on one image of an item: the latest for (key, sha256) is the image's. */
export interface DecisionRecord {
  id: number;
  key: string;
  sha256: string;
  decision: ReviewDecision;
  note: string | null;
  reviewer: string;
  at: number;
}
