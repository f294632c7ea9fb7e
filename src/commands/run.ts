// `imgbatch run <manifest>`: expand, submit, poll, download, thumbnail; resumes whatever
// the database holds. Orchestrates only: the work is in runner/, store/, assets/, report/.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostname } from "node:os";
import { Downloader, type DownloaderSettings } from "../assets/download.js";
import { removeLeftoverTempFiles } from "../assets/atomic-file.js";
import { chooseFileSync, type SyncFolders } from "../assets/file-sync.js";
import { outputLayout, type OutputLayout } from "../assets/image-stage.js";
import { finishInterruptedMoves } from "../assets/superseded.js";
import { stageReferences, stagedCopy, type StagedReference } from "../assets/reference-copies.js";
import { DEFAULTS } from "../defaults.js";
import { EXIT, ExitError, FatalRunError, errorMessage } from "../errors.js";
import { releaseManifestMemory } from "../heap.js";
import { requestHash } from "../manifest/index.js";
import type { Manifest, PlannedItem } from "../manifest/types.js";
import { createProvider, type NetworkTimeouts } from "../providers/index.js";
import type { ProviderName } from "../providers/provider.js";
import { formatCredits } from "../report/format.js";
import { reportFilesPresent, writeReport } from "../report/index.js";
import { priceOfModel } from "../runner/price.js";
import { Runner, type RunSummary } from "../runner/runner.js";
import { classifyFailure } from "../runner/retry-policy.js";
import { sleepMs } from "../runner/sleep.js";
import { refreshRenditions } from "../runner/refresh-renditions.js";
import type { RunnerOptions } from "../runner/options.js";
import type { ReferenceLookup } from "../runner/references.js";
import { providerOfSidecars, readSidecars, type Sidecar } from "../runner/adopt-sidecars.js";
import { describeLostImages, findLostImages } from "../runner/lost-images.js";
import type { StateCounts, Store } from "../store/port.js";
import { isDatabaseUrl } from "../store/index.js";
import { PaidImagesWouldBeReplaced, type PlannedWithHash, type SyncSummary } from "../store/sync.js";
import type { CommandContext } from "./context.js";
import { takeRunLock } from "./run-lock.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit, prepareOutputFolder, refuseFormerDefault } from "./open-store.js";
import { applySyncToOutput, requeueChosen } from "./output-sync.js";
import { runPaths } from "./paths.js";
import { exitCodeOf, planRunnerOptions } from "./run-plan.js";
import { shellWord } from "./shell.js";
import { chooseProvider, describeChoice, paidReplacementMessage, type ProviderChoice } from "./provider-choice.js";
import { startProgress } from "./progress.js";
import { startWebhooks, type ListenOptions, type RunWebhooks } from "./webhooks.js";

export interface RunCommandOptions extends ListenOptions {
  provider?: ProviderName;
  /** The cap on the manifest's items (--max-items); default the manifest's `maxItems:`, else 10,000. */
  maxItems?: number;
  db?: string;
  out?: string;
  concurrency?: number;
  maxAttempts?: number;
  pollIntervalMs?: number;
  rpm?: number;
  stopSubmittingAt?: number;
  maxRuntimeMs?: number;
  maxCredits?: number;
  /** A job still in progress this long after its submit fails JOB_TIMEOUT. */
  jobTimeoutMs?: number;
  /** This process's name in a shared run's claims (default host:pid). */
  worker?: string;
  /** How long a claim holds without renewal. */
  leaseMs?: number;
  /** What this worker of a shared run does (default both). */
  roles?: { submit: boolean; deliver: boolean };
  retryFailed?: boolean;
  /** Requeue only these failed items before running (imgbatch retry). */
  retryFilter?: { rowIds?: string[]; keys?: string[]; codes?: string[]; missing?: boolean; rejected?: boolean };
  /** Remake items a paying provider made with the provider chosen now (--switch-provider). */
  switchProvider?: boolean;
  /** Make changed items anew although their paid jobs are still at the service (--abandon-in-flight). */
  abandonInFlight?: boolean;
  /** The command as the user typed it, for the hints in messages (default "run"). */
  command?: string;
  quiet?: boolean;
  /** Scheduler settings with no command-line flag (backoff, pools): for tests and benchmarks. */
  tuning?: Partial<RunnerOptions>;
  /** Request and download limits with no command-line flag: for tests (a service that hangs). */
  network?: Partial<NetworkTimeouts & Pick<DownloaderSettings, "deadlineMs" | "minBytesPerSecond" | "rateGraceMs">>;
  /** How delivered files are synced in batches (default `sync -f`): for tests. */
  syncFolders?: SyncFolders;
}

