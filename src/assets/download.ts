// Reads a result URL into memory, refusing more than `maxBytes` as the bytes arrive. The
// image stage decodes the whole image from memory anyway, and downloads run in a pool of
// `downloadConcurrency` (2), so at most that many images are held; a temporary file per
// image cost a file create, a read and an unlink each (benchmark scenario 3). HTTP here and
// in providers only.
import { Agent, request } from "undici";
import { DEFAULTS } from "../defaults.js";
import { PermanentError, ServiceError } from "../errors.js";
import { RETRYABLE_ERROR_CODES, RETRYABLE_STATUSES } from "../retryable.js";

export interface DownloadOptions {
  maxBytes: number;
  headersTimeoutMs: number;
  /** The longest wait for the next chunk (undici's; it restarts with each chunk). */
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  /** The whole download's time, from the request to the last byte. */
  deadlineMs: number;
  /** The least average rate once `rateGraceMs` have passed: a body that drips is given up. */
  minBytesPerSecond: number;
  rateGraceMs: number;
  signal?: AbortSignal;
}

/** The result URL no longer works (403/404): re-read the job for a fresh one. */
export class ResultUrlExpiredError extends ServiceError {
  override name = "ResultUrlExpiredError";
  constructor(status: number) {
    super(`result URL answered ${status} (expired or removed)`, "RESULT_URL_EXPIRED", { httpStatus: status, retryable: false });
  }
}

/** The limits a Downloader is made with; the whole-download ones default to DEFAULTS'. */
export type DownloaderSettings = Omit<DownloadOptions, "signal" | "deadlineMs" | "minBytesPerSecond" | "rateGraceMs"> &
  Partial<Pick<DownloadOptions, "deadlineMs" | "minBytesPerSecond" | "rateGraceMs">>;

export class Downloader {
  private readonly agent: Agent;
  private readonly options: Omit<DownloadOptions, "signal">;
  constructor(settings: DownloaderSettings) {
    const options = {
      deadlineMs: DEFAULTS.downloadDeadlineMs,
      minBytesPerSecond: DEFAULTS.downloadMinBytesPerSecond,
      rateGraceMs: DEFAULTS.downloadRateGraceMs,
      ...settings,
    };
    this.options = options;
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  /** Downloads `url` whole into memory, or throws (nothing is written anywhere). */
  async download(url: string, signal?: AbortSignal): Promise<Buffer> {
    // Undici's body timeout restarts with every chunk: a body that drips a byte a second
    // never trips it. A watch over the whole download ends it by time and by rate.
    const startedAt = Date.now();
    let received = 0;
    let tooSlow: ServiceError | null = null;
    const watch = new AbortController();
    const timer = setInterval(() => {
      const elapsedMs = Date.now() - startedAt;
      if (elapsedMs > this.options.deadlineMs) tooSlow = new ServiceError(`download took over ${Math.round(this.options.deadlineMs / 1000)} s (${received} bytes received)`, "DOWNLOAD_TIMEOUT", { retryable: true });
      else if (elapsedMs > this.options.rateGraceMs && (received * 1000) / elapsedMs < this.options.minBytesPerSecond) {
        tooSlow = new ServiceError(`download too slow: ${received} bytes in ${Math.round(elapsedMs / 1000)} s (under ${this.options.minBytesPerSecond} bytes/s)`, "DOWNLOAD_TOO_SLOW", { retryable: true });
      }
      if (tooSlow) watch.abort(tooSlow);
    }, Math.min(1_000, this.options.rateGraceMs, this.options.deadlineMs));
    timer.unref();
    // The caller's stop aborts the watch too; linked by hand and unlinked after (AbortSignal.any
    // keeps every download's signal alive as long as the run's own).
    const onStop = () => watch.abort(signal?.reason);
    if (signal?.aborted) onStop();
    else signal?.addEventListener("abort", onStop, { once: true });
    try {
      return await this.fetchWhole(url, watch.signal, (bytes) => (received = bytes));
    } catch (error) {
      // The watch's abort surfaces as an abort: it is a slow download, not the run stopping.
      if (tooSlow && !signal?.aborted) throw tooSlow;
      throw error;
    } finally {
      clearInterval(timer);
      signal?.removeEventListener("abort", onStop);
    }
  }

  private async fetchWhole(url: string, signal: AbortSignal, progress: (received: number) => void): Promise<Buffer> {
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
        progress(received);
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
