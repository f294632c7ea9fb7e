// Tells a throttled key from a stray 429.
//
// DESIGN.md first had every 429 pause the whole provider for its Retry-After. A service
// under load answers 429 to a few percent of requests at random (its load, not our rate);
// pausing everything for each of those kept the run idle most of the time (benchmark
// scenario 2: 5 % of requests 429 with Retry-After 1 s ran at > 2.5 × the ideal). So a
// 429 always delays the request that got it by its Retry-After, and the whole provider
// pauses only when 429s make up a large share of the latest answers: the key itself is
// throttled, and every further request would be refused too.
//
// A 429 for a request sent before the current pause began belongs to the episode already
// paused for (50 requests in flight all come back 429): it neither extends the pause nor
// counts toward the next one.

export interface ThrottleWatchOptions {
  /** How many of the latest answers are looked at. */
  window: number;
  /** Pause the provider when at least this many of them were 429s. */
  throttledToPause: number;
}

/** 6 of the last 20: one chance in ~3,000 per window at a stray-429 rate of 5 %. */
const DEFAULT_THROTTLE_WATCH: ThrottleWatchOptions = { window: 20, throttledToPause: 6 };

export class ThrottleWatch {
  /** The latest answers, true for a 429; a ring of `window` entries. */
  private readonly answers: boolean[] = [];
  private next = 0;
  private throttledInWindow = 0;
  private pauseBeganAt = -Infinity;

  constructor(private readonly options: ThrottleWatchOptions = DEFAULT_THROTTLE_WATCH) {}

  /** A request sent at `sentAtMs` got an answer other than 429. */
  answered(sentAtMs: number): void {
    if (sentAtMs >= this.pauseBeganAt) this.record(false);
  }

  /**
   * A request sent at `sentAtMs` got a 429 at `nowMs`. True when the whole provider should
   * pause now (the caller pauses it for the Retry-After); false when only this request waits.
   */
  throttled(sentAtMs: number, nowMs: number): boolean {
    if (sentAtMs < this.pauseBeganAt) return false;
    this.record(true);
    if (this.throttledInWindow < this.options.throttledToPause) return false;
    this.pauseBeganAt = nowMs;
    this.answers.length = 0;
    this.next = 0;
    this.throttledInWindow = 0;
    return true;
  }

  private record(throttled: boolean): void {
    if (this.answers.length < this.options.window) {
      this.answers.push(throttled);
    } else {
      if (this.answers[this.next]) this.throttledInWindow--;
      this.answers[this.next] = throttled;
      this.next = (this.next + 1) % this.options.window;
    }
    if (throttled) this.throttledInWindow++;
  }
}
