// Seeded fault decisions. One PRNG (mulberry32) drives every roll, so the same seed and the
// same request sequence give the same faults.
import type { FaultRoute, SimOptions } from "./config.js";

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type HttpFault = "429" | "429-no-retry-after" | "500" | "502" | "503" | "reset";

const HTTP_FAULT_RATES: [HttpFault, keyof SimOptions][] = [
  ["429", "rate429"],
  ["429-no-retry-after", "rate429NoRetryAfter"],
  ["500", "rate500"],
  ["502", "rate502"],
  ["503", "rate503"],
  ["reset", "rateReset"],
];

export type JobFault = "none" | "transient" | "permanent";
export type LostCreate = "none" | "reset" | "502";
export type DownloadFault = "none" | "slow" | "truncated";
export interface WebhookPlan {
  deliveries: number;
  extraDelayMs: number;
}

export class FaultPicker {
  private random: () => number;

  constructor(seed: number) {
    this.random = mulberry32(seed);
  }

  reseed(seed: number): void {
    this.random = mulberry32(seed);
  }

  /** True with probability `rate`; a zero rate consumes no randomness. */
  roll(rate: number): boolean {
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    return this.random() < rate;
  }

  /** A number in [0, max), for latency jitter. */
  jitter(max: number): number {
    return max > 0 ? Math.floor(this.random() * max) : 0;
  }

  /** At most one HTTP fault per request: the rates are stacked on one roll. */
  httpFault(route: FaultRoute, options: SimOptions): HttpFault | null {
    if (!options.faultRoutes.includes(route)) return null;
    const total = HTTP_FAULT_RATES.reduce((sum, [, key]) => sum + (options[key] as number), 0);
    if (total <= 0) return null;
    const u = this.random();
    let edge = 0;
    for (const [fault, key] of HTTP_FAULT_RATES) {
      edge += options[key] as number;
      if (u < edge) return fault;
    }
    return null;
  }

  lostCreate(options: SimOptions): LostCreate {
    if (!this.roll(options.rateLostCreate)) return "none";
    return this.random() < 0.5 ? "reset" : "502";
  }

  jobFault(options: SimOptions): JobFault {
    if (this.roll(options.rateJobFailPermanent)) return "permanent";
    if (this.roll(options.rateJobFailTransient)) return "transient";
    return "none";
  }

  downloadFault(options: SimOptions): DownloadFault {
    if (this.roll(options.rateTruncatedDownload)) return "truncated";
    if (this.roll(options.rateSlowDownload)) return "slow";
    return "none";
  }

  webhookPlan(options: SimOptions): WebhookPlan {
    if (this.roll(options.rateWebhookDrop)) return { deliveries: 0, extraDelayMs: 0 };
    const deliveries = this.roll(options.rateWebhookDuplicate) ? 2 : 1;
    const extraDelayMs = this.roll(options.rateWebhookDelay) ? options.webhookDelayMs : 0;
    return { deliveries, extraDelayMs };
  }
}
