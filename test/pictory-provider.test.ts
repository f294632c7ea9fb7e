// The Pictory adapter against the real simulator on loopback: every answer must come out
// classified the way the runner relies on (error class, code, retryable, maybeCreated,
// httpStatus, retryAfterMs, exitCode). Job progress is driven by the sim's clock (advance).
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { FatalRunError, PermanentError, ServiceError, ThrottledError } from "../src/errors.js";
import { DEFAULT_RETRYABLE_JOB_CODES, PictoryProvider, imageIdFromUrl } from "../src/providers/pictory.js";
import type { ImageRequest, JobState, LostJobSearch, Provider } from "../src/providers/provider.js";
import { RETRYABLE_ERROR_CODES } from "../src/retryable.js";
import { classifyFailure } from "../src/runner/retry-policy.js";
import { simRequestHash, startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { closeServer, sameLatencyForAllModels, useCleanup } from "./helpers/cleanup.js";

const LATENCY_MS = 5_000;

const cleanup = useCleanup();

async function sim(options: SimOptionsPatch = {}): Promise<SimHandle> {
  const handle = await startSimulator({ ...sameLatencyForAllModels(LATENCY_MS), ...options });
  cleanup(handle, (h) => h.stop());
  return handle;
}

/** Typed as the runner sees it: the Provider interface. */
function provider(baseUrl: string, apiKey: string, overrides: { userAgent?: string; headersTimeoutMs?: number } = {}): Provider {
  const p = new PictoryProvider({
    apiKey,
    baseUrl,
    pollIntervalMs: 10,
    connectTimeoutMs: 2000,
    headersTimeoutMs: overrides.headersTimeoutMs ?? 2000,
    bodyTimeoutMs: 2000,
    connections: 4,
    retryableJobCodes: DEFAULT_RETRYABLE_JOB_CODES,
    clockSkewMs: 60_000,
    userAgent: overrides.userAgent ?? "imgbatch-test",
  });
  cleanup(p, (x) => x.close());
  return p;
}

async function simAndProvider(options: SimOptionsPatch = {}): Promise<{ s: SimHandle; p: Provider }> {
  const s = await sim(options);
  return { s, p: provider(s.url, s.apiKey) };
}

/** The rejection of a promise that must reject. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, it succeeded");
}

const REQUEST: ImageRequest = { prompt: "A lighthouse on a cliff at dawn", model: "seedream3.0", aspectRatio: "1:1" };

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function expectCompleted(job: JobState): Extract<JobState, { status: "completed" }> {
  expect(job.status).toBe("completed");
  return job as Extract<JobState, { status: "completed" }>;
}

function expectImage(found: LostJobSearch): Extract<LostJobSearch, { found: "image" }> {
  expect(found.found).toBe("image");
  return found as Extract<LostJobSearch, { found: "image" }>;
}

describe("submit and getJob", () => {
  it.each([
    { model: "seedream3.0", aspectRatio: "1:1", width: 1024, height: 1024, credits: 2 },
    { model: "flux-schnell", aspectRatio: "16:9", width: 1280, height: 720, credits: 0.6 },
    { model: "nanobanana", aspectRatio: "9:16", width: 720, height: 1280, credits: 4 },
    { model: "nanobanana-pro", aspectRatio: "1:1", width: 1024, height: 1024, credits: 14 },
  ] as const)("$model $aspectRatio: job id, in-progress, then completed $width×$height for $credits credits", async ({ model, aspectRatio, width, height, credits }) => {
    const { s, p } = await simAndProvider();
    const request: ImageRequest = { prompt: "A red fox in fresh snow", model, aspectRatio, style: "photorealistic" };
    const { jobId } = await p.submit(request);
    expect(jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    expect(await p.getJob({ jobId, request })).toEqual({ status: "in-progress" });
    s.advance(LATENCY_MS);
    const job = expectCompleted(await p.getJob({ jobId, request }));
    expect(job).toMatchObject({ width, height, credits });
    expect(job.image.kind).toBe("url");
    const url = job.image.kind === "url" ? job.image.url : "";
    expect(url.startsWith(`${s.origin}/files/images/user/`)).toBe(true);
    const simJob = s.state.job(s.apiKey, jobId)!;
    expect(job.imageRef).toBe(simJob.imageId);
    expect(imageIdFromUrl(url)).toBe(simJob.imageId);
    // The history's image id is not the job id (Unknown 18): imageRef must not be the job id.
    expect(job.imageRef).not.toBe(jobId);

    const ledger = s.ledger();
    expect(ledger.jobsCreated).toBe(1);
    expect(ledger.jobsByRequestHash).toEqual({ [simRequestHash(request)]: 1 });
    expect(ledger.requestsByRoute["POST /v1/aistudio/images"]).toBe(1);
    expect(ledger.creditsUsed).toBe(credits);
  });

  it("sends the raw key (no Bearer), a User-Agent and a JSON body with only the request fields", async () => {
    const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(req.method === "POST" ? JSON.stringify({ success: true, data: { jobId: "job-1" } }) : JSON.stringify({ job_id: "job-1", success: true, data: { status: "in-progress" } }));
      });
    });
    cleanup(server, closeServer);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const p = provider(`http://127.0.0.1:${port}/pictoryapis/`, "pictai_headercheck");

    const request: ImageRequest = { ...REQUEST, referenceImageUrl: "https://example.com/ref.png" };
    expect(await p.submit(request)).toEqual({ jobId: "job-1" });
    expect(await p.getJob({ jobId: "job-1", request })).toEqual({ status: "in-progress" });

    expect(seen).toHaveLength(2);
    const [post, get] = seen;
    expect(post).toMatchObject({ method: "POST", url: "/pictoryapis/v1/aistudio/images" });
    expect(post!.headers.authorization).toBe("pictai_headercheck");
    expect(post!.headers["user-agent"]).toBe("imgbatch-test");
    expect(post!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(post!.body)).toEqual({ prompt: REQUEST.prompt, model: "seedream3.0", aspectRatio: "1:1", referenceImageUrl: "https://example.com/ref.png" });
    expect(get).toMatchObject({ method: "GET", url: "/pictoryapis/v1/jobs/job-1" });
    expect(get!.headers.authorization).toBe("pictai_headercheck");
    expect(get!.headers["user-agent"]).toBe("imgbatch-test");
  });

  it("the sim accepts the key as sent, so it is raw (a Bearer prefix would be 401)", async () => {
    const { s, p } = await simAndProvider();
    await p.submit(REQUEST);
    expect(s.ledger().responsesByStatus).toEqual({ "200": 1 });
  });

  it.each([
    ["no jobId", JSON.stringify({ success: true, data: {} })],
    ["success false", JSON.stringify({ success: false, data: { jobId: "x" } })],
    ["not JSON", "<html>ok</html>"],
  ])("a 200 create answer with %s is retryable and maybe created", async (_label, body) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
    cleanup(server, closeServer);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const error = await rejection(provider(`http://127.0.0.1:${port}/pictoryapis`, "pictai_x").submit(REQUEST));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: "BAD_RESPONSE", retryable: true, maybeCreated: true });
  });
});

describe("validation", () => {
  it("a 400 from the service is a PermanentError naming the fields", async () => {
    const { s, p } = await simAndProvider({ rejectReferenceWithFlux: true });
    const error = await rejection(p.submit({ prompt: "A cat on a bench", model: "flux-schnell", aspectRatio: "1:1", referenceImageUrl: "https://example.com/dog.png" }));
    expect(error).toBeInstanceOf(PermanentError);
    const e = error as PermanentError;
    expect(e).toMatchObject({ code: "INVALID_REQUEST_BODY", httpStatus: 400, retryable: false, maybeCreated: false });
    expect(e.message).toContain("referenceImageUrl");
    expect(e.message).toContain("not supported by model flux-schnell");
    expect(e.fields).toEqual([{ name: "referenceImageUrl", errors: expect.stringContaining("flux-schnell") }]);
    expect(classifyFailure(e).kind).toBe("permanent");
    expect(s.ledger().jobsCreated).toBe(0);
  });

  it("client-side checks refuse a bad request without sending anything", async () => {
    const { s, p } = await simAndProvider();
    const error = await rejection(p.submit({ ...REQUEST, prompt: "hey", referenceImageUrl: "not a url" }));
    expect(error).toBeInstanceOf(PermanentError);
    const e = error as PermanentError;
    expect(e.code).toBe("INVALID_REQUEST_BODY");
    expect(e.fields.map((f) => f.name)).toEqual(["prompt", "referenceImageUrl"]);
    expect(e.message).toMatch(/prompt must be at least 5 characters/);
    const ledger = s.ledger();
    expect(ledger.requestsByRoute).toEqual({});
    expect(ledger.jobsCreated).toBe(0);
  });

  it("counts the prompt minimum in code points, not UTF-16 units", async () => {
    const { s, p } = await simAndProvider();
    // 4 emoji are 8 UTF-16 units: the sim would accept them, the client conservatively does not.
    await expect(p.submit({ ...REQUEST, prompt: "🦊🦊🦊🦊" })).rejects.toBeInstanceOf(PermanentError);
    expect(s.ledger().requestsByRoute).toEqual({});
  });
});

describe("run-stopping answers", () => {
  it("a wrong key is FatalRunError UNAUTHORIZED, exit 1, on submit and on getJob, and the message hides the key", async () => {
    const s = await sim();
    const key = "pictai_wrongkey_9f8e7d";
    const p = provider(s.url, key);
    for (const call of [p.submit(REQUEST), p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST })]) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(FatalRunError);
      expect(error).toMatchObject({ code: "UNAUTHORIZED", exitCode: 1 });
      expect((error as Error).message).not.toContain(key);
      expect((error as Error).message).not.toContain("wrongkey");
      expect(classifyFailure(error).kind).toBe("fatal");
    }
    expect(s.ledger().responsesByStatus).toEqual({ "401": 2 });
  });

  it("Cloudflare's 403 HTML page is FatalRunError FORBIDDEN, exit 1, with no HTML in the message", async () => {
    const { p } = await simAndProvider({ forbiddenHtml: true });
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(FatalRunError);
    expect(error).toMatchObject({ code: "FORBIDDEN", exitCode: 1 });
    const message = (error as Error).message;
    expect(message).not.toMatch(/<[^>]*>/);
    expect(message).not.toMatch(/DOCTYPE|<|>/);
    expect(message).toContain("1010");
  });

  it("a blocked User-Agent gets the same 403", async () => {
    const s = await sim();
    const p = provider(s.url, s.apiKey, { userAgent: "Python-urllib/3.12" });
    await expect(p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST })).rejects.toMatchObject({ name: "FatalRunError", code: "FORBIDDEN", exitCode: 1 });
  });

  it("too few credits at submit (reject mode) is FatalRunError INSUFFICIENT_AI_CREDITS, exit 3, nothing created", async () => {
    const { s, p } = await simAndProvider({ creditsLimit: 1 });
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(FatalRunError);
    expect(error).toMatchObject({ code: "INSUFFICIENT_AI_CREDITS", exitCode: 3 });
    expect(s.ledger().jobsCreated).toBe(0);
    // flux-schnell costs 0.6 and still fits.
    await expect(p.submit({ ...REQUEST, model: "flux-schnell" })).resolves.toMatchObject({ jobId: expect.any(String) });
  });

  it("too few credits in fail-job mode: the job reads failed INSUFFICIENT_AI_CREDITS, not retryable", async () => {
    const { s, p } = await simAndProvider({ creditsLimit: 1, insufficientCredits: "fail-job" });
    const { jobId } = await p.submit(REQUEST);
    s.advance(LATENCY_MS);
    const job = await p.getJob({ jobId, request: REQUEST });
    expect(job).toMatchObject({ status: "failed", code: "INSUFFICIENT_AI_CREDITS", retryable: false });
    expect(s.ledger().creditsUsed).toBe(0);
  });

  it("a base URL that is wrong (404 on create) stops the run: FatalRunError exit 1", async () => {
    const s = await sim();
    const p = provider(`${s.origin}/wrong-prefix`, s.apiKey);
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(FatalRunError);
    expect(error).toMatchObject({ code: "NOT_FOUND", exitCode: 1 });
    expect((error as Error).message).toContain("PICTORY_BASE_URL");
  });
});

describe("throttling and transient failures", () => {
  it("429 with Retry-After is a ThrottledError with retryAfterMs from the header", async () => {
    const { p } = await simAndProvider({ rate429: 1, retryAfterSeconds: 7, faultRoutes: ["submit", "job"] });
    for (const call of [p.submit(REQUEST), p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST })]) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ code: "RATE_LIMITED", httpStatus: 429, retryable: true, retryAfterMs: 7000 });
      expect(classifyFailure(error)).toEqual({ kind: "throttled", retryAfterMs: 7000 });
    }
  });

  it("429 without Retry-After has retryAfterMs null", async () => {
    const { p } = await simAndProvider({ rate429NoRetryAfter: 1, faultRoutes: ["submit"] });
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterMs).toBeNull();
  });

  it("the per-key token bucket's 429 carries its own Retry-After", async () => {
    const { p } = await simAndProvider({ rpm: 1, rpmBurst: 1 });
    await p.submit(REQUEST);
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ThrottledError);
    const wait = (error as ThrottledError).retryAfterMs;
    expect(wait).toBeGreaterThanOrEqual(1000);
    expect(wait).toBeLessThanOrEqual(60_000);
  });

  it.each([
    ["500", { rate500: 1 }],
    ["502", { rate502: 1 }],
    ["503", { rate503: 1 }],
  ] as const)("%s on submit: ServiceError retryable, maybe created; on getJob: retryable", async (status, rates) => {
    const { s, p } = await simAndProvider({ ...rates, faultRoutes: ["submit", "job"] });
    const submitError = await rejection(p.submit(REQUEST));
    expect(submitError).toBeInstanceOf(ServiceError);
    expect(submitError).not.toBeInstanceOf(PermanentError);
    expect(submitError).not.toBeInstanceOf(ThrottledError);
    expect(submitError).toMatchObject({ code: `HTTP_${status}`, httpStatus: Number(status), retryable: true, maybeCreated: true });
    expect((submitError as Error).message).not.toMatch(/<[^>]*>/);
    expect(classifyFailure(submitError).kind).toBe("retryable");

    const pollError = await rejection(p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST }));
    expect(pollError).toMatchObject({ code: `HTTP_${status}`, httpStatus: Number(status), retryable: true, maybeCreated: false });
    expect(s.ledger().faultsInjected[status]).toBe(2);
  });

  it("a connection reset on submit is retryable and maybe created", async () => {
    const { s, p } = await simAndProvider({ rateReset: 1, faultRoutes: ["submit"] });
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ServiceError);
    const e = error as ServiceError;
    expect(e).toMatchObject({ retryable: true, maybeCreated: true });
    expect(RETRYABLE_ERROR_CODES.has(e.code)).toBe(true);
    expect(e.httpStatus).toBeUndefined();
    expect(s.ledger().faultsInjected["reset"]).toBe(1);
    // The pool recovers: the next request on a fresh connection works.
    s.configure({ rateReset: 0 });
    await expect(p.submit(REQUEST)).resolves.toMatchObject({ jobId: expect.any(String) });
  });

  it("a connection reset on getJob is retryable", async () => {
    const { p } = await simAndProvider({ rateReset: 1, faultRoutes: ["job"] });
    const error = await rejection(p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST }));
    expect(error).toMatchObject({ retryable: true, maybeCreated: false });
  });

  it("a create that never answers (headers timeout) is retryable and maybe created; an abort stays an abort", async () => {
    const server = createServer(() => {
      /* never answers */
    });
    cleanup(server, closeServer);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const p = provider(`http://127.0.0.1:${port}/pictoryapis`, "pictai_x", { headersTimeoutMs: 150 });
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: "UND_ERR_HEADERS_TIMEOUT", retryable: true, maybeCreated: true });

    const controller = new AbortController();
    const pending = rejection(p.submit(REQUEST, controller.signal));
    setTimeout(() => controller.abort(), 20);
    const aborted = await pending;
    expect(aborted).not.toBeInstanceOf(ServiceError);
    expect(classifyFailure(aborted).kind).toBe("aborted");
  });

  it("connection refused is retryable and certainly not created", async () => {
    const port = await closedPort();
    const p = provider(`http://127.0.0.1:${port}/pictoryapis`, "pictai_simkey");
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: "ECONNREFUSED", retryable: true, maybeCreated: false });
    expect(classifyFailure(error).kind).toBe("retryable");
  });
});

