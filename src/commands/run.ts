// `imgbatch run <manifest>`: expand, submit, poll, download, thumbnail; resumes whatever
// the database holds. Orchestrates only: the work is in runner/, store/, assets/, report/.
import { hostname } from "node:os";
import { Downloader } from "../assets/download.js";
import { removeLeftoverTempFiles } from "../assets/atomic-file.js";
import { outputLayout } from "../assets/image-stage.js";
import { DEFAULTS } from "../defaults.js";
import { EXIT, ExitError, FatalRunError, errorMessage } from "../errors.js";
import { requestHash } from "../manifest/index.js";
import type { Manifest } from "../manifest/types.js";
import { createProvider } from "../providers/index.js";
import type { ProviderName } from "../providers/provider.js";
import { writeReport } from "../report/index.js";
import { priceOf, Runner, type RunSummary } from "../runner/runner.js";
import { classifyFailure } from "../runner/retry-policy.js";
import { sleepMs } from "../runner/sleep.js";
import { refreshRenditions } from "../runner/refresh-renditions.js";
import type { RunnerOptions } from "../runner/options.js";
import { Store } from "../store/store.js";
import type { LockHolder, RunOutcome } from "../store/types.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { runPaths } from "./paths.js";
import { startProgress } from "./progress.js";

export interface RunCommandOptions {
  provider?: ProviderName;
  db?: string;
  out?: string;
  concurrency?: number;
  maxAttempts?: number;
  pollIntervalMs?: number;
  rpm?: number;
  stopSubmittingAt?: number;
  maxRuntimeMs?: number;
  maxCredits?: number;
  retryFailed?: boolean;
  /** Requeue only these failed items before running (imgbatch retry). */
  retryFilter?: { rowIds?: string[]; codes?: string[] };
  quiet?: boolean;
  /** Scheduler settings with no command-line flag (backoff, pools): for tests and benchmarks. */
  tuning?: Partial<RunnerOptions>;
}

