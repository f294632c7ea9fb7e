import type { RenditionSpec, ThumbnailSpec } from "../manifest/types.js";

export interface RunnerOptions {
  /** Items in flight at the service (submitted, not yet finished). */
  concurrency: number;
  maxAttempts: number;
  pollIntervalMs: number;
  /** Requests per minute over every request to the provider; 0 = no limit. */
  rpm: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  throttleFallbackMs: number;
  downloadConcurrency: number;
  maxInputPixels: number;
  /** Stop submitting at this time (ms since epoch). */
  stopSubmittingAt: number | null;
  /** What `stopSubmittingAt` comes from, for the stop reason (default "deadline"). */
  stopSubmittingReason?: "deadline" | "max-runtime";
  /** Stop submitting before spent + in-flight credits would pass this. */
  maxCredits: number | null;
  /** How long a lost submit may still be running at the service before it is made again. */
  reconcileWindowMs: number;
  thumbnail: ThumbnailSpec;
  renditions: readonly RenditionSpec[];
}