describe("lost creates and reconciliation", () => {
  it("both ways of losing a create (dropped socket, 502 page) are retryable and maybe created", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    for (let i = 0; i < 6; i++) {
      const error = await rejection(p.submit(REQUEST));
      expect(error).toBeInstanceOf(ServiceError);
      expect(error).toMatchObject({ retryable: true, maybeCreated: true });
    }
    const faults = s.ledger().faultsInjected;
    expect(faults["lost-create:reset"]).toBeGreaterThan(0);
    expect(faults["lost-create:502"]).toBeGreaterThan(0);
    expect(s.ledger().jobsCreated).toBe(6);
  });

  it("finds the lost job: pending while it runs, then its image; none once claimed", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    const submittedAtMs = s.now();
    const error = await rejection(p.submit(REQUEST));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ retryable: true, maybeCreated: true });
    expect(s.ledger().jobsCreated).toBe(1);
    const [simJob] = s.state.listJobs(s.apiKey);

    expect((await p.findLostJob(REQUEST, submittedAtMs, new Set())).found).toBe("pending");
    // A running job another item owns (by job id) is not ours to wait for.
    expect((await p.findLostJob(REQUEST, submittedAtMs, new Set([simJob!.id]))).found).toBe("none");

    s.advance(LATENCY_MS);
    const found = expectImage(await p.findLostJob(REQUEST, submittedAtMs, new Set()));
    expect(found).toMatchObject({ imageRef: simJob!.imageId, jobId: simJob!.id, width: 1024, height: 1024 });
    expect(imageIdFromUrl(found.url)).toBe(simJob!.imageId);
    expect(found.url.startsWith(`${s.origin}/files/`)).toBe(true);

    expect(await p.findLostJob(REQUEST, submittedAtMs, new Set([found.imageRef]))).toMatchObject({ found: "none" });
    // Reconciling never creates anything.
    expect(s.ledger().jobsCreated).toBe(1);
  });

  it("a request that was never sent finds nothing, even beside other jobs and an older identical image", async () => {
    const { s, p } = await simAndProvider();
    const { jobId } = await p.submit(REQUEST);
    await p.submit({ ...REQUEST, prompt: "Something else entirely" });
    s.advance(LATENCY_MS);
    expectCompleted(await p.getJob({ jobId, request: REQUEST }));
    s.advance(10 * 60_000);
    // Submitted (in the runner's mind) 10 minutes after the identical image was made.
    expect(await p.findLostJob(REQUEST, s.now(), new Set())).toMatchObject({ found: "none" });
    expect(await p.findLostJob({ ...REQUEST, prompt: "Never submitted at all" }, s.now() - 20 * 60_000, new Set([jobId]))).toMatchObject({ found: "none" });
  });

  it("matches on every request field: another style or model is not our image", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    const submittedAtMs = s.now();
    await rejection(p.submit({ ...REQUEST, style: "cartoon" }));
    s.advance(LATENCY_MS);
    expect((await p.findLostJob(REQUEST, submittedAtMs, new Set())).found).toBe("none");
    expect((await p.findLostJob({ ...REQUEST, style: "vintage" }, submittedAtMs, new Set())).found).toBe("none");
    expect((await p.findLostJob({ ...REQUEST, style: "cartoon", model: "nanobanana" }, submittedAtMs, new Set())).found).toBe("none");
    expect((await p.findLostJob({ ...REQUEST, style: "cartoon" }, submittedAtMs, new Set())).found).toBe("image");
  });

  it("two identical lost requests (variants) adopt two different images", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    const submittedAtMs = s.now();
    await rejection(p.submit(REQUEST));
    await rejection(p.submit(REQUEST));
    expect(s.ledger().jobsByRequestHash).toEqual({ [simRequestHash(REQUEST)]: 2 });
    s.advance(LATENCY_MS);

    const claimed = new Set<string>();
    const first = expectImage(await p.findLostJob(REQUEST, submittedAtMs, claimed));
    claimed.add(first.imageRef);
    const second = expectImage(await p.findLostJob(REQUEST, submittedAtMs, claimed));
    claimed.add(second.imageRef);
    expect(second.imageRef).not.toBe(first.imageRef);
    expect(second.jobId).not.toBe(first.jobId);
    expect(new Set([first.imageRef, second.imageRef])).toEqual(new Set(s.state.listJobs(s.apiKey).map((j) => j.imageId)));
    expect((await p.findLostJob(REQUEST, submittedAtMs, claimed)).found).toBe("none");
  });

  it("never adopts the image of an identical request whose job id another item owns", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    const submittedAtMs = s.now();
    await rejection(p.submit(REQUEST)); // lost: ours
    s.configure({ rateLostCreate: 0 });
    const { jobId: variantJob } = await p.submit(REQUEST); // a variant's, submitted fine, not polled yet
    s.advance(LATENCY_MS);

    const lost = s.state.listJobs(s.apiKey).find((j) => j.id !== variantJob)!;
    const found = expectImage(await p.findLostJob(REQUEST, submittedAtMs, new Set([variantJob])));
    expect(found).toMatchObject({ imageRef: lost.imageId, jobId: lost.id });
    // Once ours is adopted too, nothing is left.
    expect((await p.findLostJob(REQUEST, submittedAtMs, new Set([variantJob, lost.imageId]))).found).toBe("none");
  });

  it("never adopts an image whose job another item stored while the search was paging", async () => {
    const { s, p } = await simAndProvider({ rateLostCreate: 1 });
    const submittedAtMs = s.now();
    await rejection(p.submit(REQUEST));
    s.advance(LATENCY_MS);
    const [job] = s.state.listJobs(s.apiKey);
    // Unclaimed while the job list is read; stored by another item before the image list is.
    const owned = new Set<string>();
    let requests = 0;
    const beforeRequest = async () => {
      if (++requests === 2) owned.add(job!.id);
    };
    expect(await p.findLostJob(REQUEST, submittedAtMs, owned, { beforeRequest })).toMatchObject({ found: "none" });
    expect(requests).toBe(2);
    // Without the late claim the same search adopts it: the test above is not vacuous.
    expect(expectImage(await p.findLostJob(REQUEST, submittedAtMs, new Set()))).toMatchObject({ jobId: job!.id });
  });

  it("stops walking the listings at a job or image known to be older than the lost submit", async () => {
    const { s, p } = await simAndProvider({ pageSize: 2 });
    const older: string[] = [];
    for (let i = 0; i < 12; i++) older.push((await p.submit({ ...REQUEST, prompt: `Older image number ${i}` })).jobId);
    s.advance(LATENCY_MS);
    const olderImages = new Set<string>();
    for (const jobId of older) {
      const job = await p.getJob({ jobId, request: REQUEST });
      if (job.status === "completed" && job.imageRef) olderImages.add(job.imageRef);
    }
    const submittedAtMs = s.now();
    const lost = await p.submit(REQUEST);
    s.advance(LATENCY_MS);
    const listingRequests = () => ["GET /v1/jobs", "GET /v1/aistudio/images"].reduce((n, route) => n + (s.ledger().requestsByRoute[route] ?? 0), 0);
    const claimed = new Set([...older, ...olderImages]);

    const before = listingRequests();
    const walked = expectImage(await p.findLostJob(REQUEST, submittedAtMs, claimed));
    const fullWalk = listingRequests() - before;
    const early = expectImage(await p.findLostJob(REQUEST, submittedAtMs, claimed, { knownBefore: (ref) => claimed.has(ref) }));
    const shortWalk = listingRequests() - before - fullWalk;

    expect({ ...early, url: null }).toEqual({ ...walked, url: null }); // the signed URL differs per read
    expect(early.jobId).toBe(lost.jobId);
    expect(fullWalk).toBe(8); // every page of the job list (13 jobs, 2 a page), one of images
    expect(shortWalk).toBe(2); // the first page of each listing holds the lost job and an older one
  });

  it("reads only the job list when every job since the submit belongs to another item", async () => {
    const { s, p } = await simAndProvider({ pageSize: 5 });
    const older = (await p.submit({ ...REQUEST, prompt: "Made before the lost submit" })).jobId;
    const submittedAtMs = s.now();
    // The lost submit made nothing (a 503 before the job); two other items' submits did.
    const others = [(await p.submit({ ...REQUEST, prompt: "Another item" })).jobId, (await p.submit({ ...REQUEST, prompt: "A third item" })).jobId];
    s.advance(LATENCY_MS);
    const routes = () => ({ ...s.ledger().requestsByRoute });
    const knownBefore = (ref: string) => ref === older;

    const before = routes();
    expect(await p.findLostJob(REQUEST, submittedAtMs, new Set([older, ...others]), { knownBefore })).toMatchObject({ found: "none" });
    const after = routes();
    expect((after["GET /v1/jobs"] ?? 0) - (before["GET /v1/jobs"] ?? 0)).toBe(1);
    expect((after["GET /v1/aistudio/images"] ?? 0) - (before["GET /v1/aistudio/images"] ?? 0)).toBe(0);

    // One job since the submit that no item owns: it may be ours, so the images are read.
    expect(await p.findLostJob(REQUEST, submittedAtMs, new Set([older, others[0]!]), { knownBefore })).toMatchObject({ found: "none" });
    expect((routes()["GET /v1/aistudio/images"] ?? 0) - (after["GET /v1/aistudio/images"] ?? 0)).toBe(1);
  });

  it("asks the rate bucket before every listing request it sends", async () => {
    const { s, p } = await simAndProvider({ pageSize: 2 });
    const submittedAtMs = s.now();
    for (let i = 0; i < 5; i++) await p.submit({ ...REQUEST, prompt: `Recent image number ${i}` });
    s.advance(LATENCY_MS);
    const before = s.ledger().requestsByRoute;
    let tokens = 0;
    await p.findLostJob(REQUEST, submittedAtMs, new Set(), {
      beforeRequest: async () => {
        tokens++;
      },
    });
    const after = s.ledger().requestsByRoute;
    const sent = ["GET /v1/jobs", "GET /v1/aistudio/images"].reduce((n, route) => n + (after[route] ?? 0) - (before[route] ?? 0), 0);
    expect(sent).toBeGreaterThan(2); // several pages of jobs
    expect(tokens).toBe(sent);
  });

  it("a fresh loss costs one page of each listing, however many jobs ran before it", async () => {
    const { s, p } = await simAndProvider({ pageSize: 2 });
    for (let i = 0; i < 6; i++) await p.submit({ ...REQUEST, prompt: `Older image number ${i}` });
    // Older than the submit by more than the clock-skew allowance (60 s here): not looked at.
    s.advance(LATENCY_MS + 61_000);
    const submittedAtMs = s.now();
    s.configure({ rateLostCreate: 1 });
    await rejection(p.submit(REQUEST));
    s.advance(LATENCY_MS);
    const before = s.ledger().requestsByRoute;
    expectImage(await p.findLostJob(REQUEST, submittedAtMs, new Set()));
    const after = s.ledger().requestsByRoute;
    expect((after["GET /v1/aistudio/images"] ?? 0) - (before["GET /v1/aistudio/images"] ?? 0)).toBe(1);
    expect((after["GET /v1/jobs"] ?? 0) - (before["GET /v1/jobs"] ?? 0)).toBe(1);
  });

  it("when the job list does not name the image (undocumented shape), adopts the newest unclaimed match", async () => {
    const image = (id: string, prompt = REQUEST.prompt) => ({
      url: `https://cdn.example/images/user/u/${id}.png`,
      id,
      prompt,
      aspectRatio: "1:1",
      model: "seedream3.0",
      createdDate: new Date(Date.now() - 1_000).toISOString(),
      width: 1024,
      height: 1024,
    });
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      if (req.url?.startsWith("/api/v1/aistudio/images")) {
        res.end(JSON.stringify({ items: [image("img-c", "another prompt here"), image("img-b"), image("img-a")] }));
      } else {
        res.end(JSON.stringify({ items: [{ success: true, data: { jobId: "job-x", status: "completed" } }], nextPageKey: null }));
      }
    });
    cleanup(server, closeServer);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const p = provider(`http://127.0.0.1:${port}/api`, "pictai_x");
    expect(await p.findLostJob(REQUEST, Date.now() - 5_000, new Set(["job-x"]))).toEqual({ found: "image", imageRef: "img-b", jobId: null, url: "https://cdn.example/images/user/u/img-b.png", width: 1024, height: 1024 });
    expect(await p.findLostJob(REQUEST, Date.now() - 5_000, new Set(["img-b"]))).toMatchObject({ found: "image", imageRef: "img-a" });
    expect(await p.findLostJob(REQUEST, Date.now() - 5_000, new Set(["img-b", "img-a"]))).toMatchObject({ found: "none" });
    // Images older than the submit (less the clock skew allowance) are never ours.
    expect(await p.findLostJob(REQUEST, Date.now() + 120_000, new Set())).toMatchObject({ found: "none" });
  });

  it("pages through a long image history", async () => {
    const { s, p } = await simAndProvider({ imagesPageSize: 2, pageSize: 2 });
    const submittedAtMs = s.now();
    s.configure({ rateLostCreate: 1 });
    await rejection(p.submit(REQUEST));
    s.configure({ rateLostCreate: 0 });
    for (let i = 0; i < 5; i++) await p.submit({ ...REQUEST, prompt: `Filler image number ${i}` });
    s.advance(LATENCY_MS);
    const found = expectImage(await p.findLostJob(REQUEST, submittedAtMs, new Set()));
    expect(found.imageRef).toBe(s.state.listJobs(s.apiKey).at(-1)!.imageId);
  });
});

