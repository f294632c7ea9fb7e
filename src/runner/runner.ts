// The scheduler: walks items through queued → submitting → running → downloading → done
// with at most `concurrency` of them at the service, retries as data, and a stop that always
// leaves the database consistent. Here: the slots and each item's service side (submit, poll,
// lost-submit looks, decided by lost-submit.ts). The key's rate, throttling and lost-submit
// searches are in service-gate.ts; downloads and image work in image-stage-driver.ts.
import { setMaxListeners } from "node:events";
import { FatalRunError, InternalError, errorMessage } from "../errors.js";
import type { Downloader } from "../assets/download.js";
import type { OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import { MODEL_SPECS } from "../providers/catalog.js";
import { INSUFFICIENT_CREDITS, type ImageSource, type JobState, type Provider } from "../providers/provider.js";
import type { Store } from "../store/store.js";
import type { ItemState } from "../store/states.js";
import type { ItemPatch, ItemRecord } from "../store/types.js";
import type { RunnerOptions } from "./options.js";
import { backoffDelayMs, canRetry, classifyFailure, originAnswered } from "./retry-policy.js";
import { ImageStageDriver } from "./image-stage-driver.js";
import { nextLostSubmitStep } from "./lost-submit.js";
import { PollSchedule } from "./poll-schedule.js";
import { ServiceGate } from "./service-gate.js";
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
  return item.provider === "local" ? 0 : MODEL_SPECS[item.request.model].creditsPerImage;
}

