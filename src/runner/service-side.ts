// One item's service side: submit, poll, and the looks for a lost submit's job, with the
// retries each needs. Where each outcome leads is next-step.ts's; the runner owns the slots
// and the bookkeeping (ServiceSideHost); the key's rate and throttling are ServiceGate's;
// what a look means is lost-submit.ts's. Every step is written to the row, so a resumed run
// continues where this one stood (the poll schedule's step, failed reads, a look's result).
import { INSUFFICIENT_CREDITS, type ImageRequest, type ImageSource, type JobState } from "../providers/provider.js";
import type { ItemWrite } from "../store/port.js";
import type { ItemRecord } from "../store/types.js";
import { DEFAULTS } from "../defaults.js";
import { ClaimLostError, FatalRunError, InternalError, errorMessage } from "../errors.js";
import { nextLostSubmitStep } from "./lost-submit.js";
import { afterRead, afterSubmit, retryOrFail, stepPolicy, type ReadOutcome, type StepPolicy, type SubmitOutcome } from "./next-step.js";
import type { DriverDeps } from "./options.js";
import { PollSchedule } from "./poll-schedule.js";
import { priceOf } from "./price.js";
import { REFERENCE_UPLOAD_FAILED, ReferenceStager, type ReferenceLookup } from "./references.js";
import { backoffDelayMs, classifyFailure, originAnswered } from "./retry-policy.js";
import { sleepMs } from "./sleep.js";
import { TokenBucket } from "./token-bucket.js";
import type { WebhookRoutes } from "./webhook-routes.js";

/** What the service side asks of the runner. */
export interface ServiceSideHost {
  /** Commits a write with the run's bookkeeping (counts, events, learned refs). */
  move(item: ItemRecord, write: ItemWrite): Promise<ItemRecord>;
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
  /** The bytes of local reference images (the run's copies); none: no item has one. */
  references?: ReferenceLookup;
  /** Which webhook each submit carries, and the hints of this run's receiver (absent: none). */
  webhooks?: WebhookRoutes;
}

