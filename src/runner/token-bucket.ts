// One token bucket over every request to a provider (submits and polls alike). When the
// service shows the key is throttled (throttle-watch.ts), the whole bucket pauses.
import { sleepMs } from "./sleep.js";

/**
 * A bucket that never lets more than `rpm` requests into any 60 s window, with a burst of a
 * tenth of a second's worth: a wave of polls due together goes out at once instead of
 * queueing one token interval apart, each holding its slot meanwhile.
 */
export function rpmBucketShape(rpm: number): { perMinute: number; burst: number } {
  if (rpm <= 0) return { perMinute: 0, burst: 1 };
  const burst = Math.max(1, Math.floor(rpm / 600));
  return { perMinute: rpm - burst + 1, burst };
}

export class TokenBucket {
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;
  private readonly intervalMs: number;
  /** Requests waiting, served in order so polls cannot starve submits or the reverse. */
  private tail: Promise<void> = Promise.resolve();

  /**
   * `perMinute` tokens are earned a minute, ≤ 0 means unlimited; `burst` may be spent at once
   * after idling. Any 60 s window then holds at most burst − 1 + perMinute requests.
   */
  constructor(
    perMinute: number,
    private readonly burst = 1,
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = perMinute > 0 ? 60_000 / perMinute : 0;
    this.tokens = burst;
    this.refilledAt = now();
  }

  /** The bucket of `--rpm` (see rpmBucketShape). */
  static forRpm(rpm: number, now: () => number = Date.now): TokenBucket {
    const { perMinute, burst } = rpmBucketShape(rpm);
    return new TokenBucket(perMinute, burst, now);
  }

  /** Pause every request until `untilMs` (a Retry-After). Never shortens a longer pause. */
  pauseUntil(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  /** Resolves when one request may be sent. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.tail.then(() => this.waitForToken(signal));
    // A rejected (aborted) turn must not block the queue behind it.
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async waitForToken(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.now();
      if (now < this.pausedUntil) {
        await sleepMs(this.pausedUntil - now, signal);
        continue;
      }
      if (this.intervalMs === 0) return;
      this.refill(now);
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleepMs(Math.ceil((1 - this.tokens) * this.intervalMs), signal);
    }
  }

  private refill(now: number): void {
    const earned = (now - this.refilledAt) / this.intervalMs;
    this.tokens = Math.min(this.burst, this.tokens + earned);
    this.refilledAt = now;
  }
}
