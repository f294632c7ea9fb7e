// One place that decides an item's next step after each outcome at the service or in the image
// stage: a write (state, columns, note) as data. Pure: the drivers carry it out; the tests read
// it as a table (test/next-step.test.ts). What a lost submit's look means is lost-submit.ts's.
import type { ItemWrite } from "../store/port.js";
import type { QcSettings } from "../manifest/qc.js";
import type { ItemQcFlag, ItemRecord } from "../store/types.js";
import { backoffDelayMs, canRetry, type BackoffPolicy } from "./retry-policy.js";

export interface StepPolicy extends BackoffPolicy {
  jobTimeoutMs: number;
  now: number;
  random: () => number;
}

/** The policy of a step taken now: the few options it reads, not a copy of them all. */
export function stepPolicy(options: BackoffPolicy & { jobTimeoutMs: number }, now: number, random: () => number): StepPolicy {
  return { backoffBaseMs: options.backoffBaseMs, backoffCapMs: options.backoffCapMs, maxAttempts: options.maxAttempts, jobTimeoutMs: options.jobTimeoutMs, now, random };
}

/** What happened to a submit. */
export type SubmitOutcome =
  | { kind: "accepted"; jobId: string; firstReadMs: number }
  /** Refused for the whole account (bad key, no credits): nothing was created. */
  | { kind: "refused-account"; code: string; message: string }
  | { kind: "throttled"; delayMs: number }
  /** The answer was lost and a job may exist: look for it before paying again. */
  | { kind: "answer-lost"; code: string; message: string; lookAfterMs: number }
  | { kind: "failed"; retryable: boolean; code: string; message: string };

/** What a read of a running job found. */
export type ReadOutcome =
  | { kind: "in-progress"; nextReadMs: number }
  | { kind: "completed"; credits: number; imageRef: string | null; url: string | null; width: number; height: number }
  | { kind: "job-failed"; retryable: boolean; code: string; message: string }
  /** The job failed for lack of credits: back to the queue, and the run stops. */
  | { kind: "out-of-credits"; code: string; message: string }
  | { kind: "gone"; code: string; message: string }
  /** The read itself failed (5xx, reset, timeout), `readFailures` already counting this one. */
  | { kind: "read-failed"; code: string; message: string; retryInMs: number }
  | { kind: "read-refused"; code: string; message: string }
  | { kind: "read-throttled"; delayMs: number };

/** Another attempt after a backoff, or `failed` once the attempts are used. The job id is dropped. */
export function retryOrFail(item: ItemRecord, code: string, message: string, policy: StepPolicy): ItemWrite {
  if (!canRetry(item.attempts, policy)) return { to: "failed", set: { errorCode: code, errorMessage: `${message} (after ${item.attempts} attempts)` }, note: message };
  const delayMs = backoffDelayMs(item.attempts, policy, policy.random);
  return { to: "queued", set: { nextAttemptAt: policy.now + delayMs, errorCode: code, errorMessage: message, jobId: null, polls: 0, readFailures: 0 }, note: `${code}: retry in ${delayMs} ms` };
}

/**
 * Ends a running item whose job could not be followed, its job id kept: a later `retry` reads
 * that job again before paying for another. attempts 0: that second chance was given already.
 */
export function failKeepingJob(item: ItemRecord, code: "POLL_FAILED" | "JOB_TIMEOUT", reason: string): ItemWrite {
  if (item.attempts === 0) {
    const message = `${reason}; it was already read again after an earlier failure: \`imgbatch retry\` submits a new job`;
    return { to: "failed", set: { errorCode: code, errorMessage: message, jobId: null, readFailures: 0 }, note: message };
  }
  const message = `${reason}; the job id is kept: \`imgbatch retry\` reads it again before paying for a new one`;
  return { to: "failed", set: { errorCode: code, errorMessage: message, readFailures: 0 }, note: message };
}

