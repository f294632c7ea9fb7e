// The scheduler: walks items through queued → submitting → running → downloading → done
// with at most `concurrency` of them at the service, one token bucket over all requests,
// retries as data, and a stop that always leaves the database consistent.
import { setMaxListeners } from "node:events";
import pLimit from "p-limit";
import { FatalRunError, errorMessage } from "../errors.js";
import type { Downloader } from "../assets/download.js";
import { ResultUrlExpiredError } from "../assets/download.js";
import type { OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import { type ImageModel, MODEL_SPECS } from "../providers/catalog.js";
import { INSUFFICIENT_CREDITS, type ImageSource, type JobState, type Provider, type ProviderName } from "../providers/provider.js";
import type { Store } from "../store/store.js";
import type { ItemState } from "../store/states.js";
import type { ItemPatch, ItemRecord } from "../store/types.js";
import { deliverItemImage } from "./deliver-item.js";
import type { RunnerOptions } from "./options.js";
import { backoffDelayMs, canRetry, classifyFailure } from "./retry-policy.js";
import { PollSchedule } from "./poll-schedule.js";
import { sleepMs } from "./sleep.js";
import { TokenBucket } from "./token-bucket.js";

export type StopReason = "signal" | "deadline" | "max-runtime" | "credits" | "fatal" | "service-unreachable";

export interface RunSummary {
  stopReason: StopReason | null;
  fatal: FatalRunError | null;
  creditsThisRun: number;
  doneThisRun: number;
  failedThisRun: number;
}

export interface TransitionEvent {
  item: ItemRecord;
  from: ItemState;
  to: ItemState;
  detail: string | null;
}

export interface RunnerDeps {
  store: Store;
  provider: Provider;
  downloader: Downloader;
  layout: OutputLayout;
  logger: Logger;
  options: RunnerOptions;
  now?: () => number;
  random?: () => number;
  onTransition?: (event: TransitionEvent) => void;
}

/** Price of one image at the service, for the credit cap. The local renderer is free. */
export function priceOf(item: ItemRecord): number {
  return priceOfModel(item.provider, item.request.model);
}

export function priceOfModel(provider: ProviderName, model: ImageModel): number {
  return provider === "local" ? 0 : MODEL_SPECS[model].creditsPerImage;
}

export class Runner {
  private readonly store: Store;
  private readonly provider: Provider;
  private readonly options: RunnerOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly bucket: TokenBucket;
  /** Spreads polls evenly over the poll interval instead of sending them in bursts. */
  private readonly pollPacer: TokenBucket;
  private readonly pollSchedule: PollSchedule;
  /** Reads of each running job so far in this process (a resumed job starts again at 0). */
  private readonly pollsSoFar = new Map<number, number>();
  /** Lost submits whose last look found nothing: a second look must agree before paying again. */
  private readonly foundNothingOnce = new Set<number>();
  /**
   * The claimed refs of each reconcile look in progress. A job this process learns of while a
   * look pages through the listings is claimed for that look too; otherwise every submit
   * answered during a look reads as "a job of unknown owner still in progress", and in a busy
   * run a lost submit waits until the run goes quiet (measured in the chaos test).
   */
  private readonly openLooks = new Set<Set<string>>();
  private readonly imagePool: ReturnType<typeof pLimit>;
  private readonly atService = new Map<number, Promise<void>>();
  private readonly inImageStage = new Map<number, Promise<void>>();
  /** Aborted by a hard stop (signal): sleeps and requests end at once. */
  private readonly hardStop = new AbortController();
  /**
   * Aborted by any stop: waits before a submit, poll or reconcile end, requests already
   * sent finish. The image stage goes on (those images are paid for), unless hard-stopped.
   */
  private readonly softStop = new AbortController();
  private stopReason: StopReason | null = null;
  private fatal: FatalRunError | null = null;
  private wakeMain: (() => void) | null = null;
  private inFlightCredits = 0;
  private readonly summary: RunSummary = { stopReason: null, fatal: null, creditsThisRun: 0, doneThisRun: 0, failedThisRun: 0 };

  constructor(private readonly deps: RunnerDeps) {
    this.store = deps.store;
    this.provider = deps.provider;
    this.options = deps.options;
    this.log = deps.logger;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.bucket = new TokenBucket(this.options.rpm, 1, this.now);
    const pollFloorMs = Math.max(10, this.options.pollIntervalMs / 20);
    this.pollSchedule = new PollSchedule({ intervalMs: this.options.pollIntervalMs, floorMs: pollFloorMs });
    // At most `concurrency` polls per floor interval, evenly spaced: no bursts, and no queue.
    const pollsPerMinute = this.options.pollIntervalMs > 0 ? (this.options.concurrency * 60_000) / pollFloorMs : 0;
    this.pollPacer = new TokenBucket(pollsPerMinute, 1, this.now);
    this.imagePool = pLimit(Math.max(1, this.options.downloadConcurrency));
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

  get stopped(): StopReason | null {
    return this.stopReason;
  }

  async run(): Promise<RunSummary> {
    this.resumeInFlight();
    for (;;) {
      if (!this.stopReason) this.checkDeadline();
      if (!this.stopReason) this.fillSlots();
      const busy = this.atService.size + this.inImageStage.size;
      if (busy === 0) {
        if (this.stopReason) break;
        const next = this.store.earliestQueuedAt();
        if (next === null) break;
        await this.waitForChange(next - this.now());
        continue;
      }
      const next = this.slotsFree() > 0 ? this.store.earliestQueuedAt() : null;
      await this.waitForChange(next === null ? null : next - this.now());
    }
    await Promise.allSettled([...this.atService.values(), ...this.inImageStage.values()]);
    this.summary.stopReason = this.stopReason;
    this.summary.fatal = this.fatal;
    return this.summary;
  }

  // ---- scheduling ------------------------------------------------------------------

  private resumeInFlight(): void {
    for (const item of this.store.inStates(["submitting", "running"])) {
      this.log.debug({ item: item.key, state: item.state }, `resuming ${item.key} (${item.state}${item.jobId ? `, job ${item.jobId}` : ""})`);
      // A running job is read at once (paced): the next read time stored at submit belongs to
      // the stopped run and its poll interval, and the job may long have finished.
      this.startAtService(item.state === "running" ? { ...item, nextAttemptAt: Math.min(item.nextAttemptAt, this.now()) } : item);
    }
    for (const item of this.store.inStates(["downloading"])) {
      this.startImageStage(item, item.resultUrl ? { kind: "url", url: item.resultUrl } : null);
    }
  }

  private fillSlots(): void {
    while (this.slotsFree() > 0 && !this.stopReason) {
      const batch = this.store.nextQueued(this.now(), this.slotsFree(), new Set(this.atService.keys()));
      if (batch.length === 0) return;
      for (const item of batch) {
        if (this.wouldPassCreditCap(item)) {
          this.stop("credits");
          return;
        }
        this.startAtService(item);
      }
    }
  }

  /**
   * Submits that may start now: free slots at the service, but none while the image stage
   * already holds a full wave of finished jobs. When the service outpaces downloads and
   * thumbnails, finished jobs would otherwise pile up without bound (3,800 of 5,000 at zero
   * latency, measured), each holding its record, promises and a result URL that may expire
   * while it waits. The stage still always has work, so throughput is the stage's own.
   */
  private slotsFree(): number {
    const imageBacklog = this.inImageStage.size - this.options.downloadConcurrency;
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
    const task = this.driveAtService(item)
      .catch((error: unknown) => this.onDriverCrash(item, error))
      .finally(() => {
        this.inFlightCredits -= price;
        this.atService.delete(item.id);
        this.wake();
      });
    this.atService.set(item.id, task);
  }

  private startImageStage(item: ItemRecord, image: ImageSource | null): void {
    if (this.inImageStage.has(item.id)) return;
    const task = this.deliver(item, image)
      .catch((error: unknown) => this.onDriverCrash(item, error))
      .finally(() => {
        this.inImageStage.delete(item.id);
        this.wake();
      });
    this.inImageStage.set(item.id, task);
  }

  private onDriverCrash(item: ItemRecord, error: unknown): void {
    const failure = classifyFailure(error);
    if (failure.kind === "fatal") {
      if (!this.fatal) {
        this.fatal = failure.error;
        this.log.error({ item: item.key, code: failure.error.code }, failure.error.message);
      }
      // Soft: images already made are paid for, so their downloads finish.
      this.stop("fatal");
      return;
    }
    if (failure.kind === "aborted") return;
    // A bug or an unexpected state: stop cleanly rather than loop on it.
    this.log.error({ item: item.key, err: errorMessage(error) }, `internal error on ${item.key}: ${errorMessage(error)}`);
    if (!this.fatal) this.fatal = new FatalRunError(`internal error on ${item.key}: ${errorMessage(error)}`, "INTERNAL", 3, { cause: error });
    this.stop("fatal", true);
  }

  private wake(): void {
    const wake = this.wakeMain;
    this.wakeMain = null;
    wake?.();
  }

  private waitForChange(timeoutMs: number | null): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const deadlineIn = this.options.stopSubmittingAt === null || this.stopReason ? null : this.options.stopSubmittingAt - this.now();
      const waits = [timeoutMs, deadlineIn].filter((t): t is number => t !== null);
      this.wakeMain = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      if (waits.length > 0) timer = setTimeout(() => this.wake(), Math.max(0, Math.min(...waits)));
    });
  }

  // ---- one item at the service ----------------------------------------------------

  private async driveAtService(start: ItemRecord): Promise<void> {
    let item = start;
    for (;;) {
      if (this.hardStop.signal.aborted) return;
      switch (item.state) {
        case "queued":
          if (this.stopReason) return;
          item = await this.submit(item);
          if (item.state === "queued") return; // waits for its backoff outside the slot
          break;
        case "submitting":
          if (this.stopReason) return;
          item = await this.reconcile(item);
          break;
        case "running":
          if (this.stopReason) return;
          item = await this.poll(item);
          break;
        case "downloading":
          // Polls hand their bytes over themselves; a reconciled submit arrives with a URL.
          this.startImageStage(item, item.resultUrl ? { kind: "url", url: item.resultUrl } : null);
          return;
        case "done":
        case "failed":
          return;
      }
    }
  }

  private move(item: ItemRecord, to: ItemState, patch: ItemPatch, detail: string | null): ItemRecord {
    const updated = this.store.transition(item, to, patch, detail);
    for (const look of this.openLooks) {
      if (updated.jobId) look.add(updated.jobId);
      if (updated.imageRef) look.add(updated.imageRef);
    }
    if (to === "done") this.summary.doneThisRun++;
    if (to === "failed") this.summary.failedThisRun++;
    this.log.debug({ item: item.key, from: item.state, to, detail }, `${item.key}: ${item.state} → ${to}${detail ? ` (${detail})` : ""}`);
    this.deps.onTransition?.({ item: updated, from: item.state, to, detail });
    return updated;
  }

  private async submit(queued: ItemRecord): Promise<ItemRecord> {
    const signal = this.hardStop.signal;
    try {
      await this.bucket.take(this.softStop.signal);
    } catch {
      return queued;
    }
    // The wait for a token (a throttled provider) may have run past the deadline.
    this.checkDeadline();
    if (this.stopReason) return queued;
    const attempt = queued.attempts + 1;
    // Committed before the request is sent: a crash from here on leaves `submitting`,
    // which the next run reconciles instead of paying again.
    let item = this.move(queued, "submitting", { attempts: attempt, submittedAt: this.now(), errorCode: null, errorMessage: null }, `attempt ${attempt} of ${this.options.maxAttempts}`);
    try {
      const { jobId } = await this.provider.submit(item.request, signal);
      item = this.move(item, "running", { jobId, nextAttemptAt: this.now() + this.pollSchedule.delayMs(item.request.model, 0) }, `job ${jobId}`);
      return item;
    } catch (error) {
      return this.afterSubmitFailure(item, error);
    }
  }

  private afterSubmitFailure(item: ItemRecord, error: unknown): ItemRecord {
    const failure = classifyFailure(error);
    switch (failure.kind) {
      case "aborted":
        // The request may or may not have left: `submitting` stays, the next run reconciles.
        return item;
      case "fatal":
        // A refusal for the whole account (bad key, no credits): nothing was created, and
        // the item is not at fault, so it goes back to the queue with its attempt returned.
        this.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: 0 }, `${failure.error.code}: ${failure.error.message}`);
        throw failure.error;
      case "throttled": {
        const until = this.pauseProvider(failure.retryAfterMs);
        return this.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: until }, `throttled (429): provider paused until ${new Date(until).toISOString()}`);
      }
      case "retryable":
        if ((error as { maybeCreated?: boolean }).maybeCreated) {
          return this.store.note(item, `submit response lost (${failure.code}): reconcile before submitting again`, {
            nextAttemptAt: this.now() + this.options.pollIntervalMs,
            errorCode: failure.code,
            errorMessage: failure.message,
          });
        }
        return this.retryOrFail(item, failure.code, failure.message);
      case "permanent":
        return this.move(item, "failed", { errorCode: failure.code, errorMessage: failure.message }, failure.message);
    }
  }

  private pauseProvider(retryAfterMs: number | null): number {
    const until = this.now() + (retryAfterMs ?? this.options.throttleFallbackMs);
    this.bucket.pauseUntil(until);
    this.log.warn({ retryAfterMs }, `provider throttled (429): pausing all requests for ${Math.round((until - this.now()) / 100) / 10} s`);
    return until;
  }

  private retryOrFail(item: ItemRecord, code: string, message: string): ItemRecord {
    if (!canRetry(item.attempts, this.options)) {
      return this.move(item, "failed", { errorCode: code, errorMessage: `${message} (after ${item.attempts} attempts)` }, message);
    }
    const delayMs = backoffDelayMs(item.attempts, this.options, this.random);
    return this.move(item, "queued", { nextAttemptAt: this.now() + delayMs, errorCode: code, errorMessage: message, jobId: null }, `${code}: retry in ${delayMs} ms`);
  }

  /** A submit whose response was lost: find its job before deciding to pay again. */
  private async reconcile(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.hardStop.signal;
    try {
      await sleepMs(item.nextAttemptAt - this.now(), this.softStop.signal);
      const claimed = this.store.claimedRefs();
      this.openLooks.add(claimed);
      // Every listing page takes a token: a search may page through dozens (--rpm holds).
      const takeToken = () => this.bucket.take(this.softStop.signal);
      const search = await this.provider.findLostJob(item.request, item.submittedAt ?? 0, claimed, signal, takeToken).finally(() => this.openLooks.delete(claimed));
      switch (search.found) {
        case "image":
          this.foundNothingOnce.delete(item.id);
          // Paid like a polled completion: it counts toward this run's credits (and --max-credits).
          this.summary.creditsThisRun += priceOf(item);
          return this.move(
            item,
            "downloading",
            {
              imageRef: search.imageRef,
              jobId: search.jobId,
              resultUrl: search.url,
              resultWidth: search.width,
              resultHeight: search.height,
              // The image list carries no price: the model's is what the service charged.
              credits: priceOf(item),
              nextAttemptAt: 0,
            },
            `reconciled: adopted image ${search.imageRef}${search.jobId ? ` (job ${search.jobId})` : ""} made by the lost submit`,
          );
        case "pending": {
          this.foundNothingOnce.delete(item.id);
          const waited = this.now() - (item.submittedAt ?? 0);
          if (waited < this.options.reconcileWindowMs) {
            // An unknown job runs about as long as the model's jobs do: look again then,
            // not sooner (each look pages through two listings).
            const againMs = Math.max(250, this.pollSchedule.delayMs(item.request.model, 0));
            return this.store.note(item, `reconcile: ${search.detail}; looking again later`, { nextAttemptAt: this.now() + againMs });
          }
          return this.retryAfterReconcile(item, `reconcile: nothing matched after ${Math.round(waited / 1000)} s (${search.detail}); unreconcilable, submitting again`);
        }
        case "none":
          // A create the service took late (our side timed out first) shows in no listing
          // yet: a second, later look must agree before paying again.
          if (!this.foundNothingOnce.has(item.id)) {
            this.foundNothingOnce.add(item.id);
            const againMs = Math.max(250, this.pollSchedule.delayMs(item.request.model, 0));
            return this.store.note(item, `reconcile: ${search.detail}; looking once more before submitting again`, { nextAttemptAt: this.now() + againMs });
          }
          this.foundNothingOnce.delete(item.id);
          return this.retryAfterReconcile(item, `reconcile: ${search.detail}; the submit created nothing, submitting again`);
      }
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      if (failure.kind === "permanent") {
        // The listings themselves are refused: submitting again might pay twice, so stop here
        // and let a person decide (imgbatch retry resubmits).
        return this.move(item, "failed", { errorCode: "RECONCILE_FAILED", errorMessage: `could not check whether the lost submit made an image: ${failure.message}` }, failure.code);
      }
      if (failure.kind === "throttled") this.pauseProvider(failure.retryAfterMs);
      return this.store.update(item, { nextAttemptAt: this.now() + backoffDelayMs(2, this.options, this.random) + 250 });
    }
  }

  private retryAfterReconcile(item: ItemRecord, detail: string): ItemRecord {
    if (!canRetry(item.attempts, this.options)) {
      return this.move(item, "failed", { errorCode: item.errorCode ?? "SUBMIT_LOST", errorMessage: `${item.errorMessage ?? "submit response lost"} (after ${item.attempts} attempts)` }, detail);
    }
    return this.move(item, "queued", { nextAttemptAt: this.now() }, detail);
  }

  private async poll(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.hardStop.signal;
    let job: JobState;
    try {
      await sleepMs(item.nextAttemptAt - this.now(), this.softStop.signal);
      await this.pollPacer.take(this.softStop.signal);
      await this.bucket.take(this.softStop.signal);
      job = await this.provider.getJob({ jobId: item.jobId!, request: item.request }, signal);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      const delayMs =
        failure.kind === "throttled"
          ? this.pauseProvider(failure.retryAfterMs) - this.now()
          : backoffDelayMs(3, this.options, this.random) + this.options.pollIntervalMs;
      this.log.debug({ item: item.key, err: errorMessage(error) }, `poll of ${item.key} failed; polling again in ${delayMs} ms`);
      return this.later(item, delayMs);
    }
    return this.afterPoll(item, job);
  }

  /**
   * The next read of a running job, kept in memory only: it needs no checkpoint (a resumed
   * run reads every running job at once), and a commit per poll would cost an fsync each.
   */
  private later(item: ItemRecord, delayMs: number): ItemRecord {
    return { ...item, nextAttemptAt: this.now() + delayMs };
  }

  private afterPoll(item: ItemRecord, job: JobState): ItemRecord {
    const polls = this.pollsSoFar.get(item.id) ?? 0;
    this.pollSchedule.observe(item.request.model, polls, job.status !== "in-progress", this.now() - (item.submittedAt ?? this.now()));
    if (job.status === "in-progress") this.pollsSoFar.set(item.id, polls + 1);
    else this.pollsSoFar.delete(item.id);
    switch (job.status) {
      case "in-progress":
        return this.later(item, this.pollSchedule.delayMs(item.request.model, polls + 1));
      case "completed": {
        this.summary.creditsThisRun += job.credits;
        const updated = this.move(
          item,
          "downloading",
          {
            credits: job.credits,
            imageRef: job.imageRef ?? null,
            resultUrl: job.image.kind === "url" ? job.image.url : null,
            resultWidth: job.width,
            resultHeight: job.height,
            nextAttemptAt: 0,
          },
          `completed at the service (${job.width}×${job.height}, ${job.credits} credits)`,
        );
        this.startImageStage(updated, job.image);
        return updated;
      }
      case "failed":
        if (job.code === INSUFFICIENT_CREDITS) {
          // Not the item's fault: it goes back to the queue, the run stops, resumable.
          this.move(item, "queued", { attempts: item.attempts - 1, jobId: null, nextAttemptAt: 0 }, `${job.code}: ${job.message}`);
          throw new FatalRunError(`the account ran out of AI credits (${job.message}); stopped submitting — top up and run again`, job.code, 3);
        }
        if (job.retryable) return this.retryOrFail(item, job.code, job.message);
        return this.move(item, "failed", { errorCode: job.code, errorMessage: job.message }, `${job.code}: ${job.message}`);
      case "gone":
        return this.retryOrFail(item, job.code, `${job.message}: the service no longer has this job`);
    }
  }

  // ---- the image stage ------------------------------------------------------------

  private async deliver(start: ItemRecord, image: ImageSource | null): Promise<void> {
    let item = start;
    let source = image;
    let refreshes = 0;
    for (let attempt = 1; ; attempt++) {
      if (this.hardStop.signal.aborted) return;
      let readInSlot = false;
      try {
        // Waits (backoff, a throttled provider) happen outside a pool slot, so one flaky
        // download or a 429 never stalls the rest. The job is re-read inside the slot, right
        // before the download: a URL read before waiting for a slot could expire during the
        // wait (hundreds of images may be queued), and a local re-read renders (CPU work).
        if (!source) await sleepMs(this.bucket.pausedUntilMs - this.now(), this.hardStop.signal);
        const delivered = await this.imagePool(async () => {
          if (this.hardStop.signal.aborted) return null;
          if (!source) {
            readInSlot = true;
            source = await this.freshImageSource(item);
          }
          if (!source) return null; // the job went back to the queue or failed
          return deliverItemImage({
            item,
            source,
            downloader: this.deps.downloader,
            layout: this.deps.layout,
            store: this.store,
            options: this.options,
            signal: this.hardStop.signal,
          });
        });
        if (!delivered) return;
        this.move(item, "done", { ...delivered, completedAt: this.now() }, `${delivered.width}×${delivered.height} ${delivered.format}, ${delivered.bytes} bytes`);
        // Per item at debug: people follow the status line or the 30-second summary.
        this.log.debug(
          { item: item.key, provider: item.provider, attempts: item.attempts },
          `done ${item.key} (${item.provider}, ${((this.now() - (item.submittedAt ?? item.createdAt)) / 1000).toFixed(1)} s, attempt ${item.attempts} of ${this.options.maxAttempts})`,
        );
        return;
      } catch (error) {
        // A URL read in this very slot that fails at once is broken, not stale: that fails the item.
        if (error instanceof ResultUrlExpiredError && !readInSlot && refreshes < this.options.maxAttempts) {
          refreshes++;
          source = null;
          this.store.note(item, "result URL expired: reading the job for a fresh one");
          attempt--;
          continue;
        }
        const failure = classifyFailure(error);
        if (failure.kind === "aborted") return;
        if (failure.kind === "fatal") throw failure.error;
        if (failure.kind === "throttled") {
          // Re-reading the job was throttled: the whole provider waits, the attempt is not used.
          this.pauseProvider(failure.retryAfterMs);
          attempt--;
          continue;
        }
        if (failure.kind === "retryable" && attempt < this.options.maxAttempts) {
          const delayMs = backoffDelayMs(attempt, this.options, this.random);
          this.log.debug({ item: item.key, code: failure.code }, `download of ${item.key} failed (${failure.code}); again in ${delayMs} ms`);
          try {
            await sleepMs(delayMs, this.hardStop.signal);
          } catch {
            return;
          }
          continue;
        }
        item = this.move(item, "failed", { errorCode: failure.code, errorMessage: failure.message }, failure.message);
        return;
      }
    }
  }

  /** Reads the job again: after a restart (local bytes are not kept) or when a URL expired. */
  private async freshImageSource(item: ItemRecord): Promise<ImageSource | null> {
    if (item.jobId === null) {
      // An adopted image whose job the job list did not name: its URL comes from the image list.
      const claimed = this.store.claimedRefs();
      if (item.imageRef) claimed.delete(item.imageRef);
      const search = await this.provider.findLostJob(item.request, item.submittedAt ?? 0, claimed, this.hardStop.signal, () => this.bucket.take(this.hardStop.signal));
      if (search.found === "image" && search.imageRef === item.imageRef) {
        this.store.update(item, { resultUrl: search.url });
        return { kind: "url", url: search.url };
      }
      this.move(item, "failed", { errorCode: "RESULT_URL_EXPIRED", errorMessage: "the adopted image's URL expired and the image list no longer offers it" }, null);
      return null;
    }
    await this.bucket.take(this.hardStop.signal);
    const job = await this.provider.getJob({ jobId: item.jobId, request: item.request }, this.hardStop.signal);
    switch (job.status) {
      case "completed":
        if (job.image.kind === "url") this.store.update(item, { resultUrl: job.image.url });
        return job.image;
      case "in-progress":
        this.startAtService(this.move(item, "running", { nextAttemptAt: this.now() + this.options.pollIntervalMs }, "job reads in-progress again"));
        return null;
      case "failed":
      case "gone":
        this.retryOrFail(item, job.code, job.message);
        return null;
    }
  }
}
