// The boundary between the runner and an image service. Shaped for asynchronous job
// services: submit returns a job id at once, the job is read until it is terminal.
import type { AspectRatio, ImageModel, Style } from "./catalog.js";

export const PROVIDER_NAMES = ["local", "pictory"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** The image formats a local reference image may have (by its bytes), as MIME types. */
export const REFERENCE_CONTENT_TYPES = ["image/png", "image/jpeg", "image/webp"] as const;
export type ReferenceContentType = (typeof REFERENCE_CONTENT_TYPES)[number];

/**
 * A local file given as the reference (`referenceImage:`), known by its bytes: a renamed or
 * moved file is the same request, a changed one another. Uploaded before the item is
 * submitted and sent as `referenceImageUrl` (runner/references.ts).
 */
export interface ReferenceImage {
  sha256: string;
  contentType: ReferenceContentType;
}

/** The resolved request of one item: what is sent to the service (a local reference as the URL it was uploaded to). */
export interface ImageRequest {
  prompt: string;
  model: ImageModel;
  aspectRatio: AspectRatio;
  style?: Style;
  referenceImageUrl?: string;
  referenceImage?: ReferenceImage;
}

/**
 * What goes with a submit but is no part of the request (not hashed, not stored): the URL the
 * service POSTs to when the job ends (PICTORY.md §3). The manifest's, or this run's receiver's.
 */
export interface SubmitExtras {
  webhook?: string;
}

/** A failed-job or refusal code meaning the account is out of credits: stop, resumable. */
export const INSUFFICIENT_CREDITS = "INSUFFICIENT_AI_CREDITS";

export type ImageSource = { kind: "url"; url: string } | { kind: "bytes"; bytes: Buffer };

export type JobState =
  | { status: "in-progress" }
  | {
      status: "completed";
      image: ImageSource;
      width: number;
      height: number;
      credits: number;
      /** The service's id of the image, when it can be told (so reconciliation never adopts it). */
      imageRef?: string;
    }
  | { status: "failed"; code: string; message: string; retryable: boolean }
  /** 404 or `cleaned`: the service no longer knows the job or its output. */
  | { status: "gone"; code: string; message: string };

/** What a search for a job whose create response was lost found. */
export type LostJobSearch =
  | {
      found: "image";
      imageRef: string;
      /** The job that made it, when the job list tells (so its URL can be refreshed later). */
      jobId: string | null;
      url: string;
      width: number | null;
      height: number | null;
    }
  /** A job of unknown owner is still running at the service: it may be ours, look again later. */
  | { found: "pending"; detail: string }
  | { found: "none"; detail: string };

/** Asked about each job and image a search meets: a lookup, not a list (a set will do in tests). */
export interface ClaimedRefs {
  has(ref: string): boolean | Promise<boolean>;
}

export interface LostJobSearchOptions {
  signal?: AbortSignal;
  /** Awaited before each request the search sends: the run's rate bucket (`--rpm`). */
  beforeRequest?: () => Promise<void>;
  /**
   * True for a job id or image ref this run learned of before the lost submit was sent: it
   * existed at the service then, so everything listed after it (newest first) is older than
   * the submit. Ends a listing walk after a page or two instead of at the clock-skew margin.
   */
  knownBefore?: (ref: string) => boolean;
}

/** A local file to put at the service, so that requests can name it by URL. */
export interface ReferenceUpload {
  bytes: Buffer;
  fileName: string;
  contentType: ReferenceContentType;
}

/** How a provider that takes references by URL gets a local file there (PICTORY.md §6.6). */
export interface ReferenceUploader {
  /** Where uploads live (the service's base URL): an upload is reused only at the same service. */
  readonly service: string;
  /** Puts the file at the service; its permanent URL, and the service's name for it. */
  upload(file: ReferenceUpload, signal?: AbortSignal): Promise<{ url: string; key: string | null }>;
}

export interface Provider {
  readonly name: ProviderName;
  /** Absent: the provider takes local references as files (the local renderer) and uploads nothing. */
  readonly references?: ReferenceUploader;
  /** Names the account's key without holding it (a hash): workers sharing a run share its limits. */
  readonly keyId: string;
  /** How long after a submit (and between polls) the first read of a job waits. */
  readonly pollIntervalMs: number;
  submit(request: ImageRequest, signal?: AbortSignal, extras?: SubmitExtras): Promise<{ jobId: string }>;
  /** The request rides along so a stateless provider (local) can answer without memory. */
  getJob(job: { jobId: string; request: ImageRequest }, signal?: AbortSignal): Promise<JobState>;
  /**
   * Look for the job of a submit whose response never arrived (reset, timeout, 5xx after
   * sending). `claimed` tells the job ids and image refs other items already own, so two
   * identical requests (variants) never adopt the same image.
   */
  findLostJob(request: ImageRequest, submittedAtMs: number, claimed: ClaimedRefs, options?: LostJobSearchOptions): Promise<LostJobSearch>;
  /**
   * One cheap request before any submit, so a bad key costs one request instead of one per
   * slot, and the run knows the credits left. Throws FatalRunError on a refused key.
   */
  preflight(signal?: AbortSignal): Promise<{ creditsRemaining: number | null }>;
  close(): Promise<void>;
}
