// Options of the Pictory simulator: defaults, and validation of a JSON config file (or of a
// runtime `configure()` call) that names every bad key instead of stopping at the first.
import { readFileSync } from "node:fs";
import { IMAGE_MODELS, type ImageModel } from "../providers/catalog.js";

export const FAULT_ROUTES = ["submit", "job", "list", "images", "quota", "file", "generateurl", "upload"] as const;
export type FaultRoute = (typeof FAULT_ROUTES)[number];

export const API_KEY_PATTERN = /^pictai_[A-Za-z0-9_-]+$/;

export interface SimOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Keys accepted in `Authorization` (raw, no Bearer). Each must match API_KEY_PATTERN. */
  apiKeys: string[];
  /** Seed of the PRNG that decides every fault, so a run can be replayed. */
  seed: number;
  /** Time from submit to completion per model; the sim completes jobs lazily from the clock. */
  latencyMs: Record<ImageModel, number>;
  /** Uniform extra latency in [0, jitterMs). */
  jitterMs: number;
  /** Page size of GET /v1/jobs. */
  pageSize: number;
  /** Page size of GET /v1/aistudio/images (the docs say "up to 100"). */
  imagesPageSize: number;
  /** AI credits limit per key, and the credits already used when the sim starts. */
  creditsLimit: number;
  creditsUsed: number;
  /** "reject": 400 INSUFFICIENT_AI_CREDITS at submit. "fail-job": accept, fail the job. */
  insufficientCredits: "reject" | "fail-job";
  /** Token bucket per key over all API routes; 0 = off. Burst defaults to rpm. */
  rpm: number;
  rpmBurst: number;
  /** Retry-After sent with injected 429s. */
  retryAfterSeconds: number;
  /** Probabilities (0..1) of HTTP faults, rolled once per request on the routes in faultRoutes. */
  rate429: number;
  rate429NoRetryAfter: number;
  rate500: number;
  rate502: number;
  rate503: number;
  rateReset: number;
  faultRoutes: FaultRoute[];
  /** Submit creates the job, then the response is lost (socket dropped or 502). */
  rateLostCreate: number;
  /** Job fails with IMAGE_GENERATION_FAILED / CONTENT_POLICY_VIOLATION. */
  rateJobFailTransient: number;
  rateJobFailPermanent: number;
  /** References to these hosts fail the job with REFERENCE_IMAGE_UNREACHABLE. */
  unreachableHosts: string[];
  /** Download faults. */
  rateSlowDownload: number;
  slowDownloadChunkDelayMs: number;
  rateTruncatedDownload: number;
  rateWrongContentType: number;
  /** Lifetime of a signed download URL; a job re-read before then gets a fresh one. */
  urlTtlMs: number;
  /** Lifetime of a signed upload URL from POST /v1/media/generateurl (PICTORY.md §6.6: 24 h). */
  uploadUrlTtlMs: number;
  /** The signed PUT of a file whose name contains one of these answers 500 every time (a failed upload). */
  failUploadsNamed: string[];
  /** After completion (or failure) plus this, the job reads `cleaned` and its file is gone. */
  jobRetentionMs: number;
  /** Webhook faults (the delivery itself is one POST, 5 s timeout, response ignored). */
  rateWebhookDuplicate: number;
  rateWebhookDrop: number;
  rateWebhookDelay: number;
  webhookDelayMs: number;
  /** 400 for referenceImageUrl with flux-schnell (vendor render notes, Unknown 20). */
  rejectReferenceWithFlux: boolean;
  /** Every API request gets Cloudflare's 403 error-1010 HTML page. */
  forbiddenHtml: boolean;
  /** User-Agent substrings (case-insensitive) that get the Cloudflare 1010 page. */
  blockedUserAgents: string[];
  /**
   * Images for the quality gates' tests: the first `first` jobs whose prompt contains a text
   * come out as flat black frames (`blank`); every job of a prompt containing a `plain` text
   * gets the same image (near-duplicate variants).
   */
  blankImages: { promptContains: string; first: number }[];
  plainImagePrompts: string[];
  /** 400 `fields[].errors` and failed jobs' `error_message` echo the caller's key and its part after `pictai_` (redaction tests). */
  echoKeyInErrors: boolean;
}

/** What a config file, `startSimulator` or `configure` may set: any subset, latency per model. */
export type SimOptionsPatch = Partial<Omit<SimOptions, "latencyMs">> & { latencyMs?: Partial<Record<ImageModel, number>> };

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  host: "127.0.0.1",
  port: 0,
  apiKeys: ["pictai_simkey"],
  seed: 1,
  latencyMs: { "flux-schnell": 2_000, "seedream3.0": 5_000, nanobanana: 8_000, "nanobanana-pro": 15_000 },
  jitterMs: 1_000,
  pageSize: 20,
  imagesPageSize: 100,
  creditsLimit: 22_000,
  creditsUsed: 0,
  insufficientCredits: "reject",
  rpm: 0,
  rpmBurst: 0,
  retryAfterSeconds: 1,
  rate429: 0,
  rate429NoRetryAfter: 0,
  rate500: 0,
  rate502: 0,
  rate503: 0,
  rateReset: 0,
  faultRoutes: [...FAULT_ROUTES],
  rateLostCreate: 0,
  rateJobFailTransient: 0,
  rateJobFailPermanent: 0,
  unreachableHosts: ["unreachable.invalid"],
  rateSlowDownload: 0,
  slowDownloadChunkDelayMs: 200,
  rateTruncatedDownload: 0,
  rateWrongContentType: 0,
  urlTtlMs: 60 * 60_000,
  uploadUrlTtlMs: 24 * 60 * 60_000,
  failUploadsNamed: [],
  jobRetentionMs: 24 * 60 * 60_000,
  rateWebhookDuplicate: 0,
  rateWebhookDrop: 0,
  rateWebhookDelay: 0,
  webhookDelayMs: 2_000,
  rejectReferenceWithFlux: false,
  forbiddenHtml: false,
  blockedUserAgents: ["python-urllib"],
  blankImages: [],
  plainImagePrompts: [],
  echoKeyInErrors: false,
};

