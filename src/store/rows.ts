// Rows to records and back: how each table's columns map to the types the rest of imgbatch
// uses. Pure; the SQL that reads and writes them is in sqlite/.
import type { ImageRequest, ProviderName } from "../providers/provider.js";
import type { ItemState } from "./states.js";
import type { DecisionRecord, ItemPatch, ItemQcFlag, ItemRecord, LockHolder, RenditionRecord, ReviewDecision, RunOutcome, RunRecord } from "./types.js";

export type Row = Record<string, unknown>;

const PATCH_COLUMNS: Record<keyof ItemPatch, string> = {
  attempts: "attempts",
  nextAttemptAt: "next_attempt_at",
  jobId: "job_id",
  imageRef: "image_ref",
  submittedAt: "submitted_at",
  errorCode: "error_code",
  errorMessage: "error_message",
  credits: "credits",
  resultUrl: "result_url",
  resultWidth: "result_width",
  resultHeight: "result_height",
  filePath: "file_path",
  thumbPath: "thumb_path",
  sha256: "sha256",
  width: "width",
  height: "height",
  format: "format",
  bytes: "bytes",
  completedAt: "completed_at",
  polls: "polls",
  readFailures: "read_failures",
  foundNothingAt: "found_nothing_at",
  qcFlags: "qc_flags",
  qcRetries: "qc_retries",
  phash: "phash",
};

/** Quality flags as stored: JSON, or null for none. */
function qcFlagsOf(stored: unknown): ItemQcFlag[] {
  return stored ? (JSON.parse(stored as string) as ItemQcFlag[]) : [];
}

/** A row's delivered image as the duplicate gate reads it (`key, phash, qc_flags`). */
export function toRowImage(row: Row): { key: string; phash: string; qcFlags: ItemQcFlag[] } {
  return { key: row.key as string, phash: row.phash as string, qcFlags: qcFlagsOf(row.qc_flags) };
}

export function toItem(row: Row): ItemRecord {
  return {
    id: row.id as number,
    key: row.key as string,
    rowId: row.row_id as string,
    source: row.source as string,
    provider: row.provider as ProviderName,
    request: JSON.parse(row.request_json as string) as ImageRequest,
    requestHash: row.request_hash as string,
    state: row.state as ItemState,
    attempts: row.attempts as number,
    nextAttemptAt: row.next_attempt_at as number,
    jobId: row.job_id as string | null,
    imageRef: row.image_ref as string | null,
    submittedAt: row.submitted_at as number | null,
    errorCode: row.error_code as string | null,
    errorMessage: row.error_message as string | null,
    credits: row.credits as number | null,
    resultUrl: row.result_url as string | null,
    resultWidth: row.result_width as number | null,
    resultHeight: row.result_height as number | null,
    filePath: row.file_path as string | null,
    thumbPath: row.thumb_path as string | null,
    sha256: row.sha256 as string | null,
    width: row.width as number | null,
    height: row.height as number | null,
    format: row.format as string | null,
    bytes: row.bytes as number | null,
    polls: row.polls as number,
    readFailures: row.read_failures as number,
    foundNothingAt: row.found_nothing_at as number | null,
    qcFlags: qcFlagsOf(row.qc_flags),
    qcRetries: (row.qc_retries as number | undefined) ?? 0,
    phash: (row.phash as string | null | undefined) ?? null,
    owner: row.owner as string | null,
    claimEpoch: row.claim_epoch as number,
    leaseUntil: row.lease_until as number | null,
    inManifest: row.in_manifest === 1,
    createdAt: row.created_at as number,
    updatedAt: row.updated_at as number,
    completedAt: row.completed_at as number | null,
  };
}

/**
 * The record as the row reads after an UPDATE that wrote `patch` and `set`: built here
 * rather than read back (a SELECT and a JSON.parse of the request per commit).
 */
export function patched(item: ItemRecord, patch: ItemPatch, set: Partial<ItemRecord>): ItemRecord {
  const next: ItemRecord = { ...item, ...set };
  for (const [field, value] of Object.entries(patch) as [keyof ItemPatch, ItemRecord[keyof ItemPatch]][]) {
    if (value !== undefined) (next as unknown as Record<string, unknown>)[field] = value;
  }
  return next;
}

export function toRendition(row: Row): RenditionRecord {
  return {
    itemId: row.item_id as number,
    name: row.name as string,
    settingsHash: row.settings_hash as string,
    path: row.path as string,
    width: row.width as number,
    height: row.height as number,
  };
}

export function toRun(row: Row): RunRecord {
  return {
    id: row.id as number,
    startedAt: row.started_at as number,
    endedAt: row.ended_at as number | null,
    outcome: row.outcome as RunOutcome | null,
    exitCode: row.exit_code as number | null,
    stopReason: row.stop_reason as string | null,
    pid: row.pid as number,
    host: row.host as string,
    provider: row.provider as string,
    itemsDone: row.items_done as number,
    itemsFailed: row.items_failed as number,
    credits: row.credits as number,
  };
}

export function toLockHolder(row: Row): LockHolder {
  return {
    runId: row.run_id as number,
    pid: row.pid as number,
    host: row.host as string,
    startedAt: row.started_at as number,
    heartbeatAt: row.heartbeat_at as number,
  };
}

export function patchSql(patch: ItemPatch): { sql: string; values: unknown[] } {
  let sql = "";
  const values: unknown[] = [];
  for (const [field, value] of Object.entries(patch) as [keyof ItemPatch, unknown][]) {
    if (value === undefined) continue;
    sql += `, ${PATCH_COLUMNS[field]} = ?`;
    // The one column kept as JSON: an empty verdict is stored as none.
    values.push(field === "qcFlags" ? ((value as ItemQcFlag[]).length ? JSON.stringify(value) : null) : value);
  }
  return { sql, values };
}

export function toDecision(row: Row): DecisionRecord {
  return {
    id: row.id as number,
    key: row.item_key as string,
    sha256: row.sha256 as string,
    decision: row.decision as ReviewDecision,
    note: row.note as string | null,
    reviewer: row.reviewer as string,
    at: row.at as number,
  };
}
