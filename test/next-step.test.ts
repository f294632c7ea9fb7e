// The runner's one decision table: each outcome at the service or in the image stage, and the
// write it leads to (runner/next-step.ts). Plain data in, plain data out.
import { describe, expect, it } from "vitest";
import { afterDeliveryFailed, afterQuality, afterRead, afterReread, afterSubmit, type ReadOutcome, type StepPolicy, type SubmitOutcome } from "../src/runner/next-step.js";
import type { ItemRecord } from "../src/store/types.js";

const NOW = 1_000_000;
const policy: StepPolicy = { maxAttempts: 3, backoffBaseMs: 1_000, backoffCapMs: 60_000, jobTimeoutMs: 600_000, now: NOW, random: () => 0.5 };

function item(over: Partial<ItemRecord> = {}): ItemRecord {
  return {
    id: 1, key: "k", rowId: "k", source: "m.yaml line 1", provider: "pictory", request: { prompt: "p", model: "seedream3.0", aspectRatio: "1:1" }, requestHash: "h",
    state: "running", attempts: 1, nextAttemptAt: 0, jobId: "job-1", imageRef: null, submittedAt: NOW - 10_000, errorCode: null, errorMessage: null, credits: null,
    resultUrl: null, resultWidth: null, resultHeight: null, filePath: null, thumbPath: null, sha256: null, width: null, height: null, format: null, bytes: null,
    polls: 0, readFailures: 0, foundNothingAt: null, qcFlags: [], qcRetries: 0, phash: null, owner: "w", claimEpoch: 1, leaseUntil: NOW + 60_000, inManifest: true, createdAt: 0, updatedAt: 0, completedAt: null,
    ...over,
  };
}

describe("after a submit", () => {
  it.each<[string, Partial<ItemRecord>, SubmitOutcome, Record<string, unknown>]>([
    ["accepted: running, first read when the schedule says", { state: "submitting" }, { kind: "accepted", jobId: "j2", firstReadMs: 4_000 }, { to: "running", set: { jobId: "j2", credits: null, nextAttemptAt: NOW + 4_000, polls: 0 } }],
    ["refused for the account: back to the queue, attempt returned", { state: "submitting", attempts: 2 }, { kind: "refused-account", code: "UNAUTHORIZED", message: "bad key" }, { to: "queued", set: { attempts: 1, nextAttemptAt: 0 } }],
    ["throttled: queued after Retry-After, attempt returned", { state: "submitting", attempts: 2 }, { kind: "throttled", delayMs: 7_000 }, { to: "queued", set: { attempts: 1, nextAttemptAt: NOW + 7_000 } }],
    ["answer lost: stays submitting, a look is due", { state: "submitting" }, { kind: "answer-lost", code: "UND_ERR_HEADERS_TIMEOUT", message: "t", lookAfterMs: 10_000 }, { set: { nextAttemptAt: NOW + 10_000, errorCode: "UND_ERR_HEADERS_TIMEOUT", foundNothingAt: null } }],
    ["a retryable refusal with attempts left: queued after a backoff, job dropped", { state: "submitting", attempts: 1 }, { kind: "failed", retryable: true, code: "HTTP_400", message: "m" }, { to: "queued", set: { nextAttemptAt: NOW + 500, jobId: null, errorCode: "HTTP_400" } }],
    ["a retryable refusal with none left: failed", { state: "submitting", attempts: 3 }, { kind: "failed", retryable: true, code: "HTTP_400", message: "m" }, { to: "failed", set: { errorCode: "HTTP_400", errorMessage: "m (after 3 attempts)" } }],
    ["a permanent refusal: failed at once", { state: "submitting", attempts: 1 }, { kind: "failed", retryable: false, code: "CONTENT_POLICY", message: "no" }, { to: "failed", set: { errorCode: "CONTENT_POLICY" } }],
  ])("%s", (_name, over, outcome, expected) => {
    const write = afterSubmit(item(over), outcome, policy);
    expect(write).toMatchObject(expected);
    if (!("to" in expected)) expect(write.to).toBeUndefined();
  });
});