type Check = (value: unknown) => string | null;

const probability: Check = (v) => (typeof v === "number" && v >= 0 && v <= 1 ? null : "must be a number from 0 to 1");
const nonNegative: Check = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "must be a number >= 0");
const positiveInt: Check = (v) => (Number.isInteger(v) && (v as number) > 0 ? null : "must be an integer > 0");
const boolean: Check = (v) => (typeof v === "boolean" ? null : "must be true or false");
const stringList: Check = (v) =>
  Array.isArray(v) && v.every((s) => typeof s === "string") ? null : "must be an array of strings";
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === "string" && values.includes(v) ? null : `must be one of ${values.join(", ")}`;

const CHECKS: Record<keyof SimOptions, Check> = {
  host: (v) => (typeof v === "string" && v.length > 0 ? null : "must be a non-empty string"),
  port: (v) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? null : "must be an integer 0-65535"),
  apiKeys: (v) => {
    if (stringList(v) !== null || (v as string[]).length === 0) return "must be a non-empty array of strings";
    const bad = (v as string[]).filter((k) => !API_KEY_PATTERN.test(k));
    return bad.length === 0 ? null : `keys must match ${API_KEY_PATTERN.source} (bad: ${bad.length})`;
  },
  seed: (v) => (Number.isInteger(v) ? null : "must be an integer"),
  latencyMs: (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return "must be an object {model: ms}";
    const problems = Object.entries(v).flatMap(([model, ms]) => {
      if (!(IMAGE_MODELS as readonly string[]).includes(model)) return [`unknown model "${model}" (known: ${IMAGE_MODELS.join(", ")})`];
      return nonNegative(ms) === null ? [] : [`${model} must be a number >= 0`];
    });
    return problems.length === 0 ? null : problems.join("; ");
  },
  jitterMs: nonNegative,
  pageSize: positiveInt,
  imagesPageSize: positiveInt,
  creditsLimit: nonNegative,
  creditsUsed: nonNegative,
  insufficientCredits: oneOf(["reject", "fail-job"]),
  rpm: nonNegative,
  rpmBurst: nonNegative,
  retryAfterSeconds: (v) => (Number.isInteger(v) && (v as number) >= 0 ? null : "must be an integer >= 0"),
  rate429: probability,
  rate429NoRetryAfter: probability,
  rate500: probability,
  rate502: probability,
  rate503: probability,
  rateReset: probability,
  faultRoutes: (v) =>
    Array.isArray(v) && v.every((r) => (FAULT_ROUTES as readonly string[]).includes(r))
      ? null
      : `must be an array of ${FAULT_ROUTES.join(", ")}`,
  rateLostCreate: probability,
  rateJobFailTransient: probability,
  rateJobFailPermanent: probability,
  unreachableHosts: stringList,
  rateSlowDownload: probability,
  slowDownloadChunkDelayMs: nonNegative,
  rateTruncatedDownload: probability,
  rateWrongContentType: probability,
  urlTtlMs: nonNegative,
  uploadUrlTtlMs: nonNegative,
  failUploadsNamed: stringList,
  jobRetentionMs: nonNegative,
  rateWebhookDuplicate: probability,
  rateWebhookDrop: probability,
  rateWebhookDelay: probability,
  webhookDelayMs: nonNegative,
  rejectReferenceWithFlux: boolean,
  forbiddenHtml: boolean,
  blockedUserAgents: stringList,
  blankImages: (v) =>
    Array.isArray(v) && v.every((b) => typeof b === "object" && b !== null && typeof (b as { promptContains?: unknown }).promptContains === "string" && Number.isInteger((b as { first?: unknown }).first))
      ? null
      : "must be an array of { promptContains: string, first: integer }",
  plainImagePrompts: stringList,
  echoKeyInErrors: boolean,
};

export const SIM_OPTION_KEYS = Object.keys(CHECKS) as (keyof SimOptions)[];

/** Every problem of a partial options object, each naming its key. Empty when valid. */
export function simOptionProblems(raw: unknown): string[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return ["must be a JSON object"];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const check = (CHECKS as Record<string, Check | undefined>)[key];
    if (check === undefined) {
      problems.push(`unknown key "${key}" (known keys: ${SIM_OPTION_KEYS.join(", ")})`);
      continue;
    }
    const problem = check(value);
    if (problem !== null) problems.push(`"${key}" ${problem}`);
  }
  return problems;
}

/** Validates a partial options object; throws one Error listing every problem. */
export function parseSimOptions(raw: unknown, source: string): SimOptionsPatch {
  const problems = simOptionProblems(raw);
  if (problems.length > 0) {
    throw new Error(`${source}: invalid simulator config:\n  - ${problems.join("\n  - ")}`);
  }
  return raw as SimOptionsPatch;
}

/** Reads a JSON config file for `imgbatch sim --config FILE`. */
export function loadSimConfig(path: string): SimOptionsPatch {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${path}: cannot read simulator config: ${(error as Error).message}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: simulator config is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseSimOptions(raw, path);
}

/** Defaults ← base ← patch; latencyMs merges per model. */
export function mergeSimOptions(base: SimOptions, patch: SimOptionsPatch): SimOptions {
  const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as SimOptionsPatch;
  return { ...base, ...defined, latencyMs: { ...base.latencyMs, ...defined.latencyMs } };
}
