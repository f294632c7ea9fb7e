// Where `retry` sends a failed or missing item: pure, tested with plain tables.
import type { ItemPatch, ItemRecord } from "./types.js";

/** Failures that keep the item's job id: a retry reads that job again before paying for another. */
export const JOB_KEPT_CODES: ReadonlySet<string> = new Set(["JOB_TIMEOUT", "POLL_FAILED"]);

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

/** Fresh attempts, no error, no reads counted: what every requeue of retry starts from. */
const FRESH: ItemPatch = { attempts: 0, nextAttemptAt: 0, errorCode: null, errorMessage: null, polls: 0, readFailures: 0, foundNothingAt: null };

/** The columns retry's step sets (both store adapters write exactly these). */
export function retryPatchOf(item: Pick<ItemRecord, "state">, to: ReturnType<typeof retryStepOf>["to"], now: number): ItemPatch {
  switch (to) {
    case "running":
      return { ...FRESH, submittedAt: now };
    case "downloading":
      return { ...FRESH, resultUrl: null };
    case "submitting":
      return FRESH;
    case "queued":
      return {
        ...FRESH, jobId: null, imageRef: null, resultUrl: null,
        // A missing image's record: the next delivery is a new image (its old sidecar is kept aside).
        ...(item.state === "missing" ? { filePath: null, thumbPath: null, sha256: null, bytes: null, width: null, height: null, format: null, completedAt: null } : {}),
      };
  }
}
