// One item's service side: submit, poll, and the looks for a lost submit's job, with the
// retries each needs. The runner owns the slots and the bookkeeping (ServiceSideHost); the
// key's rate and throttling are ServiceGate's; what a look means is lost-submit.ts's.
import { INSUFFICIENT_CREDITS, type ImageSource, type JobState } from "../providers/provider.js";
import type { ItemState } from "../store/states.js";
import type { ItemPatch, ItemRecord } from "../store/types.js";
import { FatalRunError, InternalError, errorMessage } from "../errors.js";
import { nextLostSubmitStep } from "./lost-submit.js";
import type { DriverDeps } from "./options.js";
import { PollSchedule } from "./poll-schedule.js";
import { priceOf } from "./price.js";
import { backoffDelayMs, canRetry, classifyFailure, originAnswered } from "./retry-policy.js";
import { sleepMs } from "./sleep.js";
import { TokenBucket } from "./token-bucket.js";

/** What the service side asks of the runner. */
export interface ServiceSideHost {
  /** Commits a transition with the run's bookkeeping (counts, events, learned refs). */
  move(item: ItemRecord, to: ItemState, patch: ItemPatch, detail: string | null): ItemRecord;
  /** True once the run takes no new work (a stop, or the deadline just passed). */
  stopping(): boolean;
  /** Credits the service charged for an image of this run. */
  paid(credits: number): void;
  /** A finished job's image goes to the image stage (`null`: read the job again first). */
  toImageStage(item: ItemRecord, image: ImageSource | null): void;
}

export interface ServiceSideDeps extends DriverDeps {
  /** Aborted by any stop: waits before a submit, poll or look end. */
  softSignal: AbortSignal;
  /** Aborted by a hard stop: requests in flight end too. */
  hardSignal: AbortSignal;
}

export class ServiceSideDriver {
  /** Spreads polls evenly over the poll interval instead of sending them in bursts. */
  private readonly pollPacer: TokenBucket;
  private readonly pollSchedule: PollSchedule;
  /** Reads of each running job so far in this process (a resumed job starts again at 0). */
  private readonly pollsSoFar = new Map<number, number>();
  /** Consecutive failed reads of each running job: the backoff of the next, and the bound. */
  private readonly pollFailures = new Map<number, number>();
  /** Consecutive failed looks for each lost submit's job: `maxAttempts` of them end the item. */
  private readonly lookFailures = new Map<number, number>();
  /** Lost submits whose last look found nothing: a second look must agree before paying again. */
  private readonly foundNothingOnce = new Set<number>();

  constructor(
    private readonly deps: ServiceSideDeps,
    private readonly host: ServiceSideHost,
  ) {
    const { pollIntervalMs, concurrency } = deps.options;
    const pollFloorMs = Math.max(10, pollIntervalMs / 20);
    this.pollSchedule = new PollSchedule({ intervalMs: pollIntervalMs, floorMs: pollFloorMs });
    // At most `concurrency` polls per floor interval, evenly spaced: no bursts, and no queue.
    const pollsPerMinute = pollIntervalMs > 0 ? (concurrency * 60_000) / pollFloorMs : 0;
    this.pollPacer = new TokenBucket(pollsPerMinute, 1, deps.now);
  }

  /** Drives one item while it is at the service; returns when it leaves (image stage, queue, end). */
  async drive(start: ItemRecord): Promise<void> {
    let item = start;
    for (;;) {
      if (this.deps.hardSignal.aborted) return;
      switch (item.state) {
        case "queued":
          if (this.host.stopping()) return;
          item = await this.submit(item);
          if (item.state === "queued") return; // waits for its backoff outside the slot
          break;
        case "submitting":
          if (this.host.stopping()) return;
          item = await this.reconcile(item);
          break;
        case "running":
          if (this.host.stopping()) return;
          item = await this.poll(item);
          break;
        case "downloading":
          // Polls hand their bytes over themselves; a reconciled submit arrives with a URL.
          this.host.toImageStage(item, item.resultUrl ? { kind: "url", url: item.resultUrl } : null);
          return;
        case "done":
        case "failed":
        case "missing":
          return;
        default: {
          // Every state is handled above: a new one must be added there, or this loop would spin.
          const unhandled: never = item.state;
          throw new InternalError(`no step for an item in state ${String(unhandled)}`);
        }
      }
    }
  }

