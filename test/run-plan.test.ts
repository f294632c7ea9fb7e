// The pure parts of `run`: the runner's options from the flags, and what a run's end means.
import { describe, expect, it } from "vitest";
import { exitCodeOf, planRunnerOptions, runEndRecord, stopSubmitting } from "../src/commands/run-plan.js";
import { DEFAULTS } from "../src/defaults.js";
import { ExitError, FatalRunError } from "../src/errors.js";
import type { RunSummary } from "../src/runner/runner.js";
import type { StateCounts } from "../src/store/port.js";

const counts = (over: Partial<StateCounts> = {}): StateCounts => ({ queued: 0, submitting: 0, running: 0, downloading: 0, done: 3, failed: 0, missing: 0, ...over });
const summary = (over: Partial<RunSummary> = {}): RunSummary => ({ stopReason: null, fatal: null, creditsThisRun: 1.2, doneThisRun: 2, failedThisRun: 0, ...over });

describe("a run's exit code", () => {
  it.each([
    ["every item done", summary(), counts(), null, 0],
    ["some failed", summary(), counts({ failed: 1 }), null, 2],
    ["some missing", summary(), counts({ missing: 1 }), null, 2],
    ["stopped by a signal", summary({ stopReason: "signal" }), counts(), null, 3],
    ["items still queued", summary(), counts({ queued: 1 }), null, 3],
    ["a fatal stop for the account", summary({ fatal: new FatalRunError("bad key", "UNAUTHORIZED", 1) }), counts(), null, 1],
    ["no summary (crashed before the runner)", null, counts(), null, 3],
    ["a refused key at the quota read", null, counts(), new ExitError(1, "401"), 1],
  ] as const)("%s: %i", (_name, s, c, thrown, code) => {
    expect(exitCodeOf(s, c, thrown)).toBe(code);
  });
});

describe("the record of a run's end", () => {
  it("names the fatal reason, else the stop reason, else what ended the command", () => {
    expect(runEndRecord(3, summary({ stopReason: "deadline" }), null)).toEqual({ outcome: "stopped", exitCode: 3, stopReason: "deadline", itemsDone: 2, itemsFailed: 0, credits: 1.2 });
    expect(runEndRecord(3, summary({ fatal: new FatalRunError("disk full", "ENOSPC", 3) }), null).stopReason).toBe("disk full");
    expect(runEndRecord(1, null, new ExitError(1, "the key was refused"))).toMatchObject({ outcome: "fatal", stopReason: "the key was refused", itemsDone: 0 });
    expect(runEndRecord(70, null, new Error("boom")).stopReason).toBe("crashed: boom");
  });
});

describe("the runner's options from the flags", () => {
  it("takes the flags, else the defaults, and tuning last", () => {
    const outputs = { thumbnail: { ...DEFAULTS.thumbnail }, renditions: [], qc: { ...DEFAULTS.qc } };
    const plan = planRunnerOptions({ concurrency: 9, jobTimeoutMs: 5_000, tuning: { backoffCapMs: 7 } }, outputs, 250, 1_000);
    expect(plan).toMatchObject({ concurrency: 9, maxAttempts: DEFAULTS.maxAttempts, pollIntervalMs: 250, jobTimeoutMs: 5_000, backoffCapMs: 7, maxCredits: null, stopSubmittingAt: null });
  });

  it.each([
    [undefined, undefined, { stopSubmittingAt: null, stopSubmittingReason: "deadline" }],
    [5_000, undefined, { stopSubmittingAt: 5_000, stopSubmittingReason: "deadline" }],
    [undefined, 3_000, { stopSubmittingAt: 3_000, stopSubmittingReason: "max-runtime" }],
    [5_000, 3_000, { stopSubmittingAt: 3_000, stopSubmittingReason: "max-runtime" }],
    [2_000, 3_000, { stopSubmittingAt: 2_000, stopSubmittingReason: "deadline" }],
  ] as const)("deadline %s, runtime end %s: the earlier stops submitting", (deadline, runtimeEnd, expected) => {
    expect(stopSubmitting(deadline, runtimeEnd)).toEqual(expected);
  });
});