describe("failed and vanished jobs", () => {
  it.each([
    { label: "transient", options: { rateJobFailTransient: 1 }, request: REQUEST, code: "IMAGE_GENERATION_FAILED", retryable: true },
    { label: "content policy", options: { rateJobFailPermanent: 1 }, request: REQUEST, code: "CONTENT_POLICY_VIOLATION", retryable: false },
    { label: "unreachable reference", options: {}, request: { ...REQUEST, referenceImageUrl: "https://unreachable.invalid/ref.png" }, code: "REFERENCE_IMAGE_UNREACHABLE", retryable: false },
  ])("$label: failed $code, retryable $retryable", async ({ options, request, code, retryable }) => {
    const { s, p } = await simAndProvider(options);
    const { jobId } = await p.submit(request);
    expect((await p.getJob({ jobId, request })).status).toBe("in-progress");
    s.advance(LATENCY_MS);
    const job = await p.getJob({ jobId, request });
    expect(job).toEqual({ status: "failed", code, message: expect.any(String), retryable });
    expect((job as { message: string }).message.length).toBeGreaterThan(0);
  });

  it("an unknown job id (404) is gone", async () => {
    const { p } = await simAndProvider();
    expect(await p.getJob({ jobId: "00000000-0000-4000-8000-000000000000", request: REQUEST })).toMatchObject({ status: "gone", code: "JOB_NOT_FOUND" });
  });

  it("another key's job is gone for this key", async () => {
    const s = await sim({ apiKeys: ["pictai_owner", "pictai_stranger"] });
    const owner = provider(s.url, "pictai_owner");
    const stranger = provider(s.url, "pictai_stranger");
    const { jobId } = await owner.submit(REQUEST);
    expect((await stranger.getJob({ jobId, request: REQUEST })).status).toBe("gone");
    expect((await owner.getJob({ jobId, request: REQUEST })).status).toBe("in-progress");
  });

  it("a job cleaned after its retention period is gone", async () => {
    const { s, p } = await simAndProvider({ jobRetentionMs: 1_000 });
    const { jobId } = await p.submit(REQUEST);
    s.advance(LATENCY_MS);
    expectCompleted(await p.getJob({ jobId, request: REQUEST }));
    s.advance(1_000);
    expect(await p.getJob({ jobId, request: REQUEST })).toMatchObject({ status: "gone", code: "JOB_CLEANED" });
  });
});
