// Reads a result URL into memory, refusing more than `maxBytes` as the bytes arrive. The
// image stage decodes the whole image from memory anyway, and downloads run in a pool of
// `downloadConcurrency` (2), so at most that many images are held; a temporary file per
// image cost a file create, a read and an unlink each (benchmark scenario 3). HTTP here and
// in providers only.
import { Agent, request } from "undici";
import { PermanentError, ServiceError } from "../errors.js";
import { RETRYABLE_ERROR_CODES, RETRYABLE_STATUSES } from "../runner/retry-policy.js";

export interface DownloadOptions {
  maxBytes: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  signal?: AbortSignal;
}

/** The result URL no longer works (403/404): re-read the job for a fresh one. */
export class ResultUrlExpiredError extends ServiceError {
  override name = "ResultUrlExpiredError";
  constructor(status: number) {
    super(`result URL answered ${status} (expired or removed)`, "RESULT_URL_EXPIRED", { httpStatus: status, retryable: false });
  }
}

export class Downloader {
  private readonly agent: Agent;
  constructor(private readonly options: Omit<DownloadOptions, "signal">) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  /** Downloads `url` whole into memory, or throws (nothing is written anywhere). */
  async download(url: string, signal?: AbortSignal): Promise<Buffer> {
    let response;
    try {
      response = await request(url, { method: "GET", dispatcher: this.agent, signal, headers: { "user-agent": "imgbatch" } });
    } catch (error) {
      throw networkError("download failed before any byte arrived", error);
    }
    if (response.statusCode === 403 || response.statusCode === 404 || response.statusCode === 410) {
      await response.body.dump();
      throw new ResultUrlExpiredError(response.statusCode);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new ServiceError(`download answered HTTP ${response.statusCode}`, `HTTP_${response.statusCode}`, {
        httpStatus: response.statusCode,
        retryable: RETRYABLE_STATUSES.has(response.statusCode),
      });
    }
    const declared = Number(response.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > this.options.maxBytes) {
      // Destroying an unread undici body emits RequestAbortedError; with no listener that
      // would be an uncaught exception that ends the process.
      response.body.on("error", () => {});
      response.body.destroy();
      throw new PermanentError(`image is ${declared} bytes, over the ${this.options.maxBytes}-byte limit`, "DOWNLOAD_TOO_LARGE");
    }
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > this.options.maxBytes) {
          response.body.on("error", () => {});
          response.body.destroy();
          throw new PermanentError(`image is over the ${this.options.maxBytes}-byte limit`, "DOWNLOAD_TOO_LARGE");
        }
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof PermanentError) throw error;
      throw networkError(`download failed after ${received} of ${Number.isFinite(declared) ? declared : "?"} bytes`, error);
    }
    if (Number.isFinite(declared) && received !== declared) {
      throw new ServiceError(`download ended after ${received} of ${declared} bytes`, "DOWNLOAD_TRUNCATED", { retryable: true });
    }
    return Buffer.concat(chunks, received);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * A dropped or stalled connection as a retryable ServiceError keeping undici's code, so the
 * runner sees `retryable` like any other service failure. Anything else (an abort, the size
 * limit, a local disk error such as ENOSPC that must stop the run) passes through unchanged.
 */
function networkError(context: string, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !RETRYABLE_ERROR_CODES.has(code)) return error;
  return new ServiceError(`${context}: ${(error as Error).message}`, code, { retryable: true, cause: error });
}
