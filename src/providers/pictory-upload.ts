// A local reference image to Pictory (PICTORY.md §6.6): `POST /v1/media/generateurl
// {fileName, contentType}` answers a signed PUT URL and the permanent URL; the file is PUT there
// with exactly that Content-Type and no Authorization. Every answer is classified into the
// errors of errors.ts, so the runner retries an upload as data like any other request. The
// signed URL is a credential for a day: it never appears in a message.
import { request } from "undici";
import { PermanentError, ServiceError, ThrottledError } from "../errors.js";
import { maskSecrets } from "../log.js";
import { RETRYABLE_ERROR_CODES } from "../retryable.js";
import { isHttpUrl } from "./catalog.js";
import { asObject, str, type Json } from "./pictory-json.js";
import type { ReferenceUpload, ReferenceUploader } from "./provider.js";

/** The API call of the provider (its pool, key and classification of answers). */
export type ApiCall = (method: "GET" | "POST", route: string, body: Json | undefined, signal?: AbortSignal) => Promise<Json>;

export interface UploadTimeouts {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  userAgent: string;
}

/** What a base URL names as a service (its origin and path, no user info, no trailing slash): uploads there are reused there. */
export function serviceOf(baseUrl: string): string {
  const base = new URL(baseUrl);
  return `${base.origin}${base.pathname.replace(/\/+$/, "")}`;
}

/** A file name the media API takes: letters, digits, `.`, `_`, `-` (the rest become `-`), at most 100 characters. */
export function uploadFileName(fileName: string): string {
  const safe = fileName.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "").slice(-100);
  return safe === "" ? "reference" : safe;
}

/** S3's XML error: its Code and Message, for a message that names what was refused. */
function s3Error(text: string): { code: string | null; message: string } {
  const code = /<Code>([^<]{1,80})<\/Code>/.exec(text)?.[1] ?? null;
  const message = /<Message>([^<]{1,200})<\/Message>/.exec(text)?.[1] ?? text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200);
  return { code, message: maskSecrets(message) };
}

export class PictoryUploader implements ReferenceUploader {
  constructor(
    private readonly call: ApiCall,
    readonly service: string,
    private readonly timeouts: UploadTimeouts,
  ) {}

  async upload(file: ReferenceUpload, signal?: AbortSignal): Promise<{ url: string; key: string | null }> {
    const json = await this.call("POST", "/v1/media/generateurl", { fileName: uploadFileName(file.fileName), contentType: file.contentType }, signal);
    const data = asObject(json.data);
    const signedUrl = str(data?.signedUrl);
    const url = str(data?.url);
    if (json.success !== true || !signedUrl || !url || !isHttpUrl(signedUrl) || !isHttpUrl(url)) {
      throw new ServiceError("POST /v1/media/generateurl answered 200 without a signedUrl and url", "BAD_RESPONSE", { retryable: true });
    }
    await this.put(signedUrl, file, signal);
    return { url, key: str(data?.key) };
  }

  private async put(signedUrl: string, file: ReferenceUpload, signal?: AbortSignal): Promise<void> {
    let status: number;
    let text: string;
    try {
      const response = await request(signedUrl, {
        method: "PUT",
        headers: { "content-type": file.contentType, "content-length": String(file.bytes.length), "user-agent": this.timeouts.userAgent },
        body: file.bytes,
        signal,
        headersTimeout: this.timeouts.headersTimeoutMs,
        bodyTimeout: this.timeouts.bodyTimeoutMs,
      });
      status = response.statusCode;
      text = (await response.body.text()).slice(0, 4096);
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? "");
      if ((error as Error).name === "AbortError" || code === "UND_ERR_ABORTED" || code === "ABORT_ERR") throw error;
      throw new ServiceError(`PUT of the reference ${file.fileName}: ${maskSecrets((error as Error).message ?? String(error))}`, RETRYABLE_ERROR_CODES.has(code) ? code : "NETWORK_ERROR", { retryable: true, cause: error });
    }
    if (status >= 200 && status < 300) return;
    const { code, message } = s3Error(text);
    const what = `PUT of the reference ${file.fileName}: HTTP ${status}${code ? ` ${code}` : ""} ${message}`.trim();
    // A signed URL past its day: the next attempt asks for a fresh one.
    if (status === 403 && /expired/i.test(message)) throw new ServiceError(what, "UPLOAD_URL_EXPIRED", { httpStatus: status, retryable: true });
    if (status === 429 || code === "SlowDown") throw new ThrottledError(what, null);
    if (status >= 500 || status === 408) throw new ServiceError(what, `UPLOAD_HTTP_${status}`, { httpStatus: status, retryable: true });
    throw new PermanentError(what, "UPLOAD_REFUSED", status);
  }
}
