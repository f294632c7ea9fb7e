// Where `retry` sends an item: never to a new submit while it may still get an image it paid for.
import { describe, expect, it } from "vitest";
import { retryStepOf } from "../src/store/retry-step.js";

describe("retry's step for an item", () => {
  it.each([
    ["a failed submit (no job)", { state: "failed", jobId: null, credits: null, errorCode: "INVALID_REQUEST_BODY", attempts: 2 }, "queued"],
    ["a job the service failed", { state: "failed", jobId: "j", credits: null, errorCode: "CONTENT_POLICY_VIOLATION", attempts: 1 }, "queued"],
    ["a charged job whose download failed", { state: "failed", jobId: "j", credits: 0.6, errorCode: "DOWNLOAD_TRUNCATED", attempts: 1 }, "downloading"],
    ["the same, after its second chance", { state: "failed", jobId: "j", credits: 0.6, errorCode: "DOWNLOAD_TRUNCATED", attempts: 0 }, "queued"],
    ["a job timed out", { state: "failed", jobId: "j", credits: null, errorCode: "JOB_TIMEOUT", attempts: 1 }, "running"],
    ["a job whose reads failed", { state: "failed", jobId: "j", credits: null, errorCode: "POLL_FAILED", attempts: 3 }, "running"],
    ["a lost submit not settled", { state: "failed", jobId: null, credits: null, errorCode: "UNRECONCILED", attempts: 1 }, "submitting"],
    ["the same, after its second look", { state: "failed", jobId: null, credits: null, errorCode: "UNRECONCILED", attempts: 0 }, "queued"],
    ["a missing image (retry --missing)", { state: "missing", jobId: "j", credits: 0.6, errorCode: "IMAGE_MISSING", attempts: 1 }, "queued"],
  ] as const)("%s → %s", (_name, item, to) => {
    expect(retryStepOf({ ...item, sha256: null }).to).toBe(to);
  });
});