export async function runCommand(manifestPath: string, options: RunCommandOptions, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx, { maxItems: options.maxItems });
  const concurrency = options.concurrency ?? DEFAULTS.concurrency;
  const paths = runPaths(manifest, options);
  const command = options.command ?? "run";
  refuseFormerDefault(paths, manifest.name, shellWord(manifestPath), options.db !== undefined);
  prepareOutputFolder(paths.outDir);
  if (options.roles && !(options.roles.submit && options.roles.deliver) && !isDatabaseUrl(paths.db)) {
    throw new ExitError(EXIT.usage, "--roles divides a shared run between workers: name a PostgreSQL database with --db (or IMGBATCH_DB); a SQLite run's one worker does both");
  }
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: false });
  // A new database learns from the output folder (a backup of the state): read once, used twice.
  let sidecars: Map<string, Sidecar> | null = null;
  // The run's copies of its reference images (filled once it holds the lock), read by the local
  // renderer and the uploads; a reference the manifest no longer names is found by its sha256.
  const staged = new Map<string, StagedReference>();
  const references: ReferenceLookup = (ref) => staged.get(ref.sha256) ?? stagedCopy(paths.outDir, ref);
  let provider: ReturnType<typeof createProvider>;
  let first: FirstLines;
  try {
    const wasEmpty = await store.isEmpty();
    const sidecarsOnDisk = () => (sidecars ??= wasEmpty ? readSidecars(outputLayout(paths.outDir)) : new Map());
    const choice = chooseProvider({ flag: options.provider, manifest: manifest.provider, remembered: await store.rememberedProvider(), sidecars: () => providerOfSidecars(sidecarsOnDisk()) });
    const referenceBytes = (ref: Parameters<ReferenceLookup>[0]) => {
      const copy = references(ref);
      return copy === null ? null : readFileSync(copy.path);
    };
    provider = createProvider(choice.name, ctx.env, { pollIntervalMs: options.pollIntervalMs, concurrency, timeouts: options.network, referenceBytes });
    first = { choice, command, manifestAsTyped: shellWord(manifestPath), wasEmpty, sidecars: sidecarsOnDisk, dbPath: paths.dbLabel };
  } catch (error) {
    await store.close();
    throw error;
  }
  const downloader = new Downloader({
    maxBytes: DEFAULTS.downloadMaxBytes,
    connectTimeoutMs: DEFAULTS.connectTimeoutMs,
    headersTimeoutMs: DEFAULTS.headersTimeoutMs,
    bodyTimeoutMs: DEFAULTS.bodyTimeoutMs,
    ...options.network,
  });
  const log = ctx.logger.child({ manifest: manifest.name });
  try {
    const worker = options.worker ?? `${hostname()}:${process.pid}`;
    const manifestHash = createHash("sha256").update(readFileSync(manifest.file)).digest("hex");
    const lock = await takeRunLock(store, { pid: process.pid, host: hostname(), provider: first.choice.name, manifestFile: manifest.file, manifestHash, worker }, { dbPath: paths.dbLabel, log, now: ctx.now });
    // Listening from the moment the lock is held: a signal during start-up (the quota read,
    // its retries) also ends in a closed run and a released lock, not in an exit at once.
    const stop = new AbortController();
    const unregister = ctx.onStopSignal((signal) => {
      log.warn(`${signal}: stopping — no new submissions; state stays consistent (a second ${signal} exits at once)`);
      stop.abort(new DOMException(`${signal} received`, "AbortError"));
    });
    let summary: RunSummary | null = null;
    let thrown: unknown = null;
    let exitCode: number = EXIT.stoppedEarly;
    try {
      summary = await execute({ manifest, first, store, provider, downloader, outDir: paths.outDir, options, ctx, log, stopSignal: stop.signal, interrupted: lock.interrupted, worker, staged, references });
    } catch (error) {
      thrown = error;
      throw error;
    } finally {
      unregister();
      // A refused key at the quota read ends the run with its own code (1): the record says so.
      exitCode = exitCodeOf(summary, await finalCounts(store, summary), thrown);
      await lock.release(exitCode, summary, thrown);
    }
    if (summary?.fatal) throw new ExitError(exitCode, summary.fatal.message);
    if (lock.failure) throw new ExitError(EXIT.stoppedEarly, `the run's end was not recorded: ${errorMessage(lock.failure)}`);
    return exitCode;
  } finally {
    await Promise.allSettled([provider.close(), downloader.close()]);
    await store.close();
  }
}

