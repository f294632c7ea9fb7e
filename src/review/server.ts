// The review app's HTTP server (node:http): a token in the first URL, then an HttpOnly cookie;
// POSTs also need the same origin and a CSRF header; images only by item key from the store's
// records. Live updates go out as server-sent events when the store's change mark moves.
import { referencePaths } from "../assets/reference-copies.js";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import { pipeline } from "node:stream/promises";
import { pathOnDisk, type OutputLayout } from "../assets/image-stage.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/port.js";
import { PAGE_CSS, PAGE_SCRIPT, pageHtml } from "./page.js";
import { KEY_PATTERN, applyReview, parseReviewAction, readHistory, readReview, type ReviewAction } from "./review-data.js";

export interface ReviewServerOptions {
  store: Store;
  layout: OutputLayout;
  name: string;
  reviewer: string;
  host: string;
  port: number;
  /** The address the printed URL names (a server on every interface names one of them). */
  publicHost?: string;
  logger: Logger;
  /** How often the store's change mark is read while a page listens. */
  pollIntervalMs?: number;
}

export interface ReviewServer {
  /** The one URL to open: it carries the token. */
  url: string;
  origin: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const HEARTBEAT_MS = 15_000;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
const IMAGE_TYPES: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", webp: "image/webp", avif: "image/avif" };
const ACTIONS: Record<string, ReviewAction["action"]> = { "/api/decide": "decide", "/api/undo": "undo", "/api/note": "note" };

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

/** Equal secrets, in time independent of where they differ (both hashed: lengths may differ). */
function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", "Content-Length": String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

const text = (res: ServerResponse, status: number, message: string) => send(res, status, "text/plain; charset=utf-8", `${message}\n`);
const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, "application/json; charset=utf-8", JSON.stringify(value));

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) throw new HttpError(413, `a body of at most ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `a body of at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "the body is not JSON");
  }
}

/** A database another process holds past the busy timeout: the reviewer tries again. */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

