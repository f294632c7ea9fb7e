// Routing of the simulator. Every API request passes, in order: Cloudflare (403 HTML), the
// key check (401), the per-key throttle (429), the injected HTTP faults, then the route.
import type { IncomingMessage, ServerResponse } from "node:http";
import { MODEL_SPECS } from "../providers/catalog.js";
import { API_KEY_PATTERN, parseSimOptions, type FaultRoute } from "./config.js";
import type { HttpFault } from "./faults.js";
import { isFilePath, serveFile } from "./files.js";
import {
  BAD_GATEWAY_HTML,
  BodyTooLargeError,
  CLOUDFLARE_1010_HTML,
  SERVICE_UNAVAILABLE_TEXT,
  dropConnection,
  readBody,
  sendJson,
  sendText,
} from "./http.js";
import type { LedgerRecorder } from "./ledger.js";
import type { KeyRateLimiter } from "./ratelimit.js";
import type { SimState } from "./state.js";
import { generateUrl, putUpload, serveUpload, UPLOAD_FILE_PREFIX, UPLOAD_PUT_PREFIX } from "./uploads.js";
import { validateCreateBody, type FieldError } from "./validate.js";
import {
  imageIdFromImagesPageKey,
  imageItem,
  imagesPageKey,
  jobBody,
  jobIdFromJobsPageKey,
  jobListItem,
  jobsPageKey,
  keyEcho,
  pageAfter,
  type ViewContext,
} from "./views.js";
import type { WebhookSender } from "./webhooks.js";

export const API_PREFIX = "/pictoryapis";

export interface SimContext extends ViewContext {
  ledger: LedgerRecorder;
  webhooks: WebhookSender;
  limiter: KeyRateLimiter;
  /** Resets jobs, quota, ledger and throttle (POST /__sim/reset). */
  reset(): void;
  snapshot(): unknown;
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: SimContext, key: string, param: string, url: URL) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  label: string;
  fault: FaultRoute;
  handler: Handler;
}

const invalidBody = (res: ServerResponse, message: string, fields: FieldError[]): void =>
  sendJson(res, 400, { code: "INVALID_REQUEST_BODY", message, fields });

const invalidQuery = (res: ServerResponse, message: string): void => sendJson(res, 400, { code: "INVALID_REQUEST", message });

const submit: Handler = async (req, res, ctx, key) => {
  const { state, ledger } = ctx;
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") return invalidBody(res, "Content-Type must be application/json", []);
  let text: string;
  try {
    text = (await readBody(req)).toString("utf8");
  } catch (error) {
    if (error instanceof BodyTooLargeError) return sendJson(res, 413, { message: "Request Entity Too Large" });
    throw error;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return invalidBody(res, "Request body is not valid JSON", []);
  }
  const result = validateCreateBody(body, state.options);
  if (!result.ok) {
    const fields = state.options.echoKeyInErrors ? result.fields.map((f) => ({ ...f, errors: `${f.errors}${keyEcho(key)}` })) : result.fields;
    return invalidBody(res, `Invalid request body: ${result.fields.map((f) => f.name).join(", ")}`, fields);
  }
  const request = result.request;
  if (state.options.insufficientCredits === "reject" && state.lacksCredits(key, request)) {
    const { used, limit } = state.quota(key);
    const price = MODEL_SPECS[request.model].creditsPerImage;
    return sendJson(res, 400, {
      code: "INSUFFICIENT_AI_CREDITS",
      message: `Insufficient AI credits: ${Math.max(0, limit - used)} remaining, ${price} required`,
    });
  }
  const lost = state.faults.lostCreate(state.options);
  const job = state.createJob(key, request);
  ledger.jobCreated(job, state.inFlightNow());
  ctx.webhooks.schedule(job);
  if (lost === "reset") {
    ledger.fault("lost-create:reset");
    return dropConnection(req, res);
  }
  if (lost === "502") {
    ledger.fault("lost-create:502");
    return sendText(res, 502, "text/html", BAD_GATEWAY_HTML);
  }
  sendJson(res, 200, { success: true, data: { jobId: job.id } });
};

const getJob: Handler = (_req, res, ctx, key, id) => {
  const job = ctx.state.job(key, decodeURIComponent(id));
  if (job === undefined) {
    return sendJson(res, 404, { success: false, data: { error_code: "5000", error_message: "JOB_NOT_FOUND" } });
  }
  sendJson(res, 200, jobBody(job, ctx));
};

