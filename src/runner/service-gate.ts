// Everything between one run and the service's API that is about the key rather than an
// item: the --rpm bucket every request takes a token from, the watch that tells a throttled
// key from a stray 429, and what the run has learned exists at the service (for lost-submit
// searches). The runner's item drivers send through it; it holds no item state.
import type { Logger } from "../log.js";
import type { ClaimedRefs, LostJobSearch, Provider } from "../providers/provider.js";
import type { Store } from "../store/port.js";
import type { ItemRecord } from "../store/types.js";
import { LearnedRefs } from "./learned-refs.js";
import { classifyFailure } from "./retry-policy.js";
import { ThrottleWatch } from "./throttle-watch.js";
import { sleepMs } from "./sleep.js";
import { rpmBucketShape, TokenBucket } from "./token-bucket.js";

export interface ServiceGateOptions {
  rpm: number;
  /** How long a 429 without Retry-After waits. */
  throttleFallbackMs: number;
  /** The longest Retry-After obeyed. */
  retryAfterCapMs: number;
  /** How long the service may answer nothing but failures (429s, 5xx, timeouts) before the run stops. */
  serviceDownMs: number;
}

/** Why the gate gives up on the service for this run: the run stops, resumable (exit 3). */
export interface GiveUp {
  code: "RETRY_AFTER_TOO_LONG" | "SERVICE_UNREACHABLE";
  message: string;
}

/** With no --rpm, how stale a shared run's view of the key's pause may be: another worker's 429 pauses this one within it. */
export const SHARED_PAUSE_READ_MS = 1_000;
const UNLIMITED = 1e9;

export class ServiceGate {
  private readonly bucket: TokenBucket;
  private readonly throttle = new ThrottleWatch();
  private readonly learned = new LearnedRefs();

  constructor(
    private readonly provider: Provider,
    private readonly store: Store,
    private readonly options: ServiceGateOptions,
    private readonly log: Logger,
    private readonly now: () => number,
    /** Told when waiting for the service is no longer worth it: the run stops, resumable. */
    private readonly onGiveUp: (reason: GiveUp) => void = () => {},
  ) {
    this.bucket = TokenBucket.forRpm(options.rpm, now);
    this.lastAnswerAt = now();
  }

  /** When the service last answered a request with anything but a failure. */
  private lastAnswerAt: number;

  /** Resolves when one more request may be sent (--rpm, or a throttled key's pause). */
  async take(signal?: AbortSignal): Promise<void> {
    if (!this.store.sharesRuns) return this.bucket.take(signal);
    if (this.options.rpm <= 0) {
      // No --rpm: the database holds only the key's pause, read now and then rather than per request.
      await this.readSharedPause();
      return this.bucket.take(signal);
    }
    // A shared run with --rpm: one bucket and one pause per key, in the database, for every worker.
    const { perMinute, burst } = rpmBucketShape(this.options.rpm);
    for (;;) {
      const waitMs = await this.store.takeRequestToken(this.provider.keyId, perMinute, burst);
      if (waitMs === 0) return;
      await sleepMs(waitMs, signal);
    }
  }

  private pauseReadAt = Number.NEGATIVE_INFINITY;
  private pauseRead: Promise<void> | null = null;

  /** The pause another worker of the key wrote, taken into this worker's bucket: read at most every SHARED_PAUSE_READ_MS. */
  private readSharedPause(): Promise<void> {
    if (this.pauseRead) return this.pauseRead;
    if (this.now() - this.pauseReadAt < SHARED_PAUSE_READ_MS) return Promise.resolve();
    this.pauseReadAt = this.now();
    // An unlimited bucket's token: it answers 0, or how long the key is still paused.
    this.pauseRead = this.store
      .takeRequestToken(this.provider.keyId, UNLIMITED, UNLIMITED)
      .then((waitMs) => {
        if (waitMs > 0) this.bucket.pauseUntil(this.now() + waitMs);
      })
      .finally(() => (this.pauseRead = null));
    return this.pauseRead;
  }