export class Runner {
  private readonly store: Store;
  private readonly provider: Provider;
  private readonly options: RunnerOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly gate: ServiceGate;
  /** Spreads polls evenly over the poll interval instead of sending them in bursts. */
  private readonly pollPacer: TokenBucket;
  private readonly pollSchedule: PollSchedule;
  /** Reads of each running job so far in this process (a resumed job starts again at 0). */
  private readonly pollsSoFar = new Map<number, number>();
  /** Consecutive failed reads of each running job, for the backoff of the next read. */
  private readonly pollFailures = new Map<number, number>();
  /** Lost submits whose last look found nothing: a second look must agree before paying again. */
  private readonly foundNothingOnce = new Set<number>();
  private readonly imageStage: ImageStageDriver;
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
    this.gate = new ServiceGate(this.provider, this.store, this.options, this.log, this.now);
    const pollFloorMs = Math.max(10, this.options.pollIntervalMs / 20);
    this.pollSchedule = new PollSchedule({ intervalMs: this.options.pollIntervalMs, floorMs: pollFloorMs });
    // At most `concurrency` polls per floor interval, evenly spaced: no bursts, and no queue.
    const pollsPerMinute = this.options.pollIntervalMs > 0 ? (this.options.concurrency * 60_000) / pollFloorMs : 0;
    this.pollPacer = new TokenBucket(pollsPerMinute, 1, this.now);
    this.imageStage = new ImageStageDriver(
      { ...deps, gate: this.gate, options: this.options, log: this.log, now: this.now, random: this.random, signal: this.hardStop.signal },
      {
        move: (item, to, patch, detail) => this.move(item, to, patch, detail),
        retryOrFail: (item, code, message) => this.retryOrFail(item, code, message),
        backToService: (item) => this.startAtService(item),
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
      const next = this.atService.size < this.options.concurrency ? this.store.earliestQueuedAt() : null;
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
    while (this.atService.size < this.options.concurrency && !this.stopReason) {
      const batch = this.store.nextQueued(this.now(), this.options.concurrency - this.atService.size, new Set(this.atService.keys()));
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
    const task = this.imageStage.deliver(item, image)
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
    this.gate.noted(updated);
    if (to === "done") this.summary.doneThisRun++;
    if (to === "failed") this.summary.failedThisRun++;
    // Four transitions per item: the message is only built when someone reads it.
    if (this.log.isLevelEnabled("debug")) this.log.debug({ item: item.key, from: item.state, to, detail }, `${item.key}: ${item.state} → ${to}${detail ? ` (${detail})` : ""}`);
    this.deps.onTransition?.({ item: updated, from: item.state, to, detail });
    return updated;
  }

  private async submit(queued: ItemRecord): Promise<ItemRecord> {
    const signal = this.hardStop.signal;
    try {
      await this.gate.take(this.softStop.signal);
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
      const { jobId } = await this.gate.send(this.provider.submit(item.request, signal));
      item = this.move(item, "running", { jobId, nextAttemptAt: this.now() + this.pollSchedule.firstReadMs(item.request.model) }, `job ${jobId}`);
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
        // Refused, so nothing was made: the attempt is not counted.
        const delayMs = this.gate.retryAfterMs(failure.retryAfterMs);
        return this.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: this.now() + delayMs }, `throttled (429): submitting again in ${delayMs} ms`);
      }
      case "retryable":
        if ((error as { maybeCreated?: boolean }).maybeCreated) {
          // An answer from the service itself (500, 503) means it is done with the request:
          // a job it made is listed now. After a timeout, a reset or a gateway's 502/504 it
          // may still be making one, so the first look waits a poll interval.
          return this.store.note(item, `submit response lost (${failure.code}): reconcile before submitting again`, {
            nextAttemptAt: this.now() + (originAnswered(failure.code) ? 0 : this.options.pollIntervalMs),
            errorCode: failure.code,
            errorMessage: failure.message,
          });
        }
        return this.retryOrFail(item, failure.code, failure.message);
      case "permanent":
        return this.move(item, "failed", { errorCode: failure.code, errorMessage: failure.message }, failure.message);
    }
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
      const search = await this.gate.findLostJob(item, { signal, tokenSignal: this.softStop.signal });
      const next = nextLostSubmitStep(search, {
        waitedMs: this.now() - (item.submittedAt ?? 0),
        foundNothingBefore: this.foundNothingOnce.has(item.id),
        originAnswered: originAnswered(item.errorCode),
        jobRunsMs: this.pollSchedule.delayMs(item.request.model, 0),
        reconcileWindowMs: this.options.reconcileWindowMs,
      });
      if (search.found === "none" && next.step === "look-again") this.foundNothingOnce.add(item.id);
      else this.foundNothingOnce.delete(item.id);
      if (next.step === "look-again") return this.store.note(item, next.detail, { nextAttemptAt: this.now() + next.afterMs });
      if (next.step === "submit-again") return this.retryAfterReconcile(item, next.detail);
      if (search.found !== "image") throw new InternalError(`adopting without an image (${search.found})`);
      // Paid like a polled completion: it counts toward this run's credits (and --max-credits).
      this.summary.creditsThisRun += priceOf(item);
      const patch = { imageRef: search.imageRef, jobId: search.jobId, resultUrl: search.url, resultWidth: search.width, resultHeight: search.height, nextAttemptAt: 0 };
      // The image list carries no price: the model's is what the service charged.
      return this.move(item, "downloading", { ...patch, credits: priceOf(item) }, next.detail);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      if (failure.kind === "permanent") {
        // The listings themselves are refused: submitting again might pay twice, so stop here
        // and let a person decide (imgbatch retry resubmits).
        return this.move(item, "failed", { errorCode: "RECONCILE_FAILED", errorMessage: `could not check whether the lost submit made an image: ${failure.message}` }, failure.code);
      }
      const delayMs = failure.kind === "throttled" ? this.gate.retryAfterMs(failure.retryAfterMs) : backoffDelayMs(2, this.options, this.random) + 250;
      return this.store.update(item, { nextAttemptAt: this.now() + delayMs });
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
      await this.gate.take(this.softStop.signal);
      job = await this.gate.send(this.provider.getJob({ jobId: item.jobId!, request: item.request }, signal));
      this.pollFailures.delete(item.id);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      // A read is free and changes nothing: after a 5xx or a reset it is tried again soon,
      // backing off while the failures go on (an outage is not hammered).
      const failures = (this.pollFailures.get(item.id) ?? 0) + 1;
      this.pollFailures.set(item.id, failures);
      const delayMs = failure.kind === "throttled" ? this.gate.retryAfterMs(failure.retryAfterMs) : backoffDelayMs(failures, this.options, this.random);
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
        return this.later(item, this.pollSchedule.delayMs(item.request.model, polls + 1, this.now() - (item.submittedAt ?? this.now())));
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
}
