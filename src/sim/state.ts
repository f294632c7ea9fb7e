// The simulated service's memory: accounts (one per key), jobs and their outcomes. Jobs
// finish lazily: every read first settles the jobs whose time has come, in completion
// order, so credits and in-flight counts follow the clock with no timers.
import { createHash, randomUUID } from "node:crypto";
import { MODEL_SPECS } from "../providers/catalog.js";
import { mergeSimOptions, type SimOptions, type SimOptionsPatch } from "./config.js";
import { FaultPicker } from "./faults.js";
import { SimUploads } from "./uploads.js";
import { simRequestHash, type SimImageRequest } from "./validate.js";

export type Outcome = { kind: "completed"; credits: number } | { kind: "failed"; code: string; message: string };

export interface SimJob {
  id: string;
  /** Creation order, the tiebreak of "newest first" within one millisecond. */
  seq: number;
  apiKey: string;
  userId: string;
  /** The image id of the history listing: deliberately not the job id (Unknown 18). */
  imageId: string;
  request: SimImageRequest;
  requestHash: string;
  createdAt: number;
  completesAt: number;
  /** Decided at creation; credits are checked again when the job settles. */
  planned: { kind: "complete" } | { kind: "failed"; code: string; message: string };
  /** Null until the clock passes completesAt. */
  outcome: Outcome | null;
  /** How its image looks: its own (pattern by job id), a flat black frame, or the prompt's one image. */
  look: "own" | "blank" | "plain";
}

export type JobStatus = "in-progress" | "completed" | "failed" | "cleaned";

export const JOB_ERRORS = {
  transient: { code: "IMAGE_GENERATION_FAILED", message: "Image generation failed due to a temporary error. Please try again." },
  permanent: { code: "CONTENT_POLICY_VIOLATION", message: "The request was rejected by the content policy." },
  unreachable: { code: "REFERENCE_IMAGE_UNREACHABLE", message: "The reference image could not be downloaded." },
  credits: { code: "INSUFFICIENT_AI_CREDITS", message: "Not enough AI credits to generate this image." },
} as const;

interface Account {
  userId: string;
  /** Thousandths of a credit, so 0.6 + 0.6 + 0.6 stays exact. */
  usedMilli: number;
}

const milli = (credits: number): number => Math.round(credits * 1000);

export class SimState {
  options: SimOptions;
  readonly faults: FaultPicker;
  private readonly jobs = new Map<string, SimJob>();
  private readonly jobsByImageId = new Map<string, SimJob>();
  /** Per key, oldest first. */
  private readonly jobsByKey = new Map<string, SimJob[]>();
  private readonly accounts = new Map<string, Account>();
  /** Files put through POST /v1/media/generateurl and its signed URL (uploads.ts). */
  readonly uploads = new SimUploads();
  /** Jobs not yet settled. Their count after settling is the service's in-flight count. */
  private pending: SimJob[] = [];
  private seq = 0;
  /** Called once per job when it settles (webhooks, ledger). */
  onSettled: (job: SimJob) => void = () => {};

  constructor(
    options: SimOptions,
    readonly now: () => number,
  ) {
    this.options = options;
    this.faults = new FaultPicker(options.seed);
  }

  configure(patch: SimOptionsPatch): void {
    this.options = mergeSimOptions(this.options, patch);
    if (patch.seed !== undefined) this.faults.reseed(patch.seed);
    if (patch.creditsUsed !== undefined) {
      for (const account of this.accounts.values()) account.usedMilli = milli(patch.creditsUsed);
    }
  }

  reset(): void {
    this.jobs.clear();
    this.jobsByImageId.clear();
    this.jobsByKey.clear();
    this.accounts.clear();
    this.uploads.clear();
    this.pending = [];
    this.faults.reseed(this.options.seed);
  }

  account(apiKey: string): Account {
    let account = this.accounts.get(apiKey);
    if (account === undefined) {
      // A stable uuid-shaped user id per key, like the <userId> in the CloudFront path.
      const hex = createHash("sha256").update(`user:${apiKey}`).digest("hex");
      const userId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
      account = { userId, usedMilli: milli(this.options.creditsUsed) };
      this.accounts.set(apiKey, account);
    }
    return account;
  }

  quota(apiKey: string): { used: number; limit: number } {
    this.settleDue();
    return { used: this.account(apiKey).usedMilli / 1000, limit: this.options.creditsLimit };
  }

  creditsUsedTotal(): number {
    this.settleDue();
    let total = 0;
    for (const account of this.accounts.values()) total += account.usedMilli;
    return total / 1000;
  }