interface FirstLines {
  choice: ProviderChoice;
  command: string;
  manifestAsTyped: string;
  /** The database had no item before this run's sync: the output folder's sidecars are adopted. */
  wasEmpty: boolean;
  sidecars: () => Map<string, Sidecar>;
  dbPath: string;
}

/** What one run works with, from the moment it holds the lock. */
interface RunSession {
  manifest: Manifest;
  first: FirstLines;
  store: Store;
  provider: ReturnType<typeof createProvider>;
  downloader: Downloader;
  outDir: string;
  options: RunCommandOptions;
  ctx: CommandContext;
  log: CommandContext["logger"];
  stopSignal: AbortSignal;
  /** The last run did not close (killed): temporary files and half-made moves may be left. */
  interrupted: boolean;
  worker: string;
  /** Filled here with the run's copies of the manifest's reference images; `references` finds them. */
  staged: Map<string, StagedReference>;
  references: ReferenceLookup;
}

async function execute(session: RunSession): Promise<RunSummary> {
  const { manifest, first, store, provider, outDir, options, ctx, log, stopSignal } = session;
  const providerName = first.choice.name;
  let plan: SyncSummary;
  try {
    plan = await store.syncManifest(withRequestHashes(manifest.items, providerName), providerName, { hashWith: requestHash, allowProviderSwitch: options.switchProvider ?? false, abandonInFlight: options.abandonInFlight ?? false });
  } catch (error) {
    if (error instanceof PaidImagesWouldBeReplaced) throw new ExitError(EXIT.usage, paidReplacementMessage(error, first.choice, first.command, first.manifestAsTyped, outDir));
    throw error;
  }
  // The items go to the sync and no further: the run reads them back from the store, so a
  // long run does not keep 20,000 of them in memory.
  manifest.items = [];
  releaseManifestMemory();
  const layout = outputLayout(outDir);
  log.info(`provider: ${describeChoice(first.choice)}; state in ${first.dbPath}, images in ${outDir}`);
  const copies = await stageReferences(outDir, manifest.references);
  for (const [sha256, copy] of copies.staged) session.staged.set(sha256, copy);
  for (const file of copies.changed) log.warn(`reference ${file.path} changed since the manifest was read: its items fail REFERENCE_UPLOAD_FAILED; run again`);
  await applySyncToOutput({ store, layout, plan, providerName, sidecars: first.wasEmpty ? first.sidecars : null, log });
  if (options.retryFailed || options.retryFilter) await requeueChosen(store, options.retryFilter ?? {}, log);
  const removed = session.interrupted ? await removeLeftoverTempFiles(outDir) : [];
  if (removed.length) log.info({ files: removed.length }, `removed ${removed.length} partial file(s) left by an interrupted run`);
  const moved = session.interrupted ? finishInterruptedMoves(layout) : 0;
  if (moved) log.info(`numbered ${moved} set(s) of earlier files an interrupted run was moving to ${layout.supersededDir}`);
  const runnerOptions = planRunnerOptions(options, manifest, provider.pollIntervalMs, ctx.now());
  await refreshRenditions({ store, layout, options: runnerOptions, logger: log });
  await preflight(provider, store, log, stopSignal);
  const fileSync = await chooseFileSync(probeFolders(outDir, layout, manifest), { windowMs: DEFAULTS.fileSyncWindowMs, eachFile: ctx.env.fsyncEachFile, syncFolders: options.syncFolders, signal: stopSignal, warn: (message) => log.warn(message) });
  log.debug(fileSync.batched ? "delivered files are synced in batches (sync -f)" : "each delivered file is fsynced");
  if (stopSignal.aborted) return { stopReason: "signal", fatal: null, creditsThisRun: 0, doneThisRun: 0, failedThisRun: 0 };
  let webhooks: RunWebhooks;
  try {
    webhooks = await startWebhooks(manifest.webhooks, options, providerName, runnerOptions.concurrency, log);
  } catch (error) {
    fileSync.close();
    throw error;
  }
  const progress = await startProgress({ store, logger: log, terminal: ctx.terminal, quiet: options.quiet ?? false, now: ctx.now });
  const runner = new Runner({ store, worker: session.worker, provider, downloader: session.downloader, layout, fileSync, logger: log, options: runnerOptions, references: session.references, onTransition: (e) => progress.onTransition(e), webhooks: webhooks.routes });
  // Every done image is checked on disk while the run submits: at 100,000 items the stats would
  // hold back its first submit.
  runner.holdOpen(
    (async () => {
      const lost = await findLostImages(store, layout, providerName, stopSignal);
      if (lost.length > 0) {
        log.warn({ keys: lost.slice(0, 50).map((l) => l.key) }, describeLostImages(lost));
        await runner.deliverAgain(lost);
      }
      // Missing images are asked of their jobs again each run, for free: the service may only have been down.
      const missing = (await store.inStates(["missing"])).filter((i) => i.provider === providerName && (i.jobId !== null || i.imageRef !== null));
      if (missing.length > 0) {
        log.info({ keys: missing.slice(0, 50).map((i) => i.key) }, `${missing.length} missing item(s): asking their jobs for the images again (no new submit)`);
        await runner.deliverAgain(missing.map((i) => ({ id: i.id, detail: "missing" })));
      }
    })(),
    "the check of delivered images",
  );
  const onStop = () => runner.stop("signal", true);
  stopSignal.addEventListener("abort", onStop, { once: true });
  let summary: RunSummary;
  try {
    summary = await runner.run();
  } finally {
    stopSignal.removeEventListener("abort", onStop);
    progress.stop();
    fileSync.close();
    await webhooks.close();
  }
  // The sync kept the manifest's order in the store: the sheet follows it.
  const report = () => writeReport(store, manifest.name, outDir, "as-synced");
  // Workers of a shared run that end together write it once, not once each; a stopped one
  // writes its own at once rather than wait for another's turn.
  if (!store.reportTurns || stopSignal.aborted) await report();
  else if (!(await store.reportTurns.take(outDir, () => reportFilesPresent(outDir), report))) log.debug("the report: another worker of the run wrote it for this same state");
  await progress.finalLine(summary);
  return summary;
}

