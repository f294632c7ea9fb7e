// The Pictory AI Studio adapter (PICTORY.md). One keep-alive pool, explicit timeouts, the
// raw key in `Authorization` (no Bearer), and every answer classified once, here, into a
// value or one of the error classes in errors.ts. Headers are never echoed: the key is in them.
import { createHash } from "node:crypto";
import { Pool } from "undici";
import { FatalRunError, PermanentError, ServiceError, ThrottledError } from "../errors.js";
import { maskSecrets } from "../log.js";
import { RETRYABLE_ERROR_CODES } from "../retryable.js";
import { promptProblem, isHttpUrl } from "./catalog.js";
import { asObject, createdBefore, imageIdFromUrl, MAX_CREDITS_PER_IMAGE, num, parseRetryAfterMs, safeJson, sameRequest, str, type Json } from "./pictory-json.js";
import { PictoryUploader } from "./pictory-upload.js";
import { INSUFFICIENT_CREDITS, type ClaimedRefs, type ImageRequest, type JobState, type LostJobSearch, type LostJobSearchOptions, type Provider, type ReferenceUploader, type SubmitExtras } from "./provider.js";

export interface PictoryOptions {
  apiKey: string;
  baseUrl: string;
  pollIntervalMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connections: number;
  /** Failed-job codes worth another attempt (PICTORY.md Unknown 9: the real codes are undocumented). */
  retryableJobCodes: ReadonlySet<string>;
  /** How far back of a lost submit's time an image may be dated and still be its result. */
  clockSkewMs: number;
  userAgent: string;
}

export const DEFAULT_RETRYABLE_JOB_CODES: ReadonlySet<string> = new Set(["IMAGE_GENERATION_FAILED", "INTERNAL_ERROR", "TIMEOUT"]);

