import type { Logger } from "../log.js";
import type { QcSettings } from "../manifest/qc.js";
import type { RenditionSpec, ThumbnailSpec } from "../manifest/types.js";
import type { Provider } from "../providers/provider.js";
import type { Store } from "../store/port.js";
import type { ServiceGate } from "./service-gate.js";

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
  /** How long a lost submit's job may stay unaccounted for before the item fails UNRECONCILED. */
  reconcileWindowMs: number;
  /** A job read in progress this long after its submit fails the item JOB_TIMEOUT (job id kept). */
  jobTimeoutMs: number;
  /** The longest Retry-After obeyed; a longer one stops the run (exit 3, resumable). */
  retryAfterCapMs: number;
  /** How long the service may answer only failures (429, 5xx, timeouts) before the run stops (exit 3). */
  serviceDownMs: number;
  /** How long a claim on an item holds without renewal (renewed every third of it while the run lives). */
  leaseMs: number;
  /** What this worker does: submit and poll, deliver (the image stage), or both (default). */
  roles: { submit: boolean; deliver: boolean };
  thumbnail: ThumbnailSpec;
  renditions: readonly RenditionSpec[];
  /** The quality gates run on each delivered image (the manifest's `qc:`). */
  qc: QcSettings;
  /** How much later items awaiting a webhook are read (defaults.ts hintStretch); only with a receiver. */
  hintStretch?: { first: number; later: number };
}

/** What the runner hands each of its drivers (the service side, the image stage). */
export interface DriverDeps {
  store: Store;
  /** Who this process is in the items' claims. */
  worker: string;
  provider: Provider;
  gate: ServiceGate;
  options: RunnerOptions;
  log: Logger;
  now: () => number;
  random: () => number;
}
