// Retries as data: which failures are worth another attempt, and how long to wait first.
import { causeChain, FILE_SYSTEM_ERROR_CODES, FatalRunError, PermanentError, ServiceError, ThrottledError } from "../errors.js";
import { RETRYABLE_ERROR_CODES } from "../retryable.js";
import type { ItemWrite } from "../store/port.js";


/**
 * Codes of an answer the service gave once it was done with the request (500, 503), unlike a
 * gateway's 502/504, a timeout or a reset, after which it may still be working on it. A job
 * a lost submit made shows in the listings at once after the former.
 */
const ORIGIN_ANSWER_CODES: ReadonlySet<string> = new Set(["HTTP_500", "HTTP_503"]);

export function originAnswered(code: string | null): boolean {
  return code !== null && ORIGIN_ANSWER_CODES.has(code);
}

export interface BackoffPolicy {
  backoffBaseMs: number;
  backoffCapMs: number;
  maxAttempts: number;
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelayMs(attempt: number, policy: Pick<BackoffPolicy, "backoffBaseMs" | "backoffCapMs">, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export type FailureKind =
  /** Stop the whole run (bad key, no credits). */
  | { kind: "fatal"; error: FatalRunError }
  /** Pause the provider; the item's attempt is not counted. */
  | { kind: "throttled"; retryAfterMs: number | null }
  | { kind: "retryable"; code: string; message: string }
  | { kind: "permanent"; code: string; message: string }
  /** The run is stopping: leave the item as it is. */
  | { kind: "aborted" };

/** Decides what a thrown error means for the item, following `.cause` links. */
export function classifyFailure(error: unknown): FailureKind {
  for (const link of causeChain(error)) {
    if (link instanceof FatalRunError) return { kind: "fatal", error: link };
    if (link instanceof ThrottledError) return { kind: "throttled", retryAfterMs: link.retryAfterMs };
    if (link instanceof PermanentError) return { kind: "permanent", code: link.code, message: link.message };
    if (link instanceof ServiceError) {
      return link.retryable ? { kind: "retryable", code: link.code, message: link.message } : { kind: "permanent", code: link.code, message: link.message };
    }
    if (link instanceof Error && (link.name === "AbortError" || (link as { code?: string }).code === "ABORT_ERR")) return { kind: "aborted" };
    const code = (link as { code?: unknown } | null)?.code;
    // better-sqlite3's: a full disk, an I/O error or a locked file meets every further write too.
    if (link instanceof Error && link.name === "SqliteError") {
      return { kind: "fatal", error: new FatalRunError(`the job database refused a write: ${link.message}`, typeof code === "string" ? code : "SQLITE_ERROR", 3, { cause: link }) };
    }
    if (typeof code === "string" && FILE_SYSTEM_ERROR_CODES.has(code)) {
      return { kind: "fatal", error: new FatalRunError(`cannot write output: ${(link as Error).message}`, code, 3, { cause: link }) };
    }
    if (typeof code === "string" && RETRYABLE_ERROR_CODES.has(code)) {
      return { kind: "retryable", code, message: (link as Error).message };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "permanent", code: "INTERNAL", message };
}

/** Whether another attempt is allowed after `attempts` have been used. */
export function canRetry(attempts: number, policy: Pick<BackoffPolicy, "maxAttempts">): boolean {
  return attempts < policy.maxAttempts;
}

/**
 * An item whose image was delivered before (its sha256 is recorded) and is being delivered
 * again never ends `failed` or goes back to the queue: either would let a plain `retry`, or the
 * run itself, pay for it again. It becomes `missing` instead, its job id kept so each later
 * run can ask that job again, and only `retry --missing` pays. Pure: the runner's every write
 * passes through it.
 */
export function keepPaidImage(item: { sha256: string | null }, write: ItemWrite): ItemWrite {
  if (item.sha256 === null || (write.to !== "failed" && write.to !== "queued")) return write;
  const why = [write.set?.errorCode, write.set?.errorMessage].filter(Boolean).join(": ") || "it could not be delivered again";
  return {
    ...write,
    to: "missing",
    set: { errorCode: "IMAGE_MISSING", errorMessage: `the image is gone from disk and its job could not give it again (${why}); \`imgbatch retry --missing\` pays for a new one` },
  };
}
