// One token bucket over every request to a provider (submits and polls alike). A 429
// pauses the whole bucket, not one item, because the service throttles the key.
import { sleepMs } from "./sleep.js";

export class TokenBucket {
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = 0;
  private readonly intervalMs: number;
  /** Requests waiting, served in order so polls cannot starve submits or the reverse. */
  private tail: Promise<void> = Promise.resolve();

  /** `rpm` ≤ 0 means unlimited. `burst` tokens may be spent at once after idling. */
  constructor(
    readonly rpm: number,
    private readonly burst = 1,
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = rpm > 0 ? 60_000 / rpm : 0;
    this.tokens = burst;
    this.refilledAt = now();
  }

  /** Pause every request until `untilMs` (a Retry-After). Never shortens a longer pause. */
  pauseUntil(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  get pausedUntilMs(): number {
    return this.pausedUntil;
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