export function afterSubmit(item: ItemRecord, outcome: SubmitOutcome, policy: StepPolicy): ItemWrite {
  switch (outcome.kind) {
    case "accepted":
      // A new job: the credits recorded are its own once it completes.
      return { to: "running", set: { jobId: outcome.jobId, credits: null, polls: 0, readFailures: 0, nextAttemptAt: policy.now + outcome.firstReadMs }, note: `job ${outcome.jobId}` };
    case "refused-account":
      // Not the item's fault: its attempt is given back.
      return { to: "queued", set: { attempts: item.attempts - 1, nextAttemptAt: 0 }, note: `${outcome.code}: ${outcome.message}` };
    case "throttled":
      // Refused, so nothing was made: the attempt is not counted.
      return { to: "queued", set: { attempts: item.attempts - 1, nextAttemptAt: policy.now + outcome.delayMs }, note: `throttled (429): submitting again in ${outcome.delayMs} ms` };
    case "answer-lost":
      return { set: { nextAttemptAt: policy.now + outcome.lookAfterMs, errorCode: outcome.code, errorMessage: outcome.message, foundNothingAt: null, readFailures: 0 }, note: `submit response lost (${outcome.code}): reconcile before submitting again` };
    case "failed":
      if (outcome.retryable) return retryOrFail(item, outcome.code, outcome.message, policy);
      return { to: "failed", set: { errorCode: outcome.code, errorMessage: outcome.message }, note: outcome.message };
  }
}

export function afterRead(item: ItemRecord, outcome: ReadOutcome, policy: StepPolicy): ItemWrite {
  const runningMs = policy.now - (item.submittedAt ?? policy.now);
  const timedOut = runningMs > policy.jobTimeoutMs;
  switch (outcome.kind) {
    case "in-progress":
      if (timedOut) return failKeepingJob(item, "JOB_TIMEOUT", `job ${item.jobId} still in progress ${Math.round(runningMs / 1000)} s after its submit (the job timeout is ${Math.round(policy.jobTimeoutMs / 1000)} s)`);
      return { set: { polls: item.polls + 1, readFailures: 0, nextAttemptAt: policy.now + outcome.nextReadMs } };
    case "completed":
      return {
        to: "downloading",
        set: { credits: outcome.credits, imageRef: outcome.imageRef, resultUrl: outcome.url, resultWidth: outcome.width, resultHeight: outcome.height, nextAttemptAt: 0, polls: 0, readFailures: 0 },
        note: `completed at the service (${outcome.width}×${outcome.height}, ${outcome.credits} credits)`,
      };
    case "out-of-credits":
      return { to: "queued", set: { attempts: item.attempts - 1, jobId: null, nextAttemptAt: 0, polls: 0, readFailures: 0 }, note: `${outcome.code}: ${outcome.message}` };
    case "job-failed":
      if (outcome.retryable) return retryOrFail(item, outcome.code, outcome.message, policy);
      return { to: "failed", set: { errorCode: outcome.code, errorMessage: outcome.message, readFailures: 0 }, note: `${outcome.code}: ${outcome.message}` };
    case "gone":
      return retryOrFail(item, outcome.code, `${outcome.message}: the service no longer has this job`, policy);
    case "read-throttled":
      // A 429 is the key's, not the item's: it waits and counts nothing, within the job timeout.
      if (timedOut) return failKeepingJob(item, "JOB_TIMEOUT", `job ${item.jobId} could not be read (429) for ${Math.round(runningMs / 1000)} s after its submit`);
      return { set: { nextAttemptAt: policy.now + outcome.delayMs } };
    case "read-refused":
      // A read refused for good (a redirect, a 4xx): the job may still finish, so it is kept.
      return failKeepingJob(item, "POLL_FAILED", `reading job ${item.jobId} was refused (${outcome.code}: ${outcome.message})`);
    case "read-failed": {
      const failures = item.readFailures + 1;
      if (failures >= policy.maxAttempts) {
        return failKeepingJob(item, "POLL_FAILED", `reading job ${item.jobId} failed ${failures === 1 ? "" : `${failures} times in a row `}(last: ${outcome.code}: ${outcome.message})`);
      }
      return { set: { readFailures: failures, nextAttemptAt: policy.now + outcome.retryInMs } };
    }
  }
}

/** A finished job's image could not be delivered: the stage's own retries are used up. */
export function afterDeliveryFailed(code: string, message: string): ItemWrite {
  // (A paid image delivered before ends `missing`, not failed: retry-policy.ts keepPaidImage.)
  return { to: "failed", set: { errorCode: code, errorMessage: message }, note: message };
}