export class ServiceSideDriver {
  /** Spreads polls evenly over the poll interval instead of sending them in bursts. */
  private readonly pollPacer: TokenBucket;
  private readonly pollSchedule: PollSchedule;
  /** When each job this process submitted was accepted, while its item is driven here: the poll schedule counts from there, not from before the submit's durable write. */
  private readonly acceptedAt = new Map<string, number>();
  private readonly references: ReferenceStager;

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
    this.references = new ReferenceStager({ ...deps, references: deps.references ?? (() => null) });
  }

  private policy(): StepPolicy {
    return stepPolicy(this.deps.options, this.deps.now(), this.deps.random);
  }

  /** Drives one item while it is at the service; returns when it leaves (image stage, queue, end). */
  async drive(start: ItemRecord): Promise<void> {
    const board = this.deps.webhooks?.board;
    board?.enter(start.key, start.jobId);
    try {
      await this.driveSteps(start);
    } finally {
      board?.leave(start.key);
      this.acceptedAt.delete(start.key);
    }
  }

  private async driveSteps(start: ItemRecord): Promise<void> {
    let item = start;
    for (;;) {
      if (this.deps.hardSignal.aborted) return;
      switch (item.state) {
        case "queued":
          // Released to the queue (a lost submit found nothing): the queue hands it out again, claimed anew.
          if (this.host.stopping() || item.owner === null) return;
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
    let request: ImageRequest;
    try {
      // A local reference is uploaded (once per file) before its first item is submitted.
      request = await this.references.resolve(queued.request);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return queued;
      if (failure.kind === "fatal") throw failure.error;
      // Nothing was submitted and no attempt used: only the items of that file fail.
      const message = "message" in failure ? failure.message : "the reference could not be uploaded";
      return this.host.move(queued, { to: "failed", set: { errorCode: REFERENCE_UPLOAD_FAILED, errorMessage: message }, note: message });
    }
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
    // The write re-confirms the claim in the database (owner, epoch, a lease not run out) and
    // renews the lease to cover the request: no other worker takes the item over meanwhile.
    const item = await this.host.move(queued, {
      to: "submitting",
      set: { attempts: attempt, submittedAt: this.deps.now(), errorCode: null, errorMessage: null, foundNothingAt: null, readFailures: 0 },
      note: `attempt ${attempt} of ${this.deps.options.maxAttempts}`,
      durable: true,
      renewLeaseMs: this.deps.options.leaseMs,
    });
    // Stopped while it committed: nothing was sent, so no look at the listings is needed.
    if (this.deps.hardSignal.aborted) return this.host.move(item, { to: "queued", set: { attempts: item.attempts - 1, nextAttemptAt: 0 }, note: "stopped before the submit was sent" });
    let outcome: SubmitOutcome;
    let fatal: FatalRunError | null = null;
    const route = this.deps.webhooks?.forSubmit(item) ?? null;
    const board = this.deps.webhooks?.board;
    board?.submitting(item.key, route?.listened ?? false);
    try {
      const { jobId } = await this.deps.gate.send(this.deps.provider.submit(request, signal, route === null ? {} : { webhook: route.url }));
      const estimateMs = this.pollSchedule.delayMs(item.request.model, 0);
      // Awaiting a hint while hints arrive: read a little after the estimate, without probes (the hint tells sooner).
      const stretched = route?.listened === true && board?.expectsHints() === true;
      const firstReadMs = stretched ? Math.round(estimateMs * this.hintStretch.first) : this.pollSchedule.firstReadMs(item.request.model);
      board?.accepted(item.key, jobId, estimateMs);
      this.acceptedAt.set(item.key, this.deps.now());
      outcome = { kind: "accepted", jobId, firstReadMs };
    } catch (error) {
      board?.noJob(item.key);
      const failure = classifyFailure(error);
      // The request may or may not have left: `submitting` stays, the next run reconciles.
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") fatal = failure.error;
      outcome = this.submitFailure(error, failure);
    }
    // A failure to record the job (the database) is no refusal of the submit: it stops the
    // run with `submitting` on disk, which the next run reconciles.
    let after: ItemRecord;
    try {
      after = await this.host.move(item, afterSubmit(item, outcome, this.policy()));
    } catch (error) {
      // The claim was lost while the submit was out: the job is kept on record, never dropped.
      if (error instanceof ClaimLostError && outcome.kind === "accepted") await this.deps.store.recordOrphanJob(item.key, outcome.jobId, this.deps.worker);
      throw error;
    }
    if (fatal) throw fatal;
    return after;
  }

  private submitFailure(error: unknown, failure: Exclude<ReturnType<typeof classifyFailure>, { kind: "aborted" }>): SubmitOutcome {
    switch (failure.kind) {
      case "fatal":
        return { kind: "refused-account", code: failure.error.code, message: failure.error.message };
      case "throttled":
        return { kind: "throttled", delayMs: this.deps.gate.retryAfterMs(failure.retryAfterMs) };
      case "retryable":
        if ((error as { maybeCreated?: boolean }).maybeCreated) {
          // An answer from the service itself (500, 503) means it is done with the request:
          // a job it made is listed now. After a timeout, a reset or a gateway's 502/504 it
          // may still be making one, so the first look waits a poll interval.
          return { kind: "answer-lost", code: failure.code, message: failure.message, lookAfterMs: originAnswered(failure.code) ? 0 : this.deps.options.pollIntervalMs };
        }
        return { kind: "failed", retryable: true, code: failure.code, message: failure.message };
      case "permanent":
        return { kind: "failed", retryable: false, code: failure.code, message: failure.message };
    }
  }

  /** A submit whose response was lost: find its job before deciding to pay again. */
  private async reconcile(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.deps.hardSignal;
    try {
      await sleepMs(item.nextAttemptAt - this.deps.now(), this.deps.softSignal);
      // The listings echo the reference as the URL it was uploaded to.
      const search = await this.deps.gate.findLostJob({ ...item, request: await this.references.resolve(item.request) }, { signal, tokenSignal: this.deps.softSignal });
      const next = nextLostSubmitStep(search, {
        waitedMs: this.deps.now() - (item.submittedAt ?? 0),
        foundNothingBefore: item.foundNothingAt !== null,
        originAnswered: originAnswered(item.errorCode),
        jobRunsMs: this.pollSchedule.delayMs(item.request.model, 0),
        reconcileWindowMs: this.deps.options.reconcileWindowMs,
      });
      const looked = { readFailures: 0, foundNothingAt: search.found === "none" && next.step === "look-again" ? this.deps.now() : null };
      if (next.step === "look-again") return this.host.move(item, { set: { ...looked, nextAttemptAt: this.deps.now() + next.afterMs }, note: next.detail });
      if (next.step === "submit-again") return this.retryAfterReconcile({ ...item, ...looked }, next.detail);
      if (next.step === "give-up") return this.unreconciled(item, next.detail);
      if (search.found !== "image") throw new InternalError(`adopting without an image (${search.found})`);
      // Paid like a polled completion: it counts toward this run's credits (and --max-credits).
      this.host.paid(priceOf(item));
      // The image list carries no price: the model's is what the service charged.
      const set = { ...looked, imageRef: search.imageRef, jobId: search.jobId, resultUrl: search.url, resultWidth: search.width, resultHeight: search.height, nextAttemptAt: 0, credits: priceOf(item) };
      return this.host.move(item, { to: "downloading", set, note: next.detail });
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      if (failure.kind === "permanent") {
        // The listings themselves are refused: submitting again might pay twice, so stop here
        // and let a person decide (imgbatch retry resubmits).
        return this.host.move(item, { to: "failed", set: { errorCode: "RECONCILE_FAILED", errorMessage: `could not check whether the lost submit made an image: ${failure.message}` }, note: failure.code });
      }
      if (failure.kind === "throttled") return this.host.move(item, { set: { nextAttemptAt: this.deps.now() + this.deps.gate.retryAfterMs(failure.retryAfterMs) } });
      // Looks that keep failing (a service that accepts and never answers) end the item too.
      const failures = item.readFailures + 1;
      if (failures >= this.deps.options.maxAttempts) {
        return this.unreconciled(item, `${failures} looks at the service's listings failed in a row (last: ${failure.code}: ${failure.message})`);
      }
      const delayMs = backoffDelayMs(failures + 1, this.deps.options, this.deps.random) + 250;
      return this.host.move(item, { set: { readFailures: failures, nextAttemptAt: this.deps.now() + delayMs } });
    }
  }

  /** A lost submit whose outcome could not be settled: a person decides (`retry` submits again). */
  private unreconciled(item: ItemRecord, evidence: string): Promise<ItemRecord> {
    const next = item.attempts === 0 ? "it was looked for again after an earlier retry: `imgbatch retry` submits it anew" : "`imgbatch retry` looks once more, then submits";
    const message = `the submit's answer was lost and whether it made a job could not be settled: ${evidence}; ${next}`;
    return this.host.move(item, { to: "failed", set: { errorCode: "UNRECONCILED", errorMessage: message, foundNothingAt: null, readFailures: 0 }, note: message });
  }

  private retryAfterReconcile(item: ItemRecord, detail: string): Promise<ItemRecord> {
    const step = retryOrFail(item, item.errorCode ?? "SUBMIT_LOST", item.errorMessage ?? "submit response lost", this.policy());
    // Nothing was made: the next submit may go at once (the attempt it used is counted).
    return this.host.move(item, step.to === "queued" ? { to: "queued", set: { nextAttemptAt: this.deps.now(), foundNothingAt: null }, note: detail } : { ...step, note: detail });
  }

  private async poll(item: ItemRecord): Promise<ItemRecord> {
    const signal = this.deps.hardSignal;
    let outcome: ReadOutcome & { image?: ImageSource };
    try {
      const hinted = await this.waitForRead(item);
      // A hinted read is no poll: hints come spread out as jobs finish, at most one per job.
      if (!hinted) await this.pollPacer.take(this.deps.softSignal);
      await this.deps.gate.take(this.deps.softSignal);
      const sentAt = this.deps.now();
      const job = await this.deps.gate.send(this.deps.provider.getJob({ jobId: item.jobId!, request: item.request }, signal));
      outcome = this.readOutcome(item, job, sentAt, hinted);
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "aborted") return item;
      if (failure.kind === "fatal") throw failure.error;
      if (failure.kind === "throttled") outcome = { kind: "read-throttled", delayMs: this.deps.gate.retryAfterMs(failure.retryAfterMs) };
      else if (failure.kind === "permanent") {
        // The local renderer refusing the prompt: nothing was paid, the item fails with its reason.
        if (this.deps.provider.name === "local") return this.host.move(item, { to: "failed", set: { errorCode: failure.code, errorMessage: failure.message, jobId: null }, note: failure.message });
        outcome = { kind: "read-refused", code: failure.code, message: failure.message };
      } else {
        // After a 5xx or a reset the read is tried again soon, backing off.
        const retryInMs = backoffDelayMs(item.readFailures + 1, this.deps.options, this.deps.random);
        this.deps.log.debug({ item: item.key, err: errorMessage(error) }, `poll of ${item.key} failed; polling again in ${retryInMs} ms`);
        outcome = { kind: "read-failed", code: failure.code, message: failure.message, retryInMs };
      }
    }
    if (outcome.kind === "completed" && item.credits === null) this.host.paid(outcome.credits);
    const after = await this.host.move(item, afterRead(item, outcome, this.policy()));
    if (outcome.kind === "out-of-credits") throw new FatalRunError(`the account ran out of AI credits (${outcome.message}); stopped submitting — top up and run again`, outcome.code, 3);
    if (after.state === "downloading") this.host.toImageStage(after, outcome.image ?? null);
    return after;
  }

  private get hintStretch(): { first: number; later: number } {
    return this.deps.options.hintStretch ?? DEFAULTS.hintStretch;
  }

  /** Sleeps until the item's next read is due, or until a webhook hints that its job ended (true). */
  private async waitForRead(item: ItemRecord): Promise<boolean> {
    const waitMs = item.nextAttemptAt - this.deps.now();
    const board = this.deps.webhooks?.board;
    if (!board) {
      await sleepMs(waitMs, this.deps.softSignal);
      return false;
    }
    return board.wait(item.key, waitMs, this.deps.softSignal);
  }

  /** What a read of the job means; the poll schedule learns from it. */
  private readOutcome(item: ItemRecord, job: JobState, sentAt: number, hinted = false): ReadOutcome & { image?: ImageSource } {
    const acceptedAt = this.acceptedAt.get(item.key);
    const elapsedMs = sentAt - (acceptedAt ?? item.submittedAt ?? sentAt);
    // When a first read was planned (the submit's answer plus the delay it was given).
    const plannedMs = acceptedAt !== undefined && item.polls === 0 ? item.nextAttemptAt - acceptedAt : elapsedMs;
    const board = this.deps.webhooks?.board;
    if (job.status !== "in-progress") board?.ended(item.key, hinted);
    if (!hinted) this.pollSchedule.observe(item.request.model, item.polls, job.status !== "in-progress", elapsedMs, plannedMs);
    else if (job.status === "in-progress") board?.hintWasEarly(item.key);
    else {
      // The hint came about when the job ended: whether a first read at the estimate it was
      // submitted with would have found it done, so the estimate keeps tracking the jobs' times.
      const estimateMs = board?.estimateOf(item.key) ?? null;
      if (item.polls === 0 && estimateMs !== null) this.pollSchedule.observe(item.request.model, 0, elapsedMs <= estimateMs, estimateMs);
    }
    switch (job.status) {
      case "in-progress": {
        const delayMs = this.pollSchedule.delayMs(item.request.model, item.polls + 1, elapsedMs);
        const stretched = board !== undefined && board.awaitingHint(item.key) && board.expectsHints();
        return { kind: "in-progress", nextReadMs: stretched ? Math.round(delayMs * this.hintStretch.later) : delayMs };
      }
      case "completed":
        // Charged once per job: a job read completed again is not paid again (credits already set).
        return { kind: "completed", credits: job.credits, imageRef: job.imageRef ?? null, url: job.image.kind === "url" ? job.image.url : null, width: job.width, height: job.height, image: job.image };
      case "failed":
        if (job.code === INSUFFICIENT_CREDITS) return { kind: "out-of-credits", code: job.code, message: job.message };
        return { kind: "job-failed", retryable: job.retryable, code: job.code, message: job.message };
      case "gone":
        return { kind: "gone", code: job.code, message: job.message };
    }
  }
}