/** Errors that mean the request never reached the service, so no job can exist. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

export class PictoryProvider implements Provider {
  readonly name = "pictory" as const;
  readonly pollIntervalMs: number;
  private readonly pool: Pool;
  private readonly basePath: string;
  /** The base URL without any user info, for messages. */
  private readonly baseLabel: string;
  /** Local reference images go up through the media API (PICTORY.md §6.6). */
  readonly references: ReferenceUploader;

  /** The key's sha256, shortened: the shared run's limits are per key, and the key is never stored. */
  readonly keyId: string;

  constructor(private readonly options: PictoryOptions) {
    this.keyId = createHash("sha256").update(options.apiKey).digest("hex").slice(0, 32);
    this.pollIntervalMs = options.pollIntervalMs;
    const base = new URL(options.baseUrl);
    this.basePath = base.pathname.replace(/\/+$/, "");
    this.baseLabel = `${base.origin}${this.basePath}`;
    this.pool = new Pool(base.origin, {
      connections: options.connections,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
    });
    this.references = new PictoryUploader((method, route, body, signal) => this.call(method, route, body, signal), this.baseLabel, options);
  }

  /** Client-side checks (PICTORY.md §1.2), so a request the service would refuse is never sent. */
  static checkRequest(request: ImageRequest): void {
    const problems: { name: string; errors: string }[] = [];
    const promptIssue = promptProblem(request.prompt);
    if (promptIssue) problems.push({ name: "prompt", errors: promptIssue });
    if (request.referenceImageUrl !== undefined && !isHttpUrl(request.referenceImageUrl)) {
      problems.push({ name: "referenceImageUrl", errors: "must be an absolute http(s) URL" });
    }
    // A local file goes as the URL it was uploaded to (runner/references.ts), never without it.
    if (request.referenceImage !== undefined && request.referenceImageUrl === undefined) problems.push({ name: "referenceImage", errors: "was not uploaded before the submit" });
    if (problems.length > 0) {
      throw new PermanentError(problems.map((p) => `${p.name} ${p.errors}`).join("; "), "INVALID_REQUEST_BODY", undefined, problems);
    }
  }

  async submit(request: ImageRequest, signal?: AbortSignal, extras: SubmitExtras = {}): Promise<{ jobId: string }> {
    PictoryProvider.checkRequest(request);
    const body: Json = { prompt: request.prompt, model: request.model, aspectRatio: request.aspectRatio };
    if (request.style) body.style = request.style;
    if (request.referenceImageUrl) body.referenceImageUrl = request.referenceImageUrl;
    if (extras.webhook) body.webhook = extras.webhook;
    const json = await this.call("POST", "/v1/aistudio/images", body, signal);
    const jobId = str(asObject(json.data)?.jobId);
    if (json.success !== true || !jobId) {
      // The job may exist: reconcile rather than assume it does not.
      throw new ServiceError("create answered 200 without a jobId", "BAD_RESPONSE", { retryable: true, maybeCreated: true });
    }
    return { jobId };
  }

  async getJob(job: { jobId: string }, signal?: AbortSignal): Promise<JobState> {
    let json: Json;
    try {
      json = await this.call("GET", `/v1/jobs/${encodeURIComponent(job.jobId)}`, undefined, signal);
    } catch (error) {
      if (error instanceof ServiceError && error.httpStatus === 404) return { status: "gone", code: "JOB_NOT_FOUND", message: "job not found (404)" };
      throw error;
    }
    return this.parseJob(json);
  }

  private parseJob(json: Json): JobState {
    const data = asObject(json.data);
    const status = str(data?.status);
    // A body that says nothing (`{}`, no data.status) is a failed read, not "in progress":
    // the runner counts it against the item, so a broken answer cannot keep a run going.
    if (!data || status === null) throw new ServiceError("job read answered without data.status", "BAD_RESPONSE", { retryable: true });
    switch (status) {
      case "completed": {
        const url = str(data.url);
        const width = num(data.width);
        const height = num(data.height);
        if (!url || width === null || height === null || width <= 0 || height <= 0) {
          throw new ServiceError("completed job without url/width/height", "BAD_RESPONSE", { retryable: true });
        }
        const credits = data.aiCreditsUsed === undefined || data.aiCreditsUsed === null ? 0 : num(data.aiCreditsUsed);
        if (credits === null || credits < 0 || credits > MAX_CREDITS_PER_IMAGE) {
          throw new ServiceError(`completed job with aiCreditsUsed ${maskSecrets(JSON.stringify(data.aiCreditsUsed)).slice(0, 40)}, not a price`, "BAD_RESPONSE", { retryable: true });
        }
        const imageRef = imageIdFromUrl(url) ?? undefined;
        return { status: "completed", image: { kind: "url", url }, width, height, credits, imageRef };
      }
      case "failed": {
        const code = maskSecrets(str(data.error_code) ?? str(json.error_code) ?? "JOB_FAILED");
        const message = maskSecrets(str(data.error_message) ?? str(json.error_message) ?? "the service reported the job failed");
        return { status: "failed", code, message, retryable: this.options.retryableJobCodes.has(code) };
      }
      case "cleaned":
        return { status: "gone", code: "JOB_CLEANED", message: "the service cleaned the job after its retention period" };
      default:
        // in-progress, and a status we do not know: not terminal. The job timeout bounds both.
        return { status: "in-progress" };
    }
  }

  async findLostJob(request: ImageRequest, submittedAtMs: number, claimed: ClaimedRefs, options: LostJobSearchOptions = {}): Promise<LostJobSearch> {
    const { signal, beforeRequest = async () => {}, knownBefore = () => false } = options;
    const since = submittedAtMs - this.options.clockSkewMs;
    // 1. The job list first, newest first back to the submit. Read in this order, a job
    // that finishes between the two reads is in progress here and its image is listed
    // below: never missed by both (the reverse order loses it). Unclaimed jobs still
    // running may be ours; unclaimed finished ones are matched to images below.
    const unclaimedDone = new Map<string, string>(); // image id → job id
    const ownedImages = new Set<string>();
    let pending = 0;
    // Jobs listed since the submit that may be ours: unclaimed, or without an id to tell.
    let unaccounted = 0;
    let reachedOlder = false;
    for await (const item of this.pages("/v1/jobs", beforeRequest, signal)) {
      const data = asObject(item.data);
      const jobId = data ? (str(data.jobId) ?? str(item.job_id)) : null;
      if (jobId && knownBefore(jobId)) {
        reachedOlder = true;
        break;
      }
      if (data && createdBefore(str(data.createdAt) ?? str(item.created_at), since)) break;
      if (!data || !jobId) {
        unaccounted++;
        continue;
      }
      const url = str(data.url);
      const imageId = url ? imageIdFromUrl(url) : null;
      if (await claimed.has(jobId)) {
        if (imageId) ownedImages.add(imageId);
        continue;
      }
      unaccounted++;
      if (str(data.status) === "in-progress") pending++;
      else if (imageId) unclaimedDone.set(imageId, jobId);
    }
    // The job list covers every job of the key (PICTORY.md §4.1): when it was read back to a
    // job older than the submit and each one since belongs to another item, the submit made
    // no job, so no image either; the image list need not be read.
    if (reachedOlder && unaccounted === 0) return { found: "none", detail: "every job since the submit belongs to another item" };
    // 2. Finished images that echo this request, made after the submit, owned by no item.
    // One made by a job another item owns (a variant that has not read its job yet) is
    // not ours: adopting it would deliver one picture twice.
    // Matches whose job the list did not name, each with the refs it goes by.
    const unnamed: { match: Extract<LostJobSearch, { found: "image" }>; refs: string[] }[] = [];
    for await (const image of this.pages("/v1/aistudio/images", beforeRequest, signal)) {
      if (createdBefore(str(image.createdDate), since)) break;
      const id = str(image.id);
      const url = str(image.url);
      if (!id || !url) continue;
      const ids = [id, imageIdFromUrl(url) ?? id];
      if (ids.some((ref) => knownBefore(ref))) break;
      if (!sameRequest(image, request)) continue;
      if (ids.some((i) => ownedImages.has(i)) || (await anyClaimed(claimed, ids))) continue;
      const found = { found: "image" as const, imageRef: id, url, width: num(image.width), height: num(image.height) };
      const jobId = ids.map((i) => unclaimedDone.get(i)).find((j) => j !== undefined);
      // Asked again: the job was unclaimed when the job list was read, but another item may
      // have stored it while the pages since were fetched (its submit answered meanwhile).
      if (jobId && (await claimed.has(jobId))) continue;
      if (jobId) return { ...found, jobId };
      unnamed.push({ match: { ...found, jobId: null }, refs: ids });
    }
    // A match whose job the list did not name (its item shape is undocumented): adopt it
    // only when no unknown job is still running, which could be the one that made it, and
    // only if no item claimed it while later pages were read.
    if (pending > 0) return { found: "pending", detail: `${pending} job(s) of unknown owner still in progress` };
    for (const { match, refs } of unnamed) if (!(await anyClaimed(claimed, refs))) return match;
    return { found: "none", detail: "no matching image and no unknown job in progress" };
  }

  /** The items of a listing, page by page (at most 20 pages: a lost submit is recent). */
  private async *pages(route: string, beforeRequest: () => Promise<void>, signal?: AbortSignal): AsyncGenerator<Json> {
    let pageKey: string | null = null;
    for (let page = 0; page < 20; page++) {
      await beforeRequest();
      const json = await this.call("GET", `${route}${pageKey ? `?nextPageKey=${encodeURIComponent(pageKey)}` : ""}`, undefined, signal);
      for (const raw of Array.isArray(json.items) ? json.items : []) {
        const item = asObject(raw);
        if (item) yield item;
      }
      pageKey = str(json.nextPageKey);
      if (!pageKey) return;
    }
  }


  /** `GET /v1/quota` (a bare object, PICTORY.md §4.3): checks the key, reads the credits left. */
  async preflight(signal?: AbortSignal): Promise<{ creditsRemaining: number | null }> {
    const json = await this.call("GET", "/v1/quota", undefined, signal);
    const credits = asObject(json.aiCredits);
    const used = num(credits?.used);
    const limit = num(credits?.limit);
    return { creditsRemaining: used !== null && limit !== null ? Math.max(0, limit - used) : null };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** One request, its answer classified. Returns the parsed JSON of a 200. */
  private async call(method: "GET" | "POST", route: string, body: Json | undefined, signal?: AbortSignal): Promise<Json> {
    const headers: Record<string, string> = { authorization: this.options.apiKey, "user-agent": this.options.userAgent, accept: "application/json" };
    if (body) headers["content-type"] = "application/json";
    let response;
    try {
      response = await this.pool.request({ method, path: `${this.basePath}${route}`, headers, body: body ? JSON.stringify(body) : undefined, signal });
    } catch (error) {
      throw this.networkError(method, route, error);
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw this.networkError(method, route, error);
    }
    const json = safeJson(text);
    const status = response.statusCode;
    if (status === 200 || status === 201 || status === 202) {
      if (!json) throw new ServiceError(`${method} ${route}: answer is not JSON`, "BAD_RESPONSE", { httpStatus: status, retryable: true, maybeCreated: method === "POST" });
      return json;
    }
    const message = maskSecrets(str(json?.message) ?? str(asObject(json?.data)?.error_message) ?? text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200));
    const code = maskSecrets(str(json?.code));
    if (status === 400) {
      if (code === INSUFFICIENT_CREDITS) {
        throw new FatalRunError(`the Pictory account has too few AI credits left (${message}); stopped submitting — top up and run again`, INSUFFICIENT_CREDITS, 3);
      }
      const fields = Array.isArray(json?.fields) ? (json!.fields as unknown[]).map(asObject).filter((f): f is Json => f !== null) : [];
      // Field texts are the service's words: they may echo the key (secrets.ts).
      const reasons = fields.map((f) => ({ name: maskSecrets(str(f.name) ?? "?"), errors: maskSecrets(str(f.errors) ?? JSON.stringify(f.errors) ?? "") }));
      const detail = reasons.length ? `: ${reasons.map((r) => `${r.name} ${r.errors}`).join("; ")}` : "";
      throw new PermanentError(`the service refused the request (400 ${code ?? "INVALID_REQUEST"}) ${message}${detail}`, code ?? "INVALID_REQUEST_BODY", 400, reasons);
    }
    if (status === 401) {
      throw new FatalRunError("the Pictory API refused the key (401 Unauthorized): check PICTORY_API_KEY (the raw pictai_ key, no Bearer prefix)", "UNAUTHORIZED", 1);
    }
    if (status === 403) {
      throw new FatalRunError(`the Pictory API answered 403 Forbidden (${message || "blocked"}): the key lacks access or a firewall blocked the client`, "FORBIDDEN", 1);
    }
    if (status === 404 && method === "POST") {
      // The create route always exists: a 404 there means the base URL is wrong, and every
      // further item would fail the same way.
      throw new FatalRunError(`the Pictory API answered 404 for ${method} ${route}: check PICTORY_BASE_URL (${this.baseLabel})`, "NOT_FOUND", 1);
    }
    if (status === 429) throw new ThrottledError(`${method} ${route}: 429 ${message}`, parseRetryAfterMs(response.headers["retry-after"]));
    if (status >= 500) {
      throw new ServiceError(`${method} ${route}: HTTP ${status} ${message}`.trim(), `HTTP_${status}`, { httpStatus: status, retryable: true, maybeCreated: method === "POST" });
    }
    throw new ServiceError(`${method} ${route}: HTTP ${status} ${message}`.trim(), `HTTP_${status}`, { httpStatus: status, retryable: false });
  }

  private networkError(method: string, route: string, error: unknown): Error {
    const code = String((error as { code?: unknown }).code ?? "");
    if ((error as Error).name === "AbortError" || code === "UND_ERR_ABORTED" || code === "ABORT_ERR") return error as Error;
    const known = RETRYABLE_ERROR_CODES.has(code) ? code : "NETWORK_ERROR";
    return new ServiceError(`${method} ${route}: ${maskSecrets((error as Error).message ?? String(error))}`, known, {
      retryable: true,
      maybeCreated: method === "POST" && !NOT_SENT_CODES.has(code),
      cause: error,
    });
  }
}

/** Whether a listing's timestamp is before `sinceMs` (newest-first listings stop there). */
async function anyClaimed(claimed: ClaimedRefs, refs: readonly string[]): Promise<boolean> {
  for (const ref of refs) if (await claimed.has(ref)) return true;
  return false;
}

export { imageIdFromUrl, parseRetryAfterMs } from "./pictory-json.js";