  /** Whether a submit is refused for credits ("reject" mode: used + price > limit). */
  lacksCredits(apiKey: string, request: SimImageRequest): boolean {
    this.settleDue();
    const price = milli(MODEL_SPECS[request.model].creditsPerImage);
    return this.account(apiKey).usedMilli + price > milli(this.options.creditsLimit);
  }

  /** Blank frames handed out so far per `blankImages` entry. */
  private readonly blanksMade = new Map<string, number>();

  private lookOf(prompt: string): SimJob["look"] {
    for (const { promptContains, first } of this.options.blankImages) {
      const made = this.blanksMade.get(promptContains) ?? 0;
      if (prompt.includes(promptContains) && made < first) {
        this.blanksMade.set(promptContains, made + 1);
        return "blank";
      }
    }
    return this.options.plainImagePrompts.some((text) => prompt.includes(text)) ? "plain" : "own";
  }

  createJob(apiKey: string, request: SimImageRequest): SimJob {
    this.settleDue();
    const now = this.now();
    const o = this.options;
    const latency = o.latencyMs[request.model] + this.faults.jitter(o.jitterMs);
    let planned: SimJob["planned"] = { kind: "complete" };
    const fault = this.faults.jobFault(o);
    if (fault === "permanent") planned = { kind: "failed", ...JOB_ERRORS.permanent };
    else if (fault === "transient") planned = { kind: "failed", ...JOB_ERRORS.transient };
    const reference = request.referenceImageUrl;
    // A host that cannot be reached, or an upload URL of this simulator whose file never arrived.
    if (reference !== undefined && (o.unreachableHosts.includes(new URL(reference).hostname) || this.uploads.missing(reference))) {
      planned = { kind: "failed", ...JOB_ERRORS.unreachable };
    }
    const job: SimJob = {
      id: randomUUID(),
      seq: ++this.seq,
      apiKey,
      userId: this.account(apiKey).userId,
      imageId: randomUUID(),
      request,
      requestHash: simRequestHash(request),
      createdAt: now,
      completesAt: now + latency,
      planned,
      outcome: null,
      look: this.lookOf(request.prompt),
    };
    this.jobs.set(job.id, job);
    this.jobsByImageId.set(job.imageId, job);
    const list = this.jobsByKey.get(apiKey) ?? [];
    list.push(job);
    this.jobsByKey.set(apiKey, list);
    this.pending.push(job);
    this.settleDue();
    return job;
  }

  /** A job of this key, or undefined (another key's job is as unknown as a made-up id). */
  job(apiKey: string, id: string): SimJob | undefined {
    this.settleDue();
    const job = this.jobs.get(id);
    return job?.apiKey === apiKey ? job : undefined;
  }

  jobByImageId(userId: string, imageId: string): SimJob | undefined {
    this.settleDue();
    const job = this.jobsByImageId.get(imageId);
    return job?.userId === userId ? job : undefined;
  }

  /** This key's jobs, newest first. */
  listJobs(apiKey: string): SimJob[] {
    this.settleDue();
    return [...(this.jobsByKey.get(apiKey) ?? [])].reverse();
  }

  status(job: SimJob): JobStatus {
    if (job.outcome === null) return "in-progress";
    if (this.now() >= job.completesAt + this.options.jobRetentionMs) return "cleaned";
    return job.outcome.kind;
  }

  /** Jobs created and not yet settled, across all keys. */
  inFlightNow(): number {
    this.settleDue();
    return this.pending.length;
  }

  settleDue(): void {
    const now = this.now();
    if (!this.pending.some((j) => j.completesAt <= now)) return;
    const due = this.pending.filter((j) => j.completesAt <= now).sort((a, b) => a.completesAt - b.completesAt || a.seq - b.seq);
    this.pending = this.pending.filter((j) => j.completesAt > now);
    for (const job of due) {
      job.outcome = this.settle(job);
      this.onSettled(job);
    }
  }

  private settle(job: SimJob): Outcome {
    if (job.planned.kind === "failed") return { kind: "failed", code: job.planned.code, message: job.planned.message };
    const account = this.account(job.apiKey);
    const price = milli(MODEL_SPECS[job.request.model].creditsPerImage);
    // The balance never goes negative: a job that would overdraw fails at no cost.
    if (account.usedMilli + price > milli(this.options.creditsLimit)) {
      return { kind: "failed", ...JOB_ERRORS.credits };
    }
    account.usedMilli += price;
    return { kind: "completed", credits: price / 1000 };
  }
}
