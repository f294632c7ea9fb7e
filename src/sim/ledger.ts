// What the simulator saw, for tests to assert on: jobs per request hash (paid twice?),
// requests per route, peaks of in-flight jobs, concurrent requests and requests per minute.
import { createHash } from "node:crypto";
import type { SimJob } from "./state.js";
import type { WebhookStats } from "./webhooks.js";

export interface SimLedger extends WebhookStats {
  jobsCreated: number;
  jobsCompleted: number;
  jobsFailed: number;
  /** sha256 of canonical {prompt, model, aspectRatio, style, referenceImageUrl} → jobs created. */
  jobsByRequestHash: Record<string, number>;
  /** Job id → the `webhook` its create carried (null: none), in creation order. */
  webhookByJob: Record<string, string | null>;
  /** "POST /v1/aistudio/images", "GET /v1/jobs/:id", "GET /v1/jobs", "GET /v1/aistudio/images", "GET /v1/quota", "GET /files", ... */
  requestsByRoute: Record<string, number>;
  /** Final HTTP status → count; a dropped socket counts under "reset". */
  responsesByStatus: Record<string, number>;
  /** Injected faults by name, e.g. "429", "500", "reset", "lost-create:502", "download:truncated". */
  faultsInjected: Record<string, number>;
  /** Most image jobs in progress at the service at once (by job lifecycle, all keys). */
  maxInFlight: number;
  inFlightNow: number;
  /** Most HTTP requests open at once (all routes). */
  maxConcurrentRequests: number;
  concurrentRequestsNow: number;
  /** Most API requests (under /pictoryapis) within any 60 s window of the sim clock. */
  requestsPerMinuteMax: number;
  /** AI credits debited, all keys. */
  creditsUsed: number;
  /** Signed upload URLs handed out (POST /v1/media/generateurl answered 200). */
  uploadUrlsIssued: number;
  /** Files stored by a signed PUT, and how often each (by the sha256 of its bytes). */
  uploads: number;
  uploadsBySha256: Record<string, number>;
  /** Signed PUTs refused: "signature" (a wrong Content-Type), "expired", "fault" (failUploadsNamed). */
  uploadsRefused: Record<string, number>;
}

const WINDOW_MS = 60_000;

function bump(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by;
}

export class LedgerRecorder {
  private jobsCreated = 0;
  private jobsCompleted = 0;
  private jobsFailed = 0;
  private jobsByRequestHash: Record<string, number> = {};
  private webhookByJob: Record<string, string | null> = {};
  private requestsByRoute: Record<string, number> = {};
  private responsesByStatus: Record<string, number> = {};
  private faultsInjected: Record<string, number> = {};
  private maxInFlight = 0;
  private maxConcurrentRequests = 0;
  private concurrentRequests = 0;
  private requestsPerMinuteMax = 0;
  private apiRequestTimes: number[] = [];
  private uploadUrlsIssued = 0;
  private uploads = 0;
  private uploadsBySha256: Record<string, number> = {};
  private uploadsRefused: Record<string, number> = {};

  reset(): void {
    this.jobsCreated = this.jobsCompleted = this.jobsFailed = 0;
    this.jobsByRequestHash = {};
    this.webhookByJob = {};
    this.requestsByRoute = {};
    this.responsesByStatus = {};
    this.faultsInjected = {};
    this.maxInFlight = 0;
    this.maxConcurrentRequests = this.concurrentRequests;
    this.requestsPerMinuteMax = 0;
    this.apiRequestTimes = [];
    this.uploadUrlsIssued = this.uploads = 0;
    this.uploadsBySha256 = {};
    this.uploadsRefused = {};
  }

  uploadUrlIssued(): void {
    this.uploadUrlsIssued++;
  }

  uploaded(bytes: Buffer): void {
    this.uploads++;
    bump(this.uploadsBySha256, createHash("sha256").update(bytes).digest("hex"));
  }

  uploadRefused(why: string): void {
    bump(this.uploadsRefused, why);
  }

  requestOpened(): void {
    this.concurrentRequests++;
    this.maxConcurrentRequests = Math.max(this.maxConcurrentRequests, this.concurrentRequests);
  }

  requestClosed(status: number | "reset"): void {
    this.concurrentRequests = Math.max(0, this.concurrentRequests - 1);
    bump(this.responsesByStatus, String(status));
  }

  route(label: string): void {
    bump(this.requestsByRoute, label);
  }

  apiRequest(now: number): void {
    const times = this.apiRequestTimes;
    times.push(now);
    let drop = 0;
    while (drop < times.length && (times[drop] ?? now) <= now - WINDOW_MS) drop++;
    if (drop > 0) times.splice(0, drop);
    this.requestsPerMinuteMax = Math.max(this.requestsPerMinuteMax, times.length);
  }

  fault(name: string): void {
    bump(this.faultsInjected, name);
  }

  jobCreated(job: SimJob, inFlightNow: number): void {
    this.jobsCreated++;
    bump(this.jobsByRequestHash, job.requestHash);
    this.webhookByJob[job.id] = job.request.webhook ?? null;
    this.maxInFlight = Math.max(this.maxInFlight, inFlightNow);
  }

  jobSettled(job: SimJob): void {
    if (job.outcome?.kind === "completed") this.jobsCompleted++;
    else this.jobsFailed++;
  }

  snapshot(live: { inFlightNow: number; creditsUsed: number; webhooks: WebhookStats }): SimLedger {
    return {
      jobsCreated: this.jobsCreated,
      jobsCompleted: this.jobsCompleted,
      jobsFailed: this.jobsFailed,
      jobsByRequestHash: { ...this.jobsByRequestHash },
      webhookByJob: { ...this.webhookByJob },
      requestsByRoute: { ...this.requestsByRoute },
      responsesByStatus: { ...this.responsesByStatus },
      faultsInjected: { ...this.faultsInjected },
      maxInFlight: this.maxInFlight,
      inFlightNow: live.inFlightNow,
      maxConcurrentRequests: this.maxConcurrentRequests,
      concurrentRequestsNow: this.concurrentRequests,
      requestsPerMinuteMax: this.requestsPerMinuteMax,
      creditsUsed: live.creditsUsed,
      uploadUrlsIssued: this.uploadUrlsIssued,
      uploads: this.uploads,
      uploadsBySha256: { ...this.uploadsBySha256 },
      uploadsRefused: { ...this.uploadsRefused },
      ...live.webhooks,
    };
  }
}