/** The image stage read a finished job again to deliver it: what that read means. */
export function afterReread(item: ItemRecord, outcome: Extract<ReadOutcome, { kind: "in-progress" | "job-failed" | "gone" }>, policy: StepPolicy & { pollIntervalMs: number }): ItemWrite {
  const runningMs = policy.now - (item.submittedAt ?? policy.now);
  switch (outcome.kind) {
    case "in-progress":
      // A job that flips between completed and in progress is bounded by the job timeout too.
      if (runningMs > policy.jobTimeoutMs) {
        const reason = `job ${item.jobId} reads in progress again ${Math.round(runningMs / 1000)} s after its submit (the job timeout is ${Math.round(policy.jobTimeoutMs / 1000)} s)`;
        return { to: "failed", set: { errorCode: "JOB_TIMEOUT", errorMessage: reason }, note: reason };
      }
      return { to: "running", set: { nextAttemptAt: policy.now + policy.pollIntervalMs, polls: 0, readFailures: 0 }, note: "job reads in-progress again" };
    case "job-failed":
    case "gone":
      return retryOrFail(item, outcome.code, outcome.message, policy);
  }
}

/**
 * After the quality gates: the item is done with their flags; a `retry` gate's flag also asks for
 * a remake (paid) while the item has remakes left, else it stays flagged for a person to judge.
 */
export function afterQuality(item: ItemRecord, flags: readonly ItemQcFlag[], settings: Pick<QcSettings, "maxRetries">): { remake: { why: string; qcRetries: number } | null; flags: ItemQcFlag[] } {
  const retry = flags.filter((f) => f.mode === "retry");
  if (retry.length === 0) return { remake: null, flags: [...flags] };
  const gates = retry.map((f) => f.gate).join(", ");
  if (item.qcRetries < settings.maxRetries) {
    const n = item.qcRetries + 1;
    return { remake: { why: `quality gate ${gates}: made anew (${n} of ${settings.maxRetries}): ${retry[0]!.message}`, qcRetries: n }, flags: [...flags] };
  }
  // Remakes used up: flagged for review instead (the message says how many were tried).
  const tried = settings.maxRetries === 0 ? "no remake allowed (qc.maxRetries 0)" : `still so after ${item.qcRetries} remake(s)`;
  return { remake: null, flags: flags.map((f) => (f.mode === "retry" ? { ...f, mode: "flag" as const, message: `${f.message}; ${tried}` } : f)) };
}

/** What this run knows of an item a webhook names (hint-board.ts keeps it while the item is at the service). */
export interface HintTarget {
  /** Its current submit carried this run's receiver URL, so a hint for it is expected. */
  listened: boolean;
  /** The job being followed; null while its submit is on the wire. */
  jobId: string | null;
  /** A hint was already taken for this job (or for the submit on the wire). */
  hinted: boolean;
  /** Waiting for its next read (not submitting, not in the middle of a read). */
  waiting: boolean;
}

export type HintIgnored = "finished" | "unknown-job" | "repeat";

export type HintStep = { step: "read-now" } | { step: "read-when-waiting" } | { step: "ignore"; reason: HintIgnored };

/**
 * A webhook is only a hint (PICTORY.md §3: unsigned): it can make the item's next read come at
 * once, never decide anything itself. At most one hint per job is taken, so a replay, a
 * duplicate delivery or a flood costs no more than the one read. `target` null: the item is not
 * at the service in this run (delivered, failed, or never submitted with this run's URL).
 * `namedJobId`: the job the body names, if any; a body naming another job is ignored.
 */
export function afterHint(target: HintTarget | null, namedJobId: string | null): HintStep {
  if (target === null) return { step: "ignore", reason: "finished" };
  if (!target.listened) return { step: "ignore", reason: "unknown-job" };
  if (namedJobId !== null && target.jobId !== null && namedJobId !== target.jobId) return { step: "ignore", reason: "unknown-job" };
  if (target.hinted) return { step: "ignore", reason: "repeat" };
  // A hint that beats its submit's answer (a job faster than the round trip) waits for the job id.
  return target.waiting && target.jobId !== null ? { step: "read-now" } : { step: "read-when-waiting" };
}