describe("after a read of a running job", () => {
  it.each<[string, Partial<ItemRecord>, ReadOutcome, Record<string, unknown>]>([
    ["in progress: the next read, the schedule's step counted", { polls: 2 }, { kind: "in-progress", nextReadMs: 3_000 }, { set: { polls: 3, readFailures: 0, nextAttemptAt: NOW + 3_000 } }],
    ["in progress past the job timeout: failed, job id kept", { submittedAt: NOW - 700_000 }, { kind: "in-progress", nextReadMs: 3_000 }, { to: "failed", set: { errorCode: "JOB_TIMEOUT" } }],
    ["completed: downloading with the charge and the URL", {}, { kind: "completed", credits: 0.6, imageRef: "img", url: "https://x/y.png", width: 64, height: 64 }, { to: "downloading", set: { credits: 0.6, resultUrl: "https://x/y.png", polls: 0 } }],
    ["out of credits: back to the queue, attempt returned", { attempts: 2 }, { kind: "out-of-credits", code: "INSUFFICIENT_CREDITS", message: "none" }, { to: "queued", set: { attempts: 1, jobId: null } }],
    ["the job failed, retryable: a new submit after a backoff", {}, { kind: "job-failed", retryable: true, code: "GEN_FAILED", message: "m" }, { to: "queued", set: { jobId: null, errorCode: "GEN_FAILED" } }],
    ["the job failed for good", {}, { kind: "job-failed", retryable: false, code: "POLICY", message: "m" }, { to: "failed", set: { errorCode: "POLICY" } }],
    ["the job is gone: a new submit", {}, { kind: "gone", code: "JOB_NOT_FOUND", message: "404" }, { to: "queued", set: { errorCode: "JOB_NOT_FOUND" } }],
    ["a failed read with reads left: counted, read again", { readFailures: 1 }, { kind: "read-failed", code: "HTTP_503", message: "m", retryInMs: 2_000 }, { set: { readFailures: 2, nextAttemptAt: NOW + 2_000 } }],
    ["the last failed read in a row: failed, job id kept", { readFailures: 2 }, { kind: "read-failed", code: "HTTP_503", message: "m", retryInMs: 2_000 }, { to: "failed", set: { errorCode: "POLL_FAILED" } }],
    ["a read refused for good: failed, job id kept", {}, { kind: "read-refused", code: "HTTP_403", message: "m" }, { to: "failed", set: { errorCode: "POLL_FAILED" } }],
    ["a throttled read: waits, counts nothing", { readFailures: 1 }, { kind: "read-throttled", delayMs: 9_000 }, { set: { nextAttemptAt: NOW + 9_000 } }],
    ["a throttled read past the job timeout: failed", { submittedAt: NOW - 700_000 }, { kind: "read-throttled", delayMs: 9_000 }, { to: "failed", set: { errorCode: "JOB_TIMEOUT" } }],
  ])("%s", (_name, over, outcome, expected) => {
    const write = afterRead(item(over), outcome, policy);
    expect(write).toMatchObject(expected);
    if (!("to" in expected)) expect(write.to).toBeUndefined();
  });

  it("keeps the job id when a job could not be followed, and drops it once its second chance is used", () => {
    expect(afterRead(item(), { kind: "read-refused", code: "HTTP_403", message: "m" }, policy).set).not.toHaveProperty("jobId");
    expect(afterRead(item({ attempts: 0 }), { kind: "read-refused", code: "HTTP_403", message: "m" }, policy).set).toMatchObject({ jobId: null });
  });
});

describe("in the image stage", () => {
  const stage = { ...policy, pollIntervalMs: 5_000 };
  it.each<[string, Partial<ItemRecord>, Parameters<typeof afterReread>[1], Record<string, unknown>]>([
    ["the job reads in progress again: back to running, read after a poll interval", { state: "downloading" }, { kind: "in-progress", nextReadMs: 0 }, { to: "running", set: { nextAttemptAt: NOW + 5_000 } }],
    ["in progress again past the job timeout: failed", { state: "downloading", submittedAt: NOW - 700_000 }, { kind: "in-progress", nextReadMs: 0 }, { to: "failed", set: { errorCode: "JOB_TIMEOUT" } }],
    ["the job is gone: a new submit after a backoff", { state: "downloading" }, { kind: "gone", code: "JOB_NOT_FOUND", message: "404" }, { to: "queued" }],
  ])("%s", (_name, over, outcome, expected) => {
    expect(afterReread(item(over), outcome, stage)).toMatchObject(expected);
  });

  it("a delivery that failed for good fails the item with its reason", () => {
    expect(afterDeliveryFailed("DOWNLOAD_TRUNCATED", "short")).toEqual({ to: "failed", set: { errorCode: "DOWNLOAD_TRUNCATED", errorMessage: "short" }, note: "short" });
  });
});

describe("after the quality gates", () => {
  const blank = { gate: "blank" as const, mode: "retry" as const, message: "flat" };
  const duplicate = { gate: "duplicate" as const, mode: "flag" as const, message: "near-duplicate of k--v1" };
  it.each([
    ["nothing found: done", 0, 1, [], null, []],
    ["a flag only: done, flagged", 0, 1, [duplicate], null, [duplicate]],
    ["a retry gate with remakes left: made anew, counted", 0, 1, [blank, duplicate], 1, [blank, duplicate]],
    ["a retry gate with none left: flagged for a person instead", 1, 1, [blank], null, [{ ...blank, mode: "flag", message: "flat; still so after 1 remake(s)" }]],
    ["maxRetries 0: never remade", 0, 0, [blank], null, [{ ...blank, mode: "flag", message: "flat; no remake allowed (qc.maxRetries 0)" }]],
  ] as const)("%s", (_name, qcRetries, maxRetries, flags, remakeCount, expected) => {
    const step = afterQuality(item({ state: "downloading", qcRetries }), flags, { maxRetries });
    expect(step.remake?.qcRetries ?? null).toBe(remakeCount);
    expect(step.flags).toEqual(expected);
  });
});
