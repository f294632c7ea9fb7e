import { describe, expect, it, vi } from "vitest";
import { FatalRunError, PermanentError, ServiceError, ThrottledError } from "../src/errors.js";
import { backoffDelayMs, canRetry, classifyFailure, keepPaidImage } from "../src/runner/retry-policy.js";
import { TokenBucket, rpmBucketShape } from "../src/runner/token-bucket.js";
import { parseDeadline, parseDuration } from "../src/commands/option-values.js";

describe("backoff", () => {
  const policy = { backoffBaseMs: 1000, backoffCapMs: 8000 };
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [9, 8000],
  ])("attempt %i waits at most %i ms (full jitter)", (attempt, ceiling) => {
    expect(backoffDelayMs(attempt, policy, () => 0.999999)).toBe(ceiling - 1);
    expect(backoffDelayMs(attempt, policy, () => 0)).toBe(0);
  });

  it("allows attempts up to the maximum", () => {
    expect(canRetry(4, { maxAttempts: 5 })).toBe(true);
    expect(canRetry(5, { maxAttempts: 5 })).toBe(false);
  });
});

describe("classifyFailure", () => {
  const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  const full = Object.assign(new Error("no space left"), { code: "ENOSPC" });
  it.each([
    ["a reset socket", reset, "retryable"],
    ["a reset inside a cause chain", new Error("fetch failed", { cause: reset }), "retryable"],
    ["undici headers timeout", Object.assign(new Error("t"), { code: "UND_ERR_HEADERS_TIMEOUT" }), "retryable"],
    ["a 503", new ServiceError("503", "HTTP_503", { retryable: true }), "retryable"],
    ["a 429", new ThrottledError("429", 2000), "throttled"],
    ["a 400", new PermanentError("bad", "INVALID_REQUEST_BODY", 400), "permanent"],
    ["a bad key", new FatalRunError("401", "UNAUTHORIZED", 1), "fatal"],
    ["a full disk", full, "fatal"],
    ["an abort", new DOMException("stopped", "AbortError"), "aborted"],
    ["a plain bug", new TypeError("x is undefined"), "permanent"],
  ])("%s is %s", (_name, error, kind) => {
    expect(classifyFailure(error).kind).toBe(kind);
  });

  it("keeps Retry-After", () => {
    expect(classifyFailure(new ThrottledError("429", 3000))).toEqual({ kind: "throttled", retryAfterMs: 3000 });
  });
});

describe("TokenBucket", () => {
  it("spaces requests at the rate and honours a pause", async () => {
    let t = 0;
    const bucket = new TokenBucket(60_000, 1, () => t); // one per ms
    await bucket.take();
    const order: number[] = [];
    const pending = bucket.take().then(() => order.push(t));
    await new Promise((r) => setTimeout(r, 5));
    t = 1;
    await pending;
    expect(order).toEqual([1]);
    bucket.pauseUntil(50);
    const paused = bucket.take().then(() => order.push(t));
    t = 50;
    await paused;
    expect(order).toEqual([1, 50]);
  });
});

describe("TokenBucket.forRpm", () => {
  it("lets a tenth of a second's worth through at once, then spaces the rest", async () => {
    let t = 0;
    const bucket = TokenBucket.forRpm(6_000, () => t); // 100 a second: a burst of 10
    for (let i = 0; i < 10; i++) await bucket.take();
    let eleventh = false;
    const pending = bucket.take().then(() => (eleventh = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(eleventh).toBe(false);
    t = 60_000 / rpmBucketShape(6_000).perMinute;
    await pending;
    expect(eleventh).toBe(true);
  });

  it.each([60, 1_200, 9_000])("--rpm %i: a caller taking tokens as fast as it can never gets more than --rpm into any 60 s window", async (rpm) => {
    vi.useFakeTimers();
    try {
      const bucket = TokenBucket.forRpm(rpm, () => Date.now());
      const start = Date.now();
      const sentAt: number[] = [];
      const taking = (async () => {
        while (Date.now() - start < 150_000) {
          await bucket.take();
          sentAt.push(Date.now());
        }
      })();
      await vi.advanceTimersByTimeAsync(151_000);
      await taking;
      let most = 0;
      for (let lo = 0, hi = 0; hi < sentAt.length; hi++) {
        while (sentAt[hi]! - sentAt[lo]! >= 60_000) lo++;
        most = Math.max(most, hi - lo + 1);
      }
      expect(most).toBeLessThanOrEqual(rpm);
      // And the bucket is not merely slow: a full window gets close to --rpm.
      expect(most).toBeGreaterThanOrEqual(rpm * 0.98);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([1, 60, 599, 1_200, 9_000, 100_000])("--rpm %i: burst − 1 + earned a minute is exactly --rpm", (rpm) => {
    const { burst, perMinute } = rpmBucketShape(rpm);
    expect(burst).toBeGreaterThanOrEqual(1);
    expect(burst - 1 + perMinute).toBe(rpm);
  });
});

describe("option values", () => {
  it.each([
    ["250ms", 250],
    ["10s", 10_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["7", 7000],
  ])("duration %s is %i ms", (text, ms) => expect(parseDuration(text, "--x")).toBe(ms));

  it("refuses a bad duration naming the option", () => {
    expect(() => parseDuration("soon", "--poll-interval")).toThrow(/--poll-interval: "soon"/);
  });

  it("takes HH:MM as the next such time", () => {
    const now = new Date(2026, 0, 10, 23, 30);
    expect(new Date(parseDeadline("06:00", "--deadline", now))).toEqual(new Date(2026, 0, 11, 6, 0));
    expect(new Date(parseDeadline("23:45", "--deadline", now))).toEqual(new Date(2026, 0, 10, 23, 45));
    expect(parseDeadline("2026-01-11T05:00:00Z", "--deadline", now)).toBe(Date.parse("2026-01-11T05:00:00Z"));
    expect(() => parseDeadline("tomorrow", "--deadline", now)).toThrow(/--deadline/);
  });
});

describe("an image delivered before is never paid for again by the run", () => {
  it.each([
    ["never delivered, failed", null, "failed", "failed"],
    ["never delivered, queued again", null, "queued", "queued"],
    ["delivered before, failed", "abc", "failed", "missing"],
    ["delivered before, queued for a new submit", "abc", "queued", "missing"],
    ["delivered before, read again", "abc", "running", "running"],
    ["delivered before, delivered", "abc", "done", "done"],
  ] as const)("%s: %s → %s", (_name, sha256, to, expected) => {
    const kept = keepPaidImage({ sha256 }, { to, set: { errorCode: "JOB_CLEANED", errorMessage: "cleaned", jobId: null } });
    expect(kept.to).toBe(expected);
    // Rerouted, the job id stays (each later run asks that job again) and the reason is kept.
    if (expected === "missing") expect(kept.set).toEqual({ errorCode: "IMAGE_MISSING", errorMessage: expect.stringContaining("JOB_CLEANED: cleaned") });
  });
});