export async function startReviewServer(o: ReviewServerOptions): Promise<ReviewServer> {
  const token = randomBytes(24).toString("base64url");
  const csrf = randomBytes(24).toString("base64url");
  /** Each listening page, with the change mark it was last told. */
  const events = new Map<ServerResponse, string>();
  let origin = "";
  let allowedHosts: Set<string> | null = null;
  let cookieName = "";

  /** Only the server's own names on loopback, against DNS rebinding; elsewhere the token decides. */
  function hostAllowed(req: IncomingMessage): boolean {
    return allowedHosts === null || allowedHosts.has((req.headers.host ?? "").toLowerCase());
  }

  /** A state-changing request from our own page: same origin (Origin, or Sec-Fetch-Site) and the CSRF token. */
  function sameOriginWithCsrf(req: IncomingMessage): boolean {
    const from = req.headers.origin;
    const site = req.headers["sec-fetch-site"];
    if (from === undefined && site === undefined) return false;
    if (from !== undefined && from !== `http://${req.headers.host ?? ""}`) return false;
    if (site !== undefined && site !== "same-origin") return false;
    const header = req.headers["x-csrf-token"];
    return sameSecret(typeof header === "string" ? header : undefined, csrf);
  }

  async function serveImage(req: IncomingMessage, res: ServerResponse, kind: string, rawKey: string, version: string | null): Promise<void> {
    let key: string;
    try {
      key = decodeURIComponent(rawKey);
    } catch {
      return text(res, 404, "no such image");
    }
    // The key names a record; its file comes from the record, never from the request.
    const item = KEY_PATTERN.test(key) ? await o.store.byKey(key) : undefined;
    const reference = item?.request.referenceImage;
    const stored = kind === "image" ? item?.filePath : kind === "thumb" ? item?.thumbPath : reference ? referencePaths(reference).image : undefined;
    const type = stored ? IMAGE_TYPES[stored.slice(stored.lastIndexOf(".") + 1).toLowerCase()] : undefined;
    if (!item || !stored || !type) return text(res, 404, "no such image");
    const file = pathOnDisk(o.layout, stored);
    let size: number;
    try {
      const stat = statSync(file);
      if (!stat.isFile()) throw new Error("not a file");
      size = stat.size;
    } catch {
      return text(res, 404, "the image file is not on disk");
    }
    const etag = `"${item.sha256 ?? `u${item.updatedAt}`}${kind === "thumb" ? "-t" : ""}"`;
    // The page asks with ?v=<sha256>: that URL always means the same bytes.
    const cache = version !== null && version === item.sha256 ? "private, max-age=31536000, immutable" : "private, no-cache";
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { ETag: etag, "Cache-Control": cache });
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": type, "Content-Length": String(size), ETag: etag, "Cache-Control": cache });
    // A page that moves on before an image has arrived closes its request: nothing to report.
    await pipeline(createReadStream(file), res).catch(() => res.destroy());
  }

  function openEvents(req: IncomingMessage, res: ServerResponse, mark: string): void {
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store" });
    res.write(`retry: 2000\ndata: ${mark}\n\n`);
    events.set(res, mark);
    req.on("close", () => events.delete(res));
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? "";
    if (!target.startsWith("/")) return text(res, 400, "bad request");
    const q = target.indexOf("?");
    // The path as sent, never normalised: `..` or `%2f` cannot turn into another route.
    const path = q === -1 ? target : target.slice(0, q);
    const query = new URLSearchParams(q === -1 ? "" : target.slice(q + 1));
    if (!hostAllowed(req)) return text(res, 421, "this server answers only to its own address");
    const given = query.get("token");
    if (req.method === "GET" && path === "/" && given !== null) {
      if (!sameSecret(given, token)) return text(res, 401, "wrong token: open the URL imgbatch review printed");
      // The token moves into a cookie, and out of the address bar and the history.
      return send(res, 303, "text/plain; charset=utf-8", "see /\n", { Location: "/", "Set-Cookie": `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/` });
    }
    if (!sameSecret(cookieValue(req, cookieName), token)) return text(res, 401, "no token: open the URL imgbatch review printed");
    if (req.method === "POST") {
      const action = ACTIONS[path];
      if (!action) return text(res, 404, "not found");
      if (!sameOriginWithCsrf(req)) return text(res, 403, "refused: not a request of the review page (origin or CSRF token)");
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) return text(res, 415, "send JSON");
      const parsed = parseReviewAction(action, await readJsonBody(req));
      if (typeof parsed === "string") return json(res, 400, { error: parsed });
      const result = await applyReview(o.store, o.reviewer, parsed);
      if (!result.ok) return json(res, result.status, { error: result.message });
      o.logger.info({ key: parsed.key, action, decision: result.decision?.decision ?? null }, `review:${action} ${parsed.key}`);
      return json(res, 200, { decision: result.decision });
    }
    if (req.method !== "GET") return text(res, 405, "GET or POST only");
    if (path === "/") return send(res, 200, "text/html; charset=utf-8", pageHtml({ name: o.name, csrfToken: csrf }));
    if (path === "/app.js") return send(res, 200, "text/javascript; charset=utf-8", PAGE_SCRIPT);
    if (path === "/app.css") return send(res, 200, "text/css; charset=utf-8", PAGE_CSS);
    if (path === "/favicon.ico") return send(res, 204, "text/plain", "");
    if (path === "/api/items") return json(res, 200, await readReview(o.store, o.name, o.reviewer));
    if (path === "/api/events") return openEvents(req, res, await o.store.changeMark());
    const history = /^\/api\/items\/([^/]+)\/history$/.exec(path);
    if (history) {
      let key = "";
      try {
        key = decodeURIComponent(history[1]!);
      } catch {
        /* not a key: 404 below */
      }
      const entries = KEY_PATTERN.test(key) ? await readHistory(o.store, key) : null;
      return entries ? json(res, 200, { key, history: entries }) : json(res, 404, { error: "no such item" });
    }
    const image = /^\/(image|thumb|reference)\/([^/]+)$/.exec(path);
    if (image) return serveImage(req, res, image[1]!, image[2]!, query.get("v"));
    return text(res, 404, "not found");
  }

  const server = createServer((req, res) => {
    // On every answer, errors included.
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    route(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : isBusy(error) ? 503 : 500;
      const message = error instanceof HttpError ? error.message : isBusy(error) ? "the database is busy (a run is writing): try again" : "internal error";
      if (status === 500) o.logger.error({ err: errorMessage(error), url: req.url }, "review: a request failed");
      if (!res.headersSent) json(res, status, { error: message });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : o.port;
  const named = o.publicHost ?? o.host;
  const hostInUrl = isIP(named) === 6 ? `[${named}]` : named;
  origin = `http://${hostInUrl}:${port}`;
  // Cookies do not tell ports apart: two review servers on one machine keep one cookie each.
  cookieName = `imgbatch_review_${port}`;
  if (isLoopback(o.host)) allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${hostInUrl}:${port}`.toLowerCase()]);

  let polling = false;
  const poll = setInterval(() => {
    if (events.size === 0 || polling) return;
    polling = true;
    o.store
      .changeMark()
      .then((mark) => {
        for (const [res, told] of events) {
          if (told === mark) continue;
          res.write(`data: ${mark}\n\n`);
          events.set(res, mark);
        }
      })
      .catch((error: unknown) => o.logger.warn({ err: errorMessage(error) }, "review: could not read the change mark"))
      .finally(() => (polling = false));
  }, o.pollIntervalMs ?? 1000);
  // A comment now and then: a page whose connection died reconnects.
  const heartbeat = setInterval(() => {
    for (const res of events.keys()) res.write(": ping\n\n");
  }, HEARTBEAT_MS);

  return {
    url: `${origin}/?token=${token}`,
    origin,
    async close() {
      clearInterval(poll);
      clearInterval(heartbeat);
      for (const res of events.keys()) res.end();
      events.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
