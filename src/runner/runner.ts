// The scheduler: items from queued to done with at most `concurrency` at the service, and a stop
// that leaves the database consistent. Here: slots, stops, claims, bookkeeping; each item's submit
// and polls in service-side.ts, the key's limits in service-gate.ts, images in image-stage-driver.ts.
import { setMaxListeners } from "node:events";
import { ClaimLostError, FatalRunError, errorMessage } from "../errors.js";
import type { Downloader } from "../assets/download.js";
import { FSYNC_EACH_FILE, type FileSync } from "../assets/file-sync.js";
import type { OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import type { ImageSource, Provider } from "../providers/provider.js";
import type { ItemWrite, Store } from "../store/port.js";
import type { ItemRecord } from "../store/types.js";
import type { RunnerOptions } from "./options.js";
import { classifyFailure, keepPaidImage } from "./retry-policy.js";
import { ImageStageDriver } from "./image-stage-driver.js";
import { priceOf } from "./price.js";
import { RunPeers } from "./run-peers.js";
import { ServiceGate } from "./service-gate.js";
import { ServiceSideDriver } from "./service-side.js";
import type { ReferenceLookup } from "./references.js";
import type { RunSummary, StopReason, TransitionEvent } from "./run-summary.js";
import { WakeSignal } from "./wake-signal.js";
import type { WebhookRoutes } from "./webhook-routes.js";

export type { RunSummary, StopReason, TransitionEvent } from "./run-summary.js";

const SHARED_CLAIM_RETRY_MS = 250;
const SHARED_BUSY_CLAIM_RETRY_MS = 1_000;

export interface RunnerDeps {
  store: Store;
  /** Who this process is in the items' claims (host and pid, or --worker). */
  worker: string;
  provider: Provider;
  downloader: Downloader;
  layout: OutputLayout;
  /** How delivered files reach the disk (default: each fsynced as it is written). */
  fileSync?: FileSync;
  /** The bytes of local reference images (uploaded before their items' submits: references.ts). */
  references?: ReferenceLookup;
  logger: Logger;
  options: RunnerOptions;
  now?: () => number;
  random?: () => number;
  onTransition?: (event: TransitionEvent) => void;
  /** The webhook each submit carries, and the hints of this run's receiver (run --listen). */
  webhooks?: WebhookRoutes;
}

export class Runner {
  private readonly store: Store;
  private readonly options: RunnerOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly gate: ServiceGate;
  private readonly serviceSide: ServiceSideDriver;
  private readonly imageStage: ImageStageDriver;
  private readonly peers: RunPeers;
  private readonly atService = new Map<number, Promise<void>>();
  private readonly inImageStage = new Map<number, Promise<void>>();
  /** Work beside the items (the check of delivered files) that the run must not end before. */
  private readonly held = new Set<Promise<void>>();
  /** Aborted by a hard stop (signal): sleeps and requests end at once. */
  private readonly hardStop = new AbortController();
  /** Aborted by any stop: waits end, requests sent finish; the image stage goes on (paid images) unless hard-stopped. */
  private readonly softStop = new AbortController();
  private stopReason: StopReason | null = null;
  private fatal: FatalRunError | null = null;
  private readonly wakeSignal = new WakeSignal();
  /** Finished jobs a worker that only submits has released to the delivering ones. */
  private readonly handedOn = new Set<number>();
  private inFlightCredits = 0;
  private readonly summary: RunSummary = { stopReason: null, fatal: null, creditsThisRun: 0, doneThisRun: 0, failedThisRun: 0 };

  constructor(private readonly deps: RunnerDeps) {
    this.store = deps.store;
    this.options = deps.options;
    this.log = deps.logger;
    this.now = deps.now ?? Date.now;
    this.peers = new RunPeers(this.store, this.log);
    this.gate = new ServiceGate(deps.provider, this.store, this.options, this.log, this.now, (reason) => {
      if (this.fatal) return;
      this.fatal = new FatalRunError(reason.message, reason.code, 3);
      this.log.error({ code: reason.code }, reason.message);
      this.stop(reason.code === "SERVICE_UNREACHABLE" ? "service-unreachable" : "fatal");
    });
    const shared = { ...deps, gate: this.gate, options: this.options, log: this.log, now: this.now, random: deps.random ?? Math.random };
    this.serviceSide = new ServiceSideDriver(
      { ...shared, softSignal: this.softStop.signal, hardSignal: this.hardStop.signal },
      {
        move: (item, write) => this.move(item, write),
        stopping: () => {
          this.checkDeadline();
          return this.stopReason !== null;
        },
        paid: (credits) => {
          this.summary.creditsThisRun += credits;
        },
        toImageStage: (item, image) => this.toImageStage(item, image),
      },
    );
    this.imageStage = new ImageStageDriver(
      { ...shared, fileSync: deps.fileSync ?? FSYNC_EACH_FILE, signal: this.hardStop.signal, softSignal: this.softStop.signal },
      {
        move: (item, write) => this.move(item, write),
        backToService: (item) => this.startAtService(item),
        serviceIdle: () => this.atService.size === 0,
      },
    );
    // Every wait and request listens to these: hundreds at once is normal here.
    setMaxListeners(0, this.hardStop.signal, this.softStop.signal);
  }

  /** Stop taking new work. `hard`: also abort waits and requests in progress (a signal). */
  stop(reason: StopReason, hard = false): void {
    if (!this.stopReason) {
      this.stopReason = reason;
      this.log.info({ reason }, `stopping: ${reason}`);
    }
    if (!this.softStop.signal.aborted) this.softStop.abort(new DOMException("run stopping", "AbortError"));
    if (hard && !this.hardStop.signal.aborted) this.hardStop.abort(new DOMException("run stopped", "AbortError"));
    this.wake();
  }

  async run(): Promise<RunSummary> {
    const leases = setInterval(() => {
      this.store.renewLeases(this.deps.worker, this.leaseUntil()).catch((error: unknown) => this.log.warn({ err: errorMessage(error) }, `leases not renewed: ${errorMessage(error)}`));
      // In a shared run, items whose worker died (lease run out) are taken over: within lease + this sweep.
      if (this.store.sharesRuns && !this.stopReason) this.resumeInFlight().catch((error: unknown) => this.onDriverCrash(null, error));
    }, this.options.leaseMs / 3);
    leases.unref();
    this.peers.listen(() => this.wake());
    try {
      await this.resumeInFlight();
      for (;;) {
        this.wakeSignal.startTurn();
        if (!this.stopReason) this.checkDeadline();
        if (!this.stopReason) await this.fillSlots();
        const busy = this.atService.size + this.inImageStage.size + this.held.size;
        if (busy === 0) {
          if (this.stopReason) break;
          const next = await this.store.earliestQueuedAt();
          if (next === null) {
            // A shared run's worker stays while others still work: it takes over a dead one's items.
            if (!(await this.peers.othersAtWork(this.options.roles.deliver))) break;
            // Looks again soon: it ends with the others, or takes up what they hand on or leave.
            await this.waitForChange(Math.min(SHARED_CLAIM_RETRY_MS, this.options.leaseMs / 4));
            await this.resumeInFlight();
            continue;
          }
          await this.waitForChange(this.untilDue(next));
          continue;
        }
        // A shared run's worker with items at the service asks again after its pause whenever the next is due (untilDue), and sooner as they leave.
        const next = this.slotsFree() === 0 ? null : this.store.sharesRuns && this.atService.size > 0 ? this.now() : await this.store.earliestQueuedAt();
        await this.waitForChange(next === null ? null : this.untilDue(next));
      }
    } catch (error) {
      this.onDriverCrash(null, error);
    }
    await Promise.allSettled([...this.atService.values(), ...this.inImageStage.values(), ...this.held]);
    clearInterval(leases);
    try {
      // Items left in flight (a stop) are free for the next run to claim.
      await this.store.releaseClaims(this.deps.worker);
      await this.store.flush();
    } catch (error) {
      // Also a group that failed at the end of a turn with no write after it.
      this.fatal ??= error instanceof FatalRunError ? error : new FatalRunError(`the job database could not commit: ${errorMessage(error)}`, "DB_COMMIT_FAILED", 3, { cause: error });
    }
    // Workers waiting for this one's items end (or take them up) now, not at their next look.
    await this.peers.leave();
    if (this.fatal && !this.stopReason) this.stopReason = "fatal";
    this.summary.stopReason = this.stopReason;
    this.summary.fatal = this.fatal;
    return this.summary;
  }

  /** Keeps the run open until `work` settles (its failure is logged, never the run's). */
  holdOpen(work: Promise<void>, what: string): void {
    const held = work
      .catch((error: unknown) => this.log.warn({ err: errorMessage(error) }, `${what} did not finish: ${errorMessage(error)}`))
      .finally(() => {
        this.held.delete(held);
        this.wake();
      });
    this.held.add(held);
  }

  /** Done items whose image is gone (or changed), and missing ones: each read from its job again, no submit. */
  async deliverAgain(items: readonly { id: number; detail: string }[]): Promise<void> {
    if (!this.options.roles.deliver) return;
    for (const { id, detail } of items) {
      if (this.stopReason) return;
      const item = await this.store.claimAtRest(id, this.deps.worker, this.now(), this.leaseUntil());
      if (!item) continue;
      this.startImageStage(await this.move(item, { to: "downloading", set: { resultUrl: null, nextAttemptAt: 0 }, note: `${detail}: delivering it again from its job (no new submit)` }), null);
    }
  }

  /** Until a queued item is due. In a shared run, a due one this worker could not claim (another's, the cap full) is asked for after a pause: longer while its own items at the service wake it as they leave. */
  private untilDue(next: number): number {
    if (!this.store.sharesRuns) return Math.max(next - this.now(), 0);
    return Math.max(next - this.now(), this.atService.size > 0 ? SHARED_BUSY_CLAIM_RETRY_MS : SHARED_CLAIM_RETRY_MS);
  }

  private leaseUntil(): number {
    return this.now() + this.options.leaseMs;
  }

  // ---- scheduling ------------------------------------------------------------------

  /** Items a stopped or killed run left on their way: claimed, and taken up where the row says they stood. */
  private async resumeInFlight(): Promise<void> {
    const { submit, deliver } = this.options.roles;
    const states = submit && deliver ? undefined : submit ? (["submitting", "running"] as const) : (["downloading"] as const);
    for (const item of await this.store.claimInFlight(this.deps.worker, this.now(), this.leaseUntil(), states)) {
      // Held here already (a renewal that failed let its lease run out): its driver goes on.
      if (this.atService.has(item.id) || this.inImageStage.has(item.id)) continue;
      if (item.state === "downloading") {
        this.startImageStage(item, item.resultUrl ? { kind: "url", url: item.resultUrl } : null);
        continue;
      }
      this.log.debug({ item: item.key, state: item.state }, `resuming ${item.key} (${item.state}${item.jobId ? `, job ${item.jobId}` : ""})`);
      // Its next read when the row says, but no later than this run's own poll interval.
      this.startAtService(item.state === "running" ? { ...item, nextAttemptAt: Math.min(item.nextAttemptAt, this.now() + this.options.pollIntervalMs) } : item);
    }
  }

  private async fillSlots(): Promise<void> {
    if (!this.options.roles.submit) return;
    while (this.slotsFree() > 0 && !this.stopReason) {
      // A shared run's --concurrency bounds every worker's items at the service together.
      const asked = this.slotsFree();
      const batch = await this.store.claimQueued(this.deps.worker, this.now(), asked, this.leaseUntil(), this.store.sharesRuns ? this.options.concurrency : undefined);
      for (const item of batch) {
        if (this.atService.has(item.id)) continue;
        if (this.wouldPassCreditCap(item)) {
          this.stop("credits");
          return;
        }
        this.startAtService(item);
      }
      // Fewer than asked: none more is due now, or the shared cap is full; asking again at once finds none.
      if (batch.length < asked) return;
    }
  }

  /**
   * Submits that may start now: free slots at the service, but none while the image stage holds
   * a full wave of finished jobs (else they pile up without bound when the service outpaces it,
   * each URL aging). Items whose files only wait for their sync are not backlog.
   */
  private slotsFree(): number {
    const imageBacklog = this.inImageStage.size - this.imageStage.landing - this.options.downloadConcurrency;
    if (imageBacklog >= this.options.concurrency) return 0;
    return this.options.concurrency - this.atService.size;
  }

  private wouldPassCreditCap(item: ItemRecord): boolean {
    if (this.options.maxCredits === null) return false;
    return this.summary.creditsThisRun + this.inFlightCredits + priceOf(item) > this.options.maxCredits + 1e-9;
  }

  private checkDeadline(): void {
    if (this.options.stopSubmittingAt !== null && this.now() >= this.options.stopSubmittingAt) this.stop(this.options.stopSubmittingReason ?? "deadline");
  }

  private startAtService(item: ItemRecord): void {
    const price = priceOf(item);
    this.inFlightCredits += price;
    const task = this.serviceSide.drive(item)
      .catch((error: unknown) => this.onDriverCrash(item, error))
      .finally(() => {
        this.inFlightCredits -= price;
        this.atService.delete(item.id);
        this.wake();
      });
    this.atService.set(item.id, task);
  }

  /** A finished job: delivered here, or (a worker that only submits) handed on to a delivering worker. */
  private toImageStage(item: ItemRecord, image: ImageSource | null): void {
    if (this.options.roles.deliver) return this.startImageStage(item, image);
    // Handed over once (a poll hands it on, then its driver sees it downloading).
    if (this.handedOn.has(item.id)) return;
    this.handedOn.add(item.id);
    this.store.releaseItem(item).then(() => this.wake(), (error: unknown) => this.onDriverCrash(item, error));
  }

  private startImageStage(item: ItemRecord, image: ImageSource | null): void {
    if (this.inImageStage.has(item.id)) return;
    const task = this.imageStage.deliver(item, image)
      .catch((error: unknown) => this.onDriverCrash(item, error))
      .finally(() => {
        this.inImageStage.delete(item.id);
        this.wake();
      });
    this.inImageStage.set(item.id, task);
  }

  private onDriverCrash(item: ItemRecord | null, error: unknown): void {
    const key = item?.key ?? "the run";
    if (error instanceof ClaimLostError) {
      // Another worker (or a later claim) works this item now: this one lets it go.
      this.log.warn({ item: item?.key }, error.message);
      return;
    }
    const failure = classifyFailure(error);
    if (failure.kind === "fatal") {
      if (!this.fatal) {
        this.fatal = failure.error;
        this.log.error({ item: item?.key, code: failure.error.code }, failure.error.message);
      }
      // Soft: images already made are paid for, so their downloads finish.
      this.stop("fatal");
      return;
    }
    if (failure.kind === "aborted") return;
    // A bug or an unexpected state: stop cleanly rather than loop on it.
    this.log.error({ item: item?.key, err: errorMessage(error) }, `internal error on ${key}: ${errorMessage(error)}`);
    if (!this.fatal) this.fatal = new FatalRunError(`internal error on ${key}: ${errorMessage(error)}`, "INTERNAL", 3, { cause: error });
    this.stop("fatal", true);
  }

  private wake(): void {
    this.wakeSignal.wake();
  }

  private waitForChange(timeoutMs: number | null): Promise<void> {
    const deadlineIn = this.options.stopSubmittingAt === null || this.stopReason ? null : this.options.stopSubmittingAt - this.now();
    return this.wakeSignal.wait([timeoutMs, deadlineIn]);
  }

  /** Every write of the run's drivers: a paid image is never re-queued or failed (keepPaidImage), and moves are counted. */
  private async move(item: ItemRecord, asked: ItemWrite): Promise<ItemRecord> {
    const write = keepPaidImage(item, asked);
    const updated = await this.store.write(item, write);
    const to = updated.state;
    if (to === item.state) return updated;
    const detail = write.note ?? null;
    this.gate.noted(updated);
    if (to === "done") this.summary.doneThisRun++;
    if (to === "failed") this.summary.failedThisRun++;
    if (this.log.isLevelEnabled("debug")) this.log.debug({ item: item.key, from: item.state, to, detail }, `${item.key}: ${item.state} → ${to}${detail ? ` (${detail})` : ""}`);
    this.deps.onTransition?.({ item: updated, from: item.state, to, detail });
    return updated;
  }
}
