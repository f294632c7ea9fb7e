// The service-side throttle (PICTORY.md Unknown 6): a token bucket per key over all API
// routes, refilled at rpm/60 per second, holding up to `burst` tokens.
interface Bucket {
  tokens: number;
  at: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly now: () => number) {}

  reset(): void {
    this.buckets.clear();
  }

  take(key: string, rpm: number, burst: number): TakeResult {
    if (rpm <= 0) return { ok: true };
    const capacity = Math.max(1, burst > 0 ? burst : rpm);
    const perMs = rpm / 60_000;
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)) };
  }
}
