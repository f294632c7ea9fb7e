// The media upload of PICTORY.md §6.6, as the simulator plays it: `POST /v1/media/generateurl`
// hands out a signed PUT URL (S3 style: the Content-Type is part of the signature; it expires)
// and the permanent URL the object will have; the PUT stores the bytes; the permanent URL serves
// them. Choices where the docs are silent (PICTORY.md §6.6 "Unknown"): each generateurl makes a
// new key even for the same fileName; any `type/subtype` MIME type is accepted; an object is at
// most 50 MiB; the permanent URL serves it as long as the simulator runs; S3's XML error bodies.
import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { BodyTooLargeError, readBody, sendJson, sendText } from "./http.js";
import type { LedgerRecorder } from "./ledger.js";
import type { SimState } from "./state.js";

export const UPLOAD_PUT_PREFIX = "/uploads/";
export const UPLOAD_FILE_PREFIX = "/files/uploads/";
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
const MIME = /^[a-z]+\/[a-z0-9][a-z0-9.+-]*$/;
const FILE_NAME = /^[^/\\\u0000-\u001f]{1,255}$/;

interface SimUpload {
  apiKey: string;
  /** `<team>/<uuid>/<fileName>`: the object's path under both prefixes. */
  path: string;
  contentType: string;
  bytes: Buffer | null;
}

/** The objects of every key, by path; cleared by a reset. */
export class SimUploads {
  private readonly objects = new Map<string, SimUpload>();

  create(apiKey: string, team: string, fileName: string, contentType: string): SimUpload {
    const upload = { apiKey, path: `${team}/${randomUUID()}/${encodeURIComponent(fileName)}`, contentType, bytes: null };
    this.objects.set(upload.path, upload);
    return upload;
  }

  get(path: string): SimUpload | undefined {
    return this.objects.get(path);
  }

  /** Whether a reference URL names an object of this simulator that was never uploaded (the job cannot fetch it). */
  missing(url: string): boolean {
    let pathname: string;
    try {
      pathname = new URL(url).pathname;
    } catch {
      return false;
    }
    if (!pathname.startsWith(UPLOAD_FILE_PREFIX)) return false;
    return this.objects.get(pathname.slice(UPLOAD_FILE_PREFIX.length))?.bytes == null;
  }

  clear(): void {
    this.objects.clear();
  }
}

function signature(secret: string, path: string, expMs: number, contentType: string): string {
  return createHmac("sha256", secret).update(`PUT|${path}|${expMs}|${contentType}`).digest("hex").slice(0, 32);
}

const s3Error = (res: ServerResponse, status: number, code: string, message: string): void =>
  sendText(res, status, "application/xml", `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);

export interface UploadContext {
  state: SimState;
  ledger: LedgerRecorder;
  origin: string;
  secret: string;
}

/** `POST /v1/media/generateurl {fileName, contentType}` → `{success, data: {signedUrl, url, key}}`. */
export async function generateUrl(req: IncomingMessage, res: ServerResponse, ctx: UploadContext, apiKey: string): Promise<void> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") return sendJson(res, 400, { code: "INVALID_REQUEST_BODY", message: "Content-Type must be application/json", fields: [] });
  let body: unknown;
  try {
    body = JSON.parse((await readBody(req)).toString("utf8"));
  } catch {
    return sendJson(res, 400, { code: "INVALID_REQUEST_BODY", message: "Request body is not valid JSON", fields: [] });
  }
  const raw = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const fields: { name: string; errors: string }[] = [];
  const fileName = raw["fileName"];
  const contentType = raw["contentType"];
  if (typeof fileName !== "string" || !FILE_NAME.test(fileName)) fields.push({ name: "fileName", errors: '"fileName" must be a file name of 1 to 255 characters without a slash' });
  if (typeof contentType !== "string" || !MIME.test(contentType)) fields.push({ name: "contentType", errors: '"contentType" must be a MIME type such as image/png' });
  if (fields.length > 0) return sendJson(res, 400, { code: "INVALID_REQUEST_BODY", message: `Invalid request body: ${fields.map((f) => f.name).join(", ")}`, fields });
  const { state } = ctx;
  const upload = state.uploads.create(apiKey, state.account(apiKey).userId, fileName as string, contentType as string);
  const exp = state.now() + state.options.uploadUrlTtlMs;
  const putPath = `${UPLOAD_PUT_PREFIX}${upload.path}`;
  const signedUrl = `${ctx.origin}${putPath}?X-Amz-Expires=${Math.round(state.options.uploadUrlTtlMs / 1000)}&exp=${exp}&sig=${signature(ctx.secret, putPath, exp, upload.contentType)}`;
  ctx.ledger.uploadUrlIssued();
  sendJson(res, 200, { success: true, data: { signedUrl, url: `${ctx.origin}${UPLOAD_FILE_PREFIX}${upload.path}`, key: `public/teams/${upload.path}` } });
}

/** `PUT <signedUrl>`: the Content-Type must be the signed one, the signature unexpired. */
export async function putUpload(req: IncomingMessage, res: ServerResponse, url: URL, ctx: UploadContext): Promise<void> {
  const { state, ledger } = ctx;
  if (req.method !== "PUT") return s3Error(res, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
  const upload = state.uploads.get(url.pathname.slice(UPLOAD_PUT_PREFIX.length));
  const exp = Number(url.searchParams.get("exp"));
  const sig = url.searchParams.get("sig") ?? "";
  const contentType = req.headers["content-type"] ?? "";
  const expected = signature(ctx.secret, url.pathname, exp, contentType);
  if (upload === undefined || !Number.isFinite(exp)) return s3Error(res, 403, "AccessDenied", "Access Denied");
  if (sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) {
    ledger.uploadRefused("signature");
    return s3Error(res, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
  }
  if (state.now() > exp) {
    ledger.uploadRefused("expired");
    return s3Error(res, 403, "AccessDenied", "Request has expired");
  }
  const name = decodeURIComponent(upload.path.slice(upload.path.lastIndexOf("/") + 1));
  if (state.options.failUploadsNamed.some((part) => part !== "" && name.includes(part))) {
    ledger.uploadRefused("fault");
    return s3Error(res, 500, "InternalError", "We encountered an internal error. Please try again.");
  }
  let bytes: Buffer;
  try {
    bytes = await readBody(req, MAX_UPLOAD_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return s3Error(res, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    throw error;
  }
  upload.bytes = bytes;
  ledger.uploaded(bytes);
  res.writeHead(200, { ETag: `"${createHash("md5").update(bytes).digest("hex")}"`, "Content-Length": "0" });
  res.end();
}

/** `GET <url>`: the uploaded object as it was put, for anyone (a public CDN address). */
export function serveUpload(req: IncomingMessage, res: ServerResponse, url: URL, ctx: UploadContext): void {
  const upload = ctx.state.uploads.get(url.pathname.slice(UPLOAD_FILE_PREFIX.length));
  if (req.method !== "GET" && req.method !== "HEAD") return s3Error(res, 403, "AccessDenied", "Access Denied");
  if (upload?.bytes == null) return s3Error(res, 403, "AccessDenied", "Access Denied");
  res.writeHead(200, { "Content-Type": upload.contentType, "Content-Length": String(upload.bytes.length) });
  res.end(req.method === "HEAD" ? undefined : upload.bytes);
}
