// The pure parts of `run`: the runner's options from the flags (read → plan), and what a run's
// end means (its exit code and the record kept of it). run.ts does the I/O around them.
import { DEFAULTS } from "../defaults.js";
import { EXIT, ExitError, errorMessage } from "../errors.js";
import type { QcSettings } from "../manifest/qc.js";
import type { RenditionSpec, ThumbnailSpec } from "../manifest/types.js";
import type { RunnerOptions } from "../runner/options.js";
import type { RunSummary } from "../runner/runner.js";
import type { StateCounts } from "../store/port.js";
import type { RunOutcome } from "../store/types.js";

export interface RunFlagsForPlan {
  concurrency?: number;
  maxAttempts?: number;
  rpm?: number;
  stopSubmittingAt?: number;
  maxRuntimeMs?: number;
  maxCredits?: number;
  jobTimeoutMs?: number;
  leaseMs?: number;
  roles?: { submit: boolean; deliver: boolean };
  tuning?: Partial<RunnerOptions>;
}

/** The runner's options: the flags, else the defaults; `tuning` (tests, benchmarks) last. */
export function planRunnerOptions(flags: RunFlagsForPlan, outputs: { thumbnail: ThumbnailSpec; renditions: readonly RenditionSpec[]; qc: QcSettings }, pollIntervalMs: number, now: number): RunnerOptions {
  return {
    concurrency: flags.concurrency ?? DEFAULTS.concurrency,
    maxAttempts: flags.maxAttempts ?? DEFAULTS.maxAttempts,
    pollIntervalMs,
    rpm: flags.rpm ?? DEFAULTS.rpm,
    backoffBaseMs: DEFAULTS.backoffBaseMs,
    backoffCapMs: DEFAULTS.backoffCapMs,
    throttleFallbackMs: DEFAULTS.throttleFallbackMs,
    downloadConcurrency: DEFAULTS.downloadConcurrency,
    maxInputPixels: DEFAULTS.maxInputPixels,
    ...stopSubmitting(flags.stopSubmittingAt, flags.maxRuntimeMs === undefined ? undefined : now + flags.maxRuntimeMs),
    maxCredits: flags.maxCredits ?? null,
    reconcileWindowMs: DEFAULTS.reconcileWindowMs,
    jobTimeoutMs: flags.jobTimeoutMs ?? DEFAULTS.jobTimeoutMs,
    retryAfterCapMs: DEFAULTS.retryAfterCapMs,
    serviceDownMs: DEFAULTS.serviceDownMs,
    leaseMs: flags.leaseMs ?? DEFAULTS.leaseMs,
    roles: flags.roles ?? { submit: true, deliver: true },
    thumbnail: outputs.thumbnail,
    renditions: outputs.renditions,
    qc: outputs.qc,
    ...flags.tuning,
  };
}

/** The earlier of --deadline and --max-runtime, and which one it is (for the stop reason). */
export function stopSubmitting(deadline: number | undefined, runtimeEnd: number | undefined): Pick<RunnerOptions, "stopSubmittingAt" | "stopSubmittingReason"> {
  if (runtimeEnd !== undefined && (deadline === undefined || runtimeEnd < deadline)) return { stopSubmittingAt: runtimeEnd, stopSubmittingReason: "max-runtime" };
  return { stopSubmittingAt: deadline ?? null, stopSubmittingReason: "deadline" };
}

/**
 * DESIGN.md: 0 all done · 2 finished with failed or missing items · 3 stopped early, resumable.
 * A run that ended with an ExitError (a refused key at the quota read) has that error's code;
 * `counts` null: the database could not be read at the end.
 */
export function exitCodeOf(summary: RunSummary | null, counts: StateCounts | null, thrown: unknown = null): number {
  if (thrown instanceof ExitError) return thrown.exitCode;
  if (summary?.fatal) return summary.fatal.exitCode;
  // The database no longer answers: whatever it holds, the next run resumes it.
  if (counts === null) return EXIT.stoppedEarly;
  const unfinished = counts.queued + counts.submitting + counts.running + counts.downloading;
  if (!summary || summary.stopReason || unfinished > 0) return EXIT.stoppedEarly;
  return counts.failed + counts.missing > 0 ? EXIT.someFailed : EXIT.ok;
}

export function outcomeOf(exitCode: number): RunOutcome {
  return exitCode === EXIT.ok ? "done" : exitCode === EXIT.someFailed ? "some-failed" : exitCode === EXIT.stoppedEarly ? "stopped" : "fatal";
}

/** What the runs table keeps of a run's end. */
export function runEndRecord(exitCode: number, summary: RunSummary | null, thrown: unknown): { outcome: RunOutcome; exitCode: number; stopReason: string | null; itemsDone: number; itemsFailed: number; credits: number } {
  const stopReason = summary?.fatal?.message ?? summary?.stopReason ?? (thrown instanceof ExitError ? thrown.message || null : thrown ? `crashed: ${errorMessage(thrown)}` : null);
  return { outcome: outcomeOf(exitCode), exitCode, stopReason, itemsDone: summary?.doneThisRun ?? 0, itemsFailed: summary?.failedThisRun ?? 0, credits: summary?.creditsThisRun ?? 0 };
}