  /**
   * Tells the throttle watch how a request was answered; a 429 that shows the key itself is
   * throttled pauses every request to the provider (see throttle-watch.ts). The caller
   * still delays its own request by the Retry-After (`retryAfterMs`).
   */
  async send<T>(request: Promise<T>): Promise<T> {
    const sentAt = this.now();
    try {
      const answer = await request;
      this.throttle.answered(sentAt);
      this.lastAnswerAt = this.now();
      return answer;
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.kind === "permanent") this.lastAnswerAt = this.now();
      // Nothing but 429s, 5xx and timeouts for this long: the service is down for this run.
      if ((failure.kind === "throttled" || failure.kind === "retryable") && this.now() - this.lastAnswerAt > this.options.serviceDownMs) {
        this.onGiveUp({
          code: "SERVICE_UNREACHABLE",
          message: `the service has answered nothing but failures for ${Math.round((this.now() - this.lastAnswerAt) / 1000)} s (last: ${failure.kind === "throttled" ? "429" : failure.code}): stopped, resumable — run again later`,
        });
      }
      if (failure.kind === "throttled" && this.throttle.throttled(sentAt, this.now())) {
        const pauseMs = this.retryAfterMs(failure.retryAfterMs);
        this.bucket.pauseUntil(this.now() + pauseMs);
        // Every worker of the key pauses too (a shared run); a failure here only leaves the others unpaused.
        if (this.store.sharesRuns) this.store.pauseKey(this.provider.keyId, this.now() + pauseMs).catch(() => {});
        this.log.warn({ retryAfterMs: failure.retryAfterMs }, `provider throttled (429 on many requests): pausing all requests for ${Math.round(pauseMs / 100) / 10} s`);
      } else if (failure.kind === "retryable" || failure.kind === "permanent") {
        this.throttle.answered(sentAt);
      }
      throw error;
    }
  }

  /** How long to wait after a 429: its Retry-After, never longer than the cap (past it the run stops). */
  retryAfterMs(retryAfterMs: number | null): number {
    const asked = retryAfterMs ?? this.options.throttleFallbackMs;
    if (asked <= this.options.retryAfterCapMs) return asked;
    // Obeying would hold the lock for longer than anyone expects of a night's run.
    this.onGiveUp({
      code: "RETRY_AFTER_TOO_LONG",
      message: `the service asked to wait ${Math.round(asked / 1000)} s before the next request (Retry-After), more than the ${Math.round(this.options.retryAfterCapMs / 1000)} s imgbatch waits: stopped, resumable — run again later`,
    });
    return this.options.retryAfterCapMs;
  }

  /** An item's record after a transition: the job and image it holds now exist at the service. */
  noted(item: ItemRecord): void {
    for (const ref of [item.jobId, item.imageRef]) if (ref) this.learned.learned(ref, this.now());
  }

  /**
   * Looks for the job of `item`'s lost submit, every listing page taking a token (a search may
   * page through dozens: --rpm holds). `exceptRef`: the item's own adopted image, searched
   * for again to refresh its URL.
   */
  async findLostJob(item: ItemRecord, options: { signal: AbortSignal; tokenSignal: AbortSignal; exceptRef?: string }): Promise<LostJobSearch> {
    // Asked of the store as the search meets each ref, never read whole up front. A job another
    // item is answered while the search pages through the listings is stored (and so claimed)
    // before the search reads its next page; otherwise every submit answered meanwhile reads
    // as "a job of unknown owner still in progress", and in a busy run a lost submit waits
    // until the run goes quiet (measured in the chaos test).
    const claimed: ClaimedRefs = { has: (ref) => ref !== options.exceptRef && this.store.isClaimed(ref) };
    const submittedAt = item.submittedAt ?? 0;
    return this.send(
      this.provider.findLostJob(item.request, submittedAt, claimed, {
        signal: options.signal,
        beforeRequest: () => this.bucket.take(options.tokenSignal),
        knownBefore: (ref) => this.learned.knownBefore(ref, submittedAt),
      }),
    );
  }
}