/**
 * The output folder and those of its folders that exist already: a folder that is a link to
 * another file system must pass the probe too. Folders made later are made in the output folder.
 */
function probeFolders(outDir: string, layout: OutputLayout, manifest: Manifest): string[] {
  // The output folder itself was made (and checked) before the run began: prepareOutputFolder.
  const folders = [layout.imagesDir, layout.thumbsDir, layout.renditionsDir, ...manifest.renditions.map((r) => join(layout.renditionsDir, r.name))];
  return [outDir, ...folders.filter((folder) => existsSync(folder))];
}

/** Each item with the hash of its request, made as the sync reads them (never a second array). */
function* withRequestHashes(items: readonly PlannedItem[], provider: ProviderName): Generator<PlannedWithHash> {
  for (const item of items) yield { item, requestHash: requestHash(item.request, provider) };
}

/** A refused key ends the run here, after one request; a quota outage only warns. */
async function preflight(provider: ReturnType<typeof createProvider>, store: Store, log: CommandContext["logger"], signal: AbortSignal): Promise<void> {
  const toSubmit = await store.toSubmitByModel();
  const count = toSubmit.reduce((sum, group) => sum + group.count, 0);
  if (count === 0) return;
  let creditsRemaining: number | null = null;
  for (let attempt = 1; ; attempt++) {
    try {
      ({ creditsRemaining } = await provider.preflight(signal));
      break;
    } catch (error) {
      if (error instanceof FatalRunError) throw new ExitError(error.exitCode, error.message);
      const failure = classifyFailure(error);
      if (failure.kind === "aborted" || signal.aborted) return;
      if (attempt >= 3 || (failure.kind !== "throttled" && failure.kind !== "retryable")) {
        log.warn(`could not read the account's credits (${errorMessage(error)}); going on`);
        return;
      }
      try {
        await sleepMs(failure.kind === "throttled" ? (failure.retryAfterMs ?? DEFAULTS.throttleFallbackMs) : DEFAULTS.backoffBaseMs * attempt, signal);
      } catch {
        return; // stopped by a signal
      }
    }
  }
  if (creditsRemaining === null) return;
  const needed = toSubmit.reduce((sum, group) => sum + group.count * priceOfModel(group.provider, group.model), 0);
  const line = `account has ${formatCredits(creditsRemaining)} AI credits left; the ${count} item(s) to make need about ${formatCredits(needed)}`;
  if (needed > creditsRemaining) log.warn(`${line}: the run will stop (exit 3) when they run out`);
  else log.info(line);
}

/**
 * The counts a run's exit code is judged by. A worker of a shared run that finished its part
 * (no stop) is not judged by items the other workers still hold on their way.
 */
async function finalCounts(store: Store, summary: RunSummary | null): Promise<StateCounts | null> {
  const counts = await store.counts().catch(() => null);
  if (counts === null || !store.sharesRuns || !summary || summary.stopReason !== null) return counts;
  return { ...counts, submitting: 0, running: 0, downloading: 0 };
}
