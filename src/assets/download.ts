// Streams a result URL to a temporary file beside its destination, hashing as it goes and
// refusing more than `maxBytes`. HTTP here and in providers only.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Agent, request } from "undici";
import { PermanentError, ServiceError } from "../errors.js";
import { RETRYABLE_ERROR_CODES, RETRYABLE_STATUSES } from "../runner/retry-policy.js";
import { tempPathFor } from "./atomic-file.js";

export interface DownloadOptions {
  maxBytes: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  signal?: AbortSignal;
}

export interface DownloadedFile {
  tempPath: string;
  sha256: string;
  bytes: number;
  head: Buffer;
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

  /** Downloads `url` next to `finalPath` under a temporary name; the caller commits or removes it. */
  async download(url: string, finalPath: string, signal?: AbortSignal): Promise<DownloadedFile> {
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
    await mkdir(dirname(finalPath), { recursive: true });
    const tempPath = tempPathFor(finalPath);
    const hash = createHash("sha256");
    let bytes = 0;
    let head = Buffer.alloc(0);
    const maxBytes = this.options.maxBytes;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > maxBytes) return done(new PermanentError(`image is over the ${maxBytes}-byte limit`, "DOWNLOAD_TOO_LARGE"));
        if (head.length < 16) head = Buffer.concat([head, chunk.subarray(0, 16 - head.length)]);
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(response.body, meter, createWriteStream(tempPath, { flags: "wx" }), { signal });
    } catch (error) {
      await rm(tempPath, { force: true });
      throw networkError(`download failed after ${bytes} of ${Number.isFinite(declared) ? declared : "?"} bytes`, error);
    }
    if (Number.isFinite(declared) && bytes !== declared) {
      await rm(tempPath, { force: true });
      throw new ServiceError(`download ended after ${bytes} of ${declared} bytes`, "DOWNLOAD_TRUNCATED", { retryable: true });
    }
    return { tempPath, sha256: hash.digest("hex"), bytes, head };
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