const listJobs: Handler = (_req, res, ctx, key, _param, url) => {
  const { state } = ctx;
  const token = url.searchParams.get("nextPageKey");
  let afterSeq: number | null = null;
  if (token !== null && token !== "") {
    const id = jobIdFromJobsPageKey(token);
    const after = id === null ? undefined : state.job(key, id);
    if (after === undefined) return invalidQuery(res, "nextPageKey is invalid");
    afterSeq = after.seq;
  }
  const { page, more } = pageAfter(state.listJobs(key), afterSeq, state.options.pageSize);
  const last = page[page.length - 1];
  sendJson(res, 200, {
    items: page.map((job) => jobListItem(job, ctx)),
    nextPageKey: more && last !== undefined ? jobsPageKey(last) : null,
  });
};

const listImages: Handler = (_req, res, ctx, key, _param, url) => {
  const { state } = ctx;
  const token = url.searchParams.get("nextPageKey");
  let afterSeq: number | null = null;
  if (token !== null && token !== "") {
    const imageId = imageIdFromImagesPageKey(token);
    const after = imageId === null ? undefined : state.jobByImageId(state.account(key).userId, imageId);
    if (after === undefined) return invalidQuery(res, "nextPageKey is invalid");
    afterSeq = after.seq;
  }
  const images = state.listJobs(key).filter((job) => state.status(job) === "completed");
  const { page, more } = pageAfter(images, afterSeq, state.options.imagesPageSize);
  const last = page[page.length - 1];
  const body: Record<string, unknown> = { items: page.map((job) => imageItem(job, ctx)) };
  // Unlike the job list, the image history omits nextPageKey on its last page (§4.2).
  if (more && last !== undefined) body["nextPageKey"] = imagesPageKey(last);
  sendJson(res, 200, body);
};

const quota: Handler = (_req, res, ctx, key) => {
  sendJson(res, 200, {
    videoMinutes: { used: 0, limit: 14400 },
    transcriptionMinutes: { used: 0, limit: 14400 },
    elevenLabsVoiceOverMinutes: { used: 0, limit: 480 },
    aiCredits: ctx.state.quota(key),
  });
};

const ROUTES: Route[] = [
  { method: "POST", pattern: /^\/v1\/aistudio\/images$/, label: "POST /v1/aistudio/images", fault: "submit", handler: submit },
  { method: "GET", pattern: /^\/v1\/aistudio\/images$/, label: "GET /v1/aistudio/images", fault: "images", handler: listImages },
  { method: "GET", pattern: /^\/v1\/jobs\/([^/]+)$/, label: "GET /v1/jobs/:id", fault: "job", handler: getJob },
  { method: "GET", pattern: /^\/v1\/jobs$/, label: "GET /v1/jobs", fault: "list", handler: listJobs },
  { method: "GET", pattern: /^\/v1\/quota$/, label: "GET /v1/quota", fault: "quota", handler: quota },
  { method: "POST", pattern: /^\/v1\/media\/generateurl$/, label: "POST /v1/media/generateurl", fault: "generateurl", handler: (req, res, ctx, key) => generateUrl(req, res, ctx, key) },
];

function respondWithFault(fault: HttpFault, req: IncomingMessage, res: ServerResponse, ctx: SimContext): void {
  ctx.ledger.fault(fault);
  const tooMany = { message: "Too Many Requests" };
  switch (fault) {
    case "429":
      return sendJson(res, 429, tooMany, { "Retry-After": String(ctx.state.options.retryAfterSeconds) });
    case "429-no-retry-after":
      return sendJson(res, 429, tooMany);
    case "500":
      return sendJson(res, 500, { message: "Internal server error" });
    case "502":
      return sendText(res, 502, "text/html", BAD_GATEWAY_HTML);
    case "503":
      return sendText(res, 503, "text/plain", SERVICE_UNAVAILABLE_TEXT);
    case "reset":
      return dropConnection(req, res);
  }
}

/** The raw `Authorization` value when it is a configured key; `Bearer …` never matches. */
function authorisedKey(req: IncomingMessage, apiKeys: string[]): string | null {
  const header = req.headers.authorization;
  if (typeof header !== "string" || !API_KEY_PATTERN.test(header)) return null;
  return apiKeys.includes(header) ? header : null;
}

