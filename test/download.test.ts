// The Downloader against the simulator's CloudFront side (signed, expiring file URLs with
// download faults): whole files read into memory under a size cap, and each failure
// classified the way the runner relies on.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { Downloader, ResultUrlExpiredError, type DownloaderSettings } from "../src/assets/download.js";
import { PermanentError, ServiceError } from "../src/errors.js";
import { classifyFailure } from "../src/runner/retry-policy.js";
import { startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { closeServer, sameLatencyForAllModels, useCleanup } from "./helpers/cleanup.js";

const LATENCY_MS = 1_000;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);


const cleanup = useCleanup();

async function sim(options: SimOptionsPatch = {}): Promise<SimHandle> {
  const handle = await startSimulator({ ...sameLatencyForAllModels(LATENCY_MS), ...options });
  cleanup(handle, (h) => h.stop());
  return handle;
}

function downloader(options: Partial<DownloaderSettings> = {}): Downloader {
  const d = new Downloader({ maxBytes: 10 * 1024 * 1024, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, connectTimeoutMs: 2000, ...options });
  cleanup(d, (x) => x.close());
  return d;
}

/** Submits through the sim's HTTP API, lets the job finish on the sim clock, returns its file URL. */
async function resultUrl(s: SimHandle, aspectRatio = "16:9"): Promise<string> {
  const created = await fetch(`${s.url}/v1/aistudio/images`, {
    method: "POST",
    headers: { Authorization: s.apiKey, "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "A harbour at night with lanterns", aspectRatio }),
  });
  expect(created.status).toBe(200);
  const { data } = (await created.json()) as { data: { jobId: string } };
  s.advance(LATENCY_MS);
  const job = await fetch(`${s.url}/v1/jobs/${data.jobId}`, { headers: { Authorization: s.apiKey } });
  const body = (await job.json()) as { data: { status: string; url: string } };
  expect(body.data.status).toBe("completed");
  return body.data.url;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the download to fail, it succeeded");
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A local server answering every request with `handler`, for shapes the sim never sends. */
async function server(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const srv = createServer(handler);
  cleanup(srv, closeServer);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/files/x.png`;
}

describe("Downloader", () => {
  it("downloads a whole PNG into memory and writes nothing anywhere", async () => {
    const s = await sim();
    const url = await resultUrl(s);
    const bytes = await downloader().download(url);
    const expected = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(bytes.length).toBe(expected.length);
    expect(sha256(bytes)).toBe(sha256(expected));
    expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  });

  it("an expired URL is ResultUrlExpiredError (403), not retryable as is", async () => {
    const s = await sim({ urlTtlMs: 60_000 });
    const url = await resultUrl(s);
    s.advance(60_001);
    const error = await rejection(downloader().download(url));
    expect(error).toBeInstanceOf(ResultUrlExpiredError);
    expect(error).toMatchObject({ code: "RESULT_URL_EXPIRED", httpStatus: 403, retryable: false });
  });

  it("a tampered signature and a cleaned job's file are refused the same way", async () => {
    const s = await sim({ jobRetentionMs: 5_000 });
    const url = await resultUrl(s);
    const d = downloader();
    await expect(d.download(url.replace(/sig=[0-9a-f]/, "sig=g"))).rejects.toBeInstanceOf(ResultUrlExpiredError);
    s.advance(5_000);
    await expect(d.download(url)).rejects.toBeInstanceOf(ResultUrlExpiredError);
  });

  it("a truncated download is a retryable error", async () => {
    const s = await sim({ rateTruncatedDownload: 1 });
    const url = await resultUrl(s);
    const error = await rejection(downloader().download(url));
    expect(classifyFailure(error).kind).toBe("retryable");
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ retryable: true, code: "UND_ERR_SOCKET" });
    expect(s.ledger().faultsInjected["download:truncated"]).toBe(1);
  });

  it("a file over maxBytes (declared length) is PermanentError DOWNLOAD_TOO_LARGE", async () => {
    const s = await sim();
    const url = await resultUrl(s);
    const error = await rejection(downloader({ maxBytes: 100 }).download(url));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ code: "DOWNLOAD_TOO_LARGE", retryable: false, message: expect.stringMatching(/^image is \d+ bytes, over the 100-byte limit$/) });
    expect(classifyFailure(error).kind).toBe("permanent");
  });

  it("a chunked body that grows over maxBytes is stopped mid-stream", async () => {
    const url = await server((_req, res) => {
      res.writeHead(200, { "Content-Type": "image/png" }); // no Content-Length: chunked
      res.write(Buffer.concat([PNG_SIGNATURE, Buffer.alloc(4000, 1)]));
      const timer = setInterval(() => {
        if (!res.write(Buffer.alloc(4000, 2))) return;
      }, 5);
      res.on("close", () => clearInterval(timer));
    });
    const error = await rejection(downloader({ maxBytes: 20_000 }).download(url));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ code: "DOWNLOAD_TOO_LARGE", message: "image is over the 20000-byte limit" });
  });

  it("a first chunk already over maxBytes is stopped too", async () => {
    const url = await server((_req, res) => {
      res.writeHead(200, { "Content-Type": "image/png" });
      res.write(Buffer.alloc(50_000, 7)); // chunked: no declared length to refuse up front
      res.end();
    });
    const error = await rejection(downloader({ maxBytes: 1_000 }).download(url));
    expect(error).toMatchObject({ code: "DOWNLOAD_TOO_LARGE", message: "image is over the 1000-byte limit" });
  });

  it("JPEG bytes labelled image/png still download (the format is read from the bytes later)", async () => {
    const s = await sim({ rateWrongContentType: 1 });
    const url = await resultUrl(s);
    const bytes = await downloader().download(url);
    expect(s.ledger().faultsInjected["download:wrong-content-type"]).toBe(1);
    expect([...bytes.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
  });

  it("a slow download whose chunks arrive within bodyTimeout completes", async () => {
    const s = await sim({ rateSlowDownload: 1, slowDownloadChunkDelayMs: 60 });
    const url = await resultUrl(s, "1:1");
    const startedAt = Date.now();
    const bytes = await downloader({ bodyTimeoutMs: 1_000 }).download(url);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    expect(s.ledger().faultsInjected["download:slow"]).toBe(1);
    expect(sha256(bytes)).toBe(sha256(Buffer.from(await (await fetch(url)).arrayBuffer())));
  });

  it("a download stalled longer than bodyTimeout is retryable", async () => {
    // undici checks body timeouts on a ~1 s clock: a 500 ms timeout fires within 1-1.5 s.
    const s = await sim({ rateSlowDownload: 1, slowDownloadChunkDelayMs: 3_000 });
    const url = await resultUrl(s);
    const error = await rejection(downloader({ bodyTimeoutMs: 500 }).download(url));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: "UND_ERR_BODY_TIMEOUT", retryable: true });
    expect(classifyFailure(error).kind).toBe("retryable");
  });

  it.each([
    [503, { rate503: 1 }, true],
    [500, { rate500: 1 }, true],
  ] as const)("HTTP %i on the file is a ServiceError, retryable %s", async (status, rates, retryable) => {
    const s = await sim();
    const url = await resultUrl(s);
    s.configure({ ...rates, faultRoutes: ["file"] });
    const error = await rejection(downloader().download(url));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: `HTTP_${status}`, httpStatus: status, retryable });
  });

  it("connection refused is a retryable ServiceError", async () => {
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const error = await rejection(downloader().download(`http://127.0.0.1:${port}/files/x.png`));
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: "ECONNREFUSED", retryable: true });
  });

  it("an abort stops the download, is classified as an abort,", async () => {
    const s = await sim({ rateSlowDownload: 1, slowDownloadChunkDelayMs: 100 });
    const url = await resultUrl(s);
    const controller = new AbortController();
    const pending = rejection(downloader().download(url, controller.signal));
    setTimeout(() => controller.abort(), 150);
    const error = await pending;
    expect(classifyFailure(error).kind).toBe("aborted");
  });

  it("a body that drips (no length, a byte at a time) is given up by its rate, not waited on forever", async () => {
    const url = await server((_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      const drip = setInterval(() => res.write(Buffer.from([0x89])), 20);
      res.on("close", () => clearInterval(drip));
    });
    // Under 1,000 bytes/s once 200 ms have passed: the body timeout (2 s) never trips, a chunk comes every 20 ms.
    const error = await rejection(downloader({ minBytesPerSecond: 1_000, rateGraceMs: 200, deadlineMs: 60_000 }).download(url));
    expect(error).toMatchObject({ code: "DOWNLOAD_TOO_SLOW", retryable: true });
    expect(classifyFailure(error).kind).toBe("retryable");
  });

  it("a body that keeps coming fast but never ends meets the download's deadline", async () => {
    const url = await server((_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      const flood = setInterval(() => res.write(Buffer.alloc(4096, 1)), 10);
      res.on("close", () => clearInterval(flood));
    });
    const error = await rejection(downloader({ minBytesPerSecond: 1, rateGraceMs: 100, deadlineMs: 400 }).download(url));
    expect(error).toMatchObject({ code: "DOWNLOAD_TIMEOUT", retryable: true });
  });
});