/** A lock whose process is gone is stale. On another host the pid cannot be checked: the heartbeat tells. */
export function lockIsStale(holder: LockHolder, now: number, host = hostname()): boolean {
  if (holder.host === host) {
    if (holder.pid === process.pid) return true;
    try {
      process.kill(holder.pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
  return now - holder.heartbeatAt > 3 * 60_000;
}

export async function runCommand(manifestPath: string, options: RunCommandOptions, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const providerName: ProviderName = options.provider ?? manifest.provider ?? "local";
  const concurrency = options.concurrency ?? DEFAULTS.concurrency;
  const provider = createProvider(providerName, ctx.env, { pollIntervalMs: options.pollIntervalMs, concurrency });
  const paths = runPaths(manifest.name, options);
  const store = Store.open(paths.db);
  const downloader = new Downloader({
    maxBytes: DEFAULTS.downloadMaxBytes,
    connectTimeoutMs: DEFAULTS.connectTimeoutMs,
    headersTimeoutMs: DEFAULTS.headersTimeoutMs,
    bodyTimeoutMs: DEFAULTS.bodyTimeoutMs,
  });
  const log = ctx.logger.child({ manifest: manifest.name });
  try {
    const begun = store.beginRun({ pid: process.pid, host: hostname(), provider: providerName, manifestFile: manifest.file }, (h) => lockIsStale(h, ctx.now()));
    if (!begun.acquired) {
      const h = begun.holder;
      throw new ExitError(
        EXIT.locked,
        `another run holds ${paths.db}: pid ${h.pid} on ${h.host}, started ${new Date(h.startedAt).toISOString()} (last heartbeat ${new Date(h.heartbeatAt).toISOString()})`,
      );
    }
    const run = begun.run;
    if (begun.tookOverFrom) {
      const h = begun.tookOverFrom;
      log.warn({ stalePid: h.pid, staleHost: h.host }, `took over a stale lock of pid ${h.pid} on ${h.host} (started ${new Date(h.startedAt).toISOString()}); that process is gone`);
    }
    store.closeAbandonedRuns(run.id);
    const heartbeat = setInterval(() => store.heartbeat(run.id), 10_000);
    heartbeat.unref();
    let summary: RunSummary | null = null;
    try {
      summary = await execute(manifest, providerName, store, provider, downloader, paths.outDir, options, ctx, log);
    } finally {
      clearInterval(heartbeat);
      const exitCode = exitCodeFor(summary, store);
      store.endRun(run.id, {
        outcome: outcomeOf(exitCode),
        exitCode,
        stopReason: summary?.fatal?.message ?? summary?.stopReason ?? (summary ? null : "crashed"),
        itemsDone: summary?.doneThisRun ?? 0,
        itemsFailed: summary?.failedThisRun ?? 0,
        credits: summary?.creditsThisRun ?? 0,
      });
      store.releaseLock(run.id);
    }
    const exitCode = exitCodeFor(summary, store);
    if (summary?.fatal) throw new ExitError(exitCode, summary.fatal.message);
    return exitCode;
  } finally {
    await Promise.allSettled([provider.close(), downloader.close()]);
    store.close();
  }
}

async function execute(
  manifest: Manifest,
  providerName: ProviderName,
  store: Store,
  provider: ReturnType<typeof createProvider>,
  downloader: Downloader,
  outDir: string,
  options: RunCommandOptions,
  ctx: CommandContext,
  log: CommandContext["logger"],
): Promise<RunSummary> {
  const plan = store.syncManifest(
    manifest.items.map((item) => ({ item, requestHash: requestHash(item.request, providerName) })),
    providerName,
  );
  if (plan.supersede.length) log.info({ keys: plan.supersede.map((s) => s.key) }, `${plan.supersede.length} item(s) changed in the manifest: made anew`);
  if (plan.markRemoved.length) log.info(`${plan.markRemoved.length} item(s) are no longer in the manifest: left alone`);
  if (options.retryFailed || options.retryFilter) {
    const requeued = store.requeueFailed(options.retryFilter ?? {});
    log.info(`re-queued ${requeued.length} failed item(s)`);
  }
  const removed = await removeLeftoverTempFiles(outDir);
  if (removed.length) log.info({ files: removed.length }, `removed ${removed.length} partial file(s) left by an interrupted run`);
  const layout = outputLayout(outDir);
  const runnerOptions: RunnerOptions = {
    concurrency: options.concurrency ?? DEFAULTS.concurrency,
    maxAttempts: options.maxAttempts ?? DEFAULTS.maxAttempts,
    pollIntervalMs: provider.pollIntervalMs,
    rpm: options.rpm ?? DEFAULTS.rpm,
    backoffBaseMs: DEFAULTS.backoffBaseMs,
    backoffCapMs: DEFAULTS.backoffCapMs,
    throttleFallbackMs: DEFAULTS.throttleFallbackMs,
    downloadConcurrency: DEFAULTS.downloadConcurrency,
    maxInputPixels: DEFAULTS.maxInputPixels,
    stopSubmittingAt: earliest(options.stopSubmittingAt, options.maxRuntimeMs === undefined ? undefined : ctx.now() + options.maxRuntimeMs),
    maxCredits: options.maxCredits ?? null,
    reconcileWindowMs: DEFAULTS.reconcileWindowMs,
    thumbnail: manifest.thumbnail,
    renditions: manifest.renditions,
    ...options.tuning,
  };
  await refreshRenditions({ store, layout, options: runnerOptions, logger: log });
  await preflight(provider, store, log);
  const progress = startProgress({ store, logger: log, terminal: ctx.terminal, quiet: options.quiet ?? false, now: ctx.now });
  const runner = new Runner({ store, provider, downloader, layout, logger: log, options: runnerOptions, onTransition: (e) => progress.onTransition(e) });
  const unregister = ctx.onStopSignal((signal) => {
    log.warn(`${signal}: stopping — no new submissions; state stays consistent (a second ${signal} exits at once)`);
    runner.stop("signal", true);
  });
  let summary: RunSummary;
  try {
    summary = await runner.run();
  } finally {
    unregister();
    progress.stop();
  }
  await writeReport(store, manifest, outDir);
  progress.finalLine(summary);
  return summary;
}

/** A refused key ends the run here, after one request; a quota outage only warns. */
async function preflight(provider: ReturnType<typeof createProvider>, store: Store, log: CommandContext["logger"]): Promise<void> {
  const toSubmit = store.inStates(["queued", "submitting"]);
  if (toSubmit.length === 0) return;
  let creditsRemaining: number | null = null;
  for (let attempt = 1; ; attempt++) {
    try {
      ({ creditsRemaining } = await provider.preflight());
      break;
    } catch (error) {
      if (error instanceof FatalRunError) throw new ExitError(error.exitCode, error.message);
      const failure = classifyFailure(error);
      if (attempt >= 3 || (failure.kind !== "throttled" && failure.kind !== "retryable")) {
        log.warn(`could not read the account's credits (${errorMessage(error)}); going on`);
        return;
      }
      await sleepMs(failure.kind === "throttled" ? (failure.retryAfterMs ?? DEFAULTS.throttleFallbackMs) : DEFAULTS.backoffBaseMs * attempt);
    }
  }
  if (creditsRemaining === null) return;
  const needed = toSubmit.reduce((sum, item) => sum + priceOf(item), 0);
  const line = `account has ${creditsRemaining} AI credits left; the ${toSubmit.length} item(s) to make need about ${Math.round(needed * 100) / 100}`;
  if (needed > creditsRemaining) log.warn(`${line}: the run will stop (exit 3) when they run out`);
  else log.info(line);
}

function earliest(a: number | undefined, b: number | undefined): number | null {
  const values = [a, b].filter((v): v is number => v !== undefined);
  return values.length ? Math.min(...values) : null;
}

/** DESIGN.md: 0 all done · 2 finished with failures · 3 stopped early, resumable. */
export function exitCodeFor(summary: RunSummary | null, store: Store): number {
  if (summary?.fatal) return summary.fatal.exitCode;
  const counts = store.counts();
  const unfinished = counts.queued + counts.submitting + counts.running + counts.downloading;
  if (!summary || summary.stopReason || unfinished > 0) return EXIT.stoppedEarly;
  return counts.failed > 0 ? EXIT.someFailed : EXIT.ok;
}

function outcomeOf(exitCode: number): RunOutcome {
  return exitCode === EXIT.ok ? "done" : exitCode === EXIT.someFailed ? "some-failed" : exitCode === EXIT.stoppedEarly ? "stopped" : "fatal";
}