async function handleApi(req: IncomingMessage, res: ServerResponse, ctx: SimContext, url: URL): Promise<void> {
  const { state, ledger } = ctx;
  const path = url.pathname.slice(API_PREFIX.length);
  let found: { route: Route; param: string } | null = null;
  for (const route of ROUTES) {
    const match = route.method === req.method ? route.pattern.exec(path) : null;
    if (match !== null) {
      found = { route, param: match[1] ?? "" };
      break;
    }
  }
  ledger.route(found?.route.label ?? `${req.method ?? "?"} other`);
  ledger.apiRequest(state.now());
  const options = state.options;
  const agent = (req.headers["user-agent"] ?? "").toLowerCase();
  if (options.forbiddenHtml || options.blockedUserAgents.some((s) => s !== "" && agent.includes(s.toLowerCase()))) {
    return sendText(res, 403, "text/html; charset=UTF-8", CLOUDFLARE_1010_HTML);
  }
  if (found === null) return sendJson(res, 404, { message: "Not Found" });
  const key = authorisedKey(req, options.apiKeys);
  if (key === null) return sendJson(res, 401, { message: "Unauthorized" });
  const throttle = ctx.limiter.take(key, options.rpm, options.rpmBurst);
  if (!throttle.ok) {
    ledger.fault("throttled");
    return sendJson(res, 429, { message: "Too Many Requests" }, { "Retry-After": String(throttle.retryAfterSeconds) });
  }
  const fault = state.faults.httpFault(found.route.fault, options);
  if (fault !== null) return respondWithFault(fault, req, res, ctx);
  await found.route.handler(req, res, ctx, key, found.param, url);
}

async function handleAdmin(req: IncomingMessage, res: ServerResponse, ctx: SimContext, url: URL): Promise<void> {
  const route = `${req.method ?? "?"} ${url.pathname}`;
  if (route === "GET /__sim/ledger") return sendJson(res, 200, ctx.snapshot());
  if (route === "GET /__sim/options") return sendJson(res, 200, ctx.state.options);
  if (route === "POST /__sim/reset") {
    ctx.reset();
    return sendJson(res, 200, { reset: true });
  }
  if (route === "POST /__sim/configure") {
    try {
      const patch = parseSimOptions(JSON.parse((await readBody(req)).toString("utf8")), "POST /__sim/configure");
      ctx.state.configure(patch);
      return sendJson(res, 200, ctx.state.options);
    } catch (error) {
      return sendJson(res, 400, { message: (error as Error).message });
    }
  }
  sendJson(res, 404, { message: "Not Found" });
}

export function createRequestListener(ctx: SimContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    ctx.ledger.requestOpened();
    res.on("close", () => ctx.ledger.requestClosed(res.writableFinished ? res.statusCode : "reset"));
    const url = new URL(req.url ?? "/", "http://sim.invalid");
    let work: Promise<void>;
    if (url.pathname.startsWith("/__sim/")) work = handleAdmin(req, res, ctx, url);
    else if (url.pathname.startsWith(`${API_PREFIX}/`)) work = handleApi(req, res, ctx, url);
    else if (url.pathname.startsWith(UPLOAD_PUT_PREFIX)) work = handleUpload(req, res, ctx, url);
    else if (url.pathname.startsWith(UPLOAD_FILE_PREFIX)) work = Promise.resolve(serveUpload(req, res, url, ctx));
    else if (isFilePath(url.pathname)) work = handleFile(req, res, ctx, url);
    else work = Promise.resolve(sendJson(res, 404, { message: "Not Found" }));
    work.catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { message: "Internal server error", detail: String(error) });
      else res.destroy();
    });
  };
}

/** The signed PUT of an upload (S3's side: no Authorization, the fault route "upload"). */
async function handleUpload(req: IncomingMessage, res: ServerResponse, ctx: SimContext, url: URL): Promise<void> {
  ctx.ledger.route("PUT /uploads");
  const fault = ctx.state.faults.httpFault("upload", ctx.state.options);
  if (fault !== null) return respondWithFault(fault, req, res, ctx);
  await putUpload(req, res, url, ctx);
}

async function handleFile(req: IncomingMessage, res: ServerResponse, ctx: SimContext, url: URL): Promise<void> {
  ctx.ledger.route("GET /files");
  const fault = ctx.state.faults.httpFault("file", ctx.state.options);
  if (fault !== null) return respondWithFault(fault, req, res, ctx);
  await serveFile(req, res, url, ctx);
}
