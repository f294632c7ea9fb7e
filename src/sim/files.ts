// The CloudFront side: signed, expiring download URLs and the image bytes behind them,
// with the download faults (slow, truncated, JPEG bytes labelled image/png).
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { RATIO_PIXELS } from "../providers/catalog.js";
import { cloudFrontDenied, sendText } from "./http.js";
import type { LedgerRecorder } from "./ledger.js";
import { renderSimImage } from "./png.js";
import type { SimJob, SimState } from "./state.js";

const FILE_PATH = /^\/files\/images\/user\/([0-9a-f-]{36})\/([0-9a-f-]{36})\.png$/;
const SLOW_CHUNKS = 8;

export function filePath(job: SimJob): string {
  return `/files/images/user/${job.userId}/${job.imageId}.png`;
}

function signature(secret: string, path: string, expMs: number): string {
  return createHmac("sha256", secret).update(`${path}|${expMs}`).digest("hex").slice(0, 32);
}

/** An absolute download URL that stops working after `urlTtlMs`. */
export function signedUrl(origin: string, secret: string, job: SimJob, now: number, ttlMs: number): string {
  const path = filePath(job);
  const exp = now + ttlMs;
  return `${origin}${path}?exp=${exp}&sig=${signature(secret, path, exp)}`;
}

export function isFilePath(pathname: string): boolean {
  return pathname.startsWith("/files/");
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: { state: SimState; ledger: LedgerRecorder; secret: string },
): Promise<void> {
  const { state, ledger } = ctx;
  const denied = (message: string): void => sendText(res, 403, "application/xml", cloudFrontDenied(message));
  if (req.method !== "GET" && req.method !== "HEAD") return denied("Access denied");
  const match = FILE_PATH.exec(url.pathname);
  const exp = Number(url.searchParams.get("exp"));
  const sig = url.searchParams.get("sig") ?? "";
  const expected = signature(ctx.secret, url.pathname, exp);
  if (match === null || !Number.isFinite(exp) || sig.length !== expected.length) return denied("Access denied");
  if (!timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) return denied("Access denied");
  if (state.now() > exp) return denied("Request has expired");
  const job = state.jobByImageId(match[1] ?? "", match[2] ?? "");
  if (job === undefined || state.status(job) !== "completed") return denied("Access denied");

  const wrongType = state.faults.roll(state.options.rateWrongContentType);
  if (wrongType) ledger.fault("download:wrong-content-type");
  const bytes = await renderSimImage(job.request.aspectRatio, wrongType ? "jpeg" : "png", job.look === "plain" ? job.request.prompt : job.id, job.imageId, job.look === "blank" ? "blank" : "patterned");
  const headers = {
    "Content-Type": "image/png",
    "Content-Length": String(bytes.length),
    "Cache-Control": "max-age=31536000",
    "X-Cache": "Miss from cloudfront",
  };
  if (req.method === "HEAD") {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const fault = state.faults.downloadFault(state.options);
  if (fault !== "none") ledger.fault(`download:${fault}`);
  res.writeHead(200, headers);
  if (fault === "truncated") {
    // The promised length never arrives: half the bytes, then the connection dies.
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => {
      setTimeout(() => res.destroy(), 10).unref();
    });
    return;
  }
  if (fault === "slow") {
    const chunk = Math.ceil(bytes.length / SLOW_CHUNKS);
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      if (res.destroyed) return;
      res.write(bytes.subarray(offset, offset + chunk));
      await sleep(state.options.slowDownloadChunkDelayMs);
    }
    res.end();
    return;
  }
  res.end(bytes);
}

/** Pixel size of a job's image, as the completed job reports it. */
export function jobPixels(job: SimJob): { width: number; height: number } {
  return RATIO_PIXELS[job.request.aspectRatio];
}