  private async submit(queued: ItemRecord): Promise<ItemRecord> {
    const signal = this.deps.hardSignal;
    try {
      await this.deps.gate.take(this.deps.softSignal);
    } catch {
      return queued;
    }
    // The wait for a token (a throttled provider) may have run past the deadline.
    if (this.host.stopping()) return queued;
    const attempt = queued.attempts + 1;
    // On disk before the request is sent: a crash from here on leaves `submitting`, which
    // the next run reconciles instead of paying again. The submits of one turn share the fsync.
    let item = this.host.move(queued, "submitting", { attempts: attempt, submittedAt: this.deps.now(), errorCode: null, errorMessage: null }, `attempt ${attempt} of ${this.deps.options.maxAttempts}`);
    await this.deps.store.committed();
    // Stopped while it committed: nothing was sent, so no look at the listings is needed.
    if (this.deps.hardSignal.aborted) return this.host.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: 0 }, "stopped before the submit was sent");
    let jobId: string;
    try {
      ({ jobId } = await this.deps.gate.send(this.deps.provider.submit(item.request, signal)));
    } catch (error) {
      return this.afterSubmitFailure(item, error);
    }
    // Outside the try: a failure to record the job (the database) is no refusal of the
    // submit. It stops the run with `submitting` on disk, which the next run reconciles.
    // A new job: the credits recorded are its own once it completes (a retry's earlier charge is in that run's record).
    return this.host.move(item, "running", { jobId, credits: null, nextAttemptAt: this.deps.now() + this.pollSchedule.firstReadMs(item.request.model) }, `job ${jobId}`);
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
        this.host.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: 0 }, `${failure.error.code}: ${failure.error.message}`);
        throw failure.error;
      case "throttled": {
        // Refused, so nothing was made: the attempt is not counted.
        const delayMs = this.deps.gate.retryAfterMs(failure.retryAfterMs);
        return this.host.move(item, "queued", { attempts: item.attempts - 1, nextAttemptAt: this.deps.now() + delayMs }, `throttled (429): submitting again in ${delayMs} ms`);
      }
      case "retryable":
        if ((error as { maybeCreated?: boolean }).maybeCreated) {
          // An answer from the service itself (500, 503) means it is done with the request:
          // a job it made is listed now. After a timeout, a reset or a gateway's 502/504 it
          // may still be making one, so the first look waits a poll interval.
          return this.deps.store.note(item, `submit response lost (${failure.code}): reconcile before submitting again`, {
            nextAttemptAt: this.deps.now() + (originAnswered(failure.code) ? 0 : this.deps.options.pollIntervalMs),
            errorCode: failure.code,
            errorMessage: failure.message,
          });
        }
        return this.retryOrFail(item, failure.code, failure.message);
      case "permanent":
        return this.host.move(item, "failed", { errorCode: failure.code, errorMessage: failure.message }, failure.message);
    }
  }

  /**
   * Ends a running item whose job could not be followed. Its job id stays in the row: a later
   * `retry` reads that job again (adopting its image if it finished) before paying for another.
   */
  private failKeepingJob(item: ItemRecord, code: "POLL_FAILED" | "JOB_TIMEOUT", reason: string): ItemRecord {
    // attempts 0: a retry already gave this job its second chance (store.requeueFailed); the next retry submits anew.
    if (item.attempts === 0) {
      const message = `${reason}; it was already read again after an earlier failure: \`imgbatch retry\` submits a new job`;
      return this.host.move(item, "failed", { errorCode: code, errorMessage: message, jobId: null }, message);
    }
    const message = `${reason}; the job id is kept: \`imgbatch retry\` reads it again before paying for a new one`;
    return this.host.move(item, "failed", { errorCode: code, errorMessage: message }, message);
  }

  retryOrFail(item: ItemRecord, code: string, message: string): ItemRecord {
    if (!canRetry(item.attempts, this.deps.options)) {
      return this.host.move(item, "failed", { errorCode: code, errorMessage: `${message} (after ${item.attempts} attempts)` }, message);
    }
    const delayMs = backoffDelayMs(item.attempts, this.deps.options, this.deps.random);
    return this.host.move(item, "queued", { nextAttemptAt: this.deps.now() + delayMs, errorCode: code, errorMessage: message, jobId: null }, `${code}: retry in ${delayMs} ms`);
  }

  /** A submit whose response was lost: find its job before deciding to pay again. */
  private async reconcile(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.deps.hardSignal;
    try {
      await sleepMs(item.nextAttemptAt - this.deps.now(), this.deps.softSignal);
      const search = await this.deps.gate.findLostJob(item, { signal, tokenSignal: this.deps.softSignal });
      const next = nextLostSubmitStep(search, {
        waitedMs: this.deps.now() - (item.submittedAt ?? 0),
        foundNothingBefore: this.foundNothingOnce.has(item.id),
        originAnswered: originAnswered(item.errorCode),
        jobRunsMs: this.pollSchedule.delayMs(item.request.model, 0),
        reconcileWindowMs: this.deps.options.reconcileWindowMs,
      });
      this.lookFailures.delete(item.id);
      if (search.found === "none" && next.step === "look-again") this.foundNothingOnce.add(item.id);
      else this.foundNothingOnce.delete(item.id);
      if (next.step === "look-again") return this.deps.store.note(item, next.detail, { nextAttemptAt: this.deps.now() + next.afterMs });
      if (next.step === "submit-again") return this.retryAfterReconcile(item, next.detail);
      if (next.step === "give-up") return this.unreconciled(item, next.detail);
      if (search.found !== "image") throw new InternalError(`adopting without an image (${search.found})`);
      // Paid like a polled completion: it counts toward this run's credits (and --max-credits).
      this.host.paid(priceOf(item));
      const patch = { imageRef: search.imageRef, jobId: search.jobId, resultUrl: search.url, resultWidth: search.width, resultHeight: search.height, nextAttemptAt: 0 };
      // The image list carries no price: the model's is what the service charged.
      return this.host.move(item, "downloading", { ...patch, credits: priceOf(item) }, next.detail);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      if (failure.kind === "permanent") {
        // The listings themselves are refused: submitting again might pay twice, so stop here
        // and let a person decide (imgbatch retry resubmits).
        return this.host.move(item, "failed", { errorCode: "RECONCILE_FAILED", errorMessage: `could not check whether the lost submit made an image: ${failure.message}` }, failure.code);
      }
      if (failure.kind === "throttled") return this.deps.store.update(item, { nextAttemptAt: this.deps.now() + this.deps.gate.retryAfterMs(failure.retryAfterMs) });
      // Looks that keep failing (a service that accepts and never answers) end the item too.
      const failures = (this.lookFailures.get(item.id) ?? 0) + 1;
      this.lookFailures.set(item.id, failures);
      if (failures >= this.deps.options.maxAttempts) {
        this.lookFailures.delete(item.id);
        return this.unreconciled(item, `${failures} looks at the service's listings failed in a row (last: ${failure.code}: ${failure.message})`);
      }
      const delayMs = backoffDelayMs(failures + 1, this.deps.options, this.deps.random) + 250;
      return this.deps.store.update(item, { nextAttemptAt: this.deps.now() + delayMs });
    }
  }

  /** A lost submit whose outcome could not be settled: a person decides (`retry` submits again). */
  private unreconciled(item: ItemRecord, evidence: string): ItemRecord {
    this.foundNothingOnce.delete(item.id);
    const next = item.attempts === 0 ? "it was looked for again after an earlier retry: `imgbatch retry` submits it anew" : "`imgbatch retry` looks once more, then submits";
    const message = `the submit's answer was lost and whether it made a job could not be settled: ${evidence}; ${next}`;
    return this.host.move(item, "failed", { errorCode: "UNRECONCILED", errorMessage: message }, message);
  }

  private retryAfterReconcile(item: ItemRecord, detail: string): ItemRecord {
    if (!canRetry(item.attempts, this.deps.options)) {
      return this.host.move(item, "failed", { errorCode: item.errorCode ?? "SUBMIT_LOST", errorMessage: `${item.errorMessage ?? "submit response lost"} (after ${item.attempts} attempts)` }, detail);
    }
    return this.host.move(item, "queued", { nextAttemptAt: this.deps.now() }, detail);
  }

  private async poll(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.deps.hardSignal;
    let job: JobState;
    try {
      await sleepMs(item.nextAttemptAt - this.deps.now(), this.deps.softSignal);
      await this.pollPacer.take(this.deps.softSignal);
      await this.deps.gate.take(this.deps.softSignal);
      job = await this.deps.gate.send(this.deps.provider.getJob({ jobId: item.jobId!, request: item.request }, signal));
      this.pollFailures.delete(item.id);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      // A 429 is the key's, not the item's: it waits and counts nothing, within the job timeout.
      if (failure.kind === "throttled") {
        const runningMs = this.deps.now() - (item.submittedAt ?? this.deps.now());
        if (runningMs > this.deps.options.jobTimeoutMs) return this.failKeepingJob(item, "JOB_TIMEOUT", `job ${item.jobId} could not be read (429) for ${Math.round(runningMs / 1000)} s after its submit`);
        return this.later(item, this.deps.gate.retryAfterMs(failure.retryAfterMs));
      }
      if (failure.kind === "permanent") {
        this.pollFailures.delete(item.id);
        // The local renderer refusing the prompt: nothing was paid, the item fails with its reason.
        if (this.deps.provider.name === "local") return this.host.move(item, "failed", { errorCode: failure.code, errorMessage: failure.message, jobId: null }, failure.message);
        // A read refused for good (a redirect, a 4xx): the job may still finish, so it is kept.
        return this.failKeepingJob(item, "POLL_FAILED", `reading job ${item.jobId} was refused (${failure.code}: ${failure.message})`);
      }
      // Every other failed read counts: after a 5xx or a reset it is tried again soon, backing
      // off; a read that fails for good, or `maxAttempts` in a row, ends the item (job id kept).
      const failures = (this.pollFailures.get(item.id) ?? 0) + 1;
      this.pollFailures.set(item.id, failures);
      if (failures >= this.deps.options.maxAttempts) {
        this.pollFailures.delete(item.id);
        return this.failKeepingJob(item, "POLL_FAILED", `reading job ${item.jobId} failed ${failures === 1 ? "" : `${failures} times in a row `}(last: ${failure.code}: ${failure.message})`);
      }
      const delayMs = backoffDelayMs(failures, this.deps.options, this.deps.random);
      this.deps.log.debug({ item: item.key, err: errorMessage(error) }, `poll of ${item.key} failed; polling again in ${delayMs} ms`);
      return this.later(item, delayMs);
    }
    return this.afterPoll(item, job);
  }

  /**
   * The next read of a running job, kept in memory only: it needs no checkpoint (a resumed
   * run reads every running job at once), and a commit per poll would cost an fsync each.
   */
  private later(item: ItemRecord, delayMs: number): ItemRecord {
    return { ...item, nextAttemptAt: this.deps.now() + delayMs };
  }

  private afterPoll(item: ItemRecord, job: JobState): ItemRecord {
    const polls = this.pollsSoFar.get(item.id) ?? 0;
    this.pollSchedule.observe(item.request.model, polls, job.status !== "in-progress", this.deps.now() - (item.submittedAt ?? this.deps.now()));
    if (job.status === "in-progress") this.pollsSoFar.set(item.id, polls + 1);
    else this.pollsSoFar.delete(item.id);
    switch (job.status) {
      case "in-progress": {
        const runningMs = this.deps.now() - (item.submittedAt ?? this.deps.now());
        if (runningMs > this.deps.options.jobTimeoutMs) {
          this.pollsSoFar.delete(item.id);
          return this.failKeepingJob(item, "JOB_TIMEOUT", `job ${item.jobId} still in progress ${Math.round(runningMs / 1000)} s after its submit (the job timeout is ${Math.round(this.deps.options.jobTimeoutMs / 1000)} s)`);
        }
        return this.later(item, this.pollSchedule.delayMs(item.request.model, polls + 1, runningMs));
      }
      case "completed": {
        // Charged once per job: a job read completed again (a URL that had to be refreshed) is not
        // paid again; a new job starts with no credits (submit).
        if (item.credits === null) this.host.paid(job.credits);
        const updated = this.host.move(
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
        this.host.toImageStage(updated, job.image);
        return updated;
      }
      case "failed":
        if (job.code === INSUFFICIENT_CREDITS) {
          // Not the item's fault: it goes back to the queue, the run stops, resumable.
          this.host.move(item, "queued", { attempts: item.attempts - 1, jobId: null, nextAttemptAt: 0 }, `${job.code}: ${job.message}`);
          throw new FatalRunError(`the account ran out of AI credits (${job.message}); stopped submitting — top up and run again`, job.code, 3);
        }
        if (job.retryable) return this.retryOrFail(item, job.code, job.message);
        return this.host.move(item, "failed", { errorCode: job.code, errorMessage: job.message }, `${job.code}: ${job.message}`);
      case "gone":
        return this.retryOrFail(item, job.code, `${job.message}: the service no longer has this job`);
    }
  }
}
