// The Pictory adapter's reference upload against the simulator: generateurl, then the signed
// PUT with exactly the signed Content-Type; each fault classified the way the runner retries it
// (a 5xx or an expired signed URL again, a refused PUT never), and the signed URL never in a message.
import { describe, expect, it } from "vitest";
import { PermanentError, ServiceError } from "../src/errors.js";
import { DEFAULT_RETRYABLE_JOB_CODES, PictoryProvider } from "../src/providers/pictory.js";
import { PictoryUploader, serviceOf, uploadFileName } from "../src/providers/pictory-upload.js";
import type { ReferenceUpload } from "../src/providers/provider.js";
import { classifyFailure } from "../src/runner/retry-policy.js";
import { startSimulator, type SimDeps, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { useCleanup } from "./helpers/cleanup.js";

const cleanup = useCleanup();
const PNG: ReferenceUpload = { bytes: Buffer.from("89504e470d0a1a0a00000000", "hex"), fileName: "earbuds shot (1).png", contentType: "image/png" };

async function simAndProvider(options: SimOptionsPatch = {}, deps: SimDeps = {}): Promise<{ s: SimHandle; p: PictoryProvider }> {
  const s = await startSimulator({ jitterMs: 0, ...options }, deps);
  cleanup(s, (h) => h.stop());
  const p = new PictoryProvider({ apiKey: s.apiKey, baseUrl: s.url, pollIntervalMs: 10, connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, connections: 2, retryableJobCodes: DEFAULT_RETRYABLE_JOB_CODES, clockSkewMs: 60_000, userAgent: "imgbatch-test" });
  cleanup(p, (x) => x.close());
  return { s, p };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the upload to fail");
}

describe("PictoryProvider.references.upload", () => {
  it("puts the file at the URL generateurl signed, and answers the permanent URL that serves it", async () => {
    const { s, p } = await simAndProvider();
    expect(p.references.service).toBe(s.url);
    // How plan names the service, from PICTORY_BASE_URL as written (a trailing slash or not).
    expect(serviceOf(`${s.url}/`)).toBe(p.references.service);
    const { url, key } = await p.references.upload(PNG);
    expect(url.startsWith(`${s.origin}/files/uploads/`)).toBe(true);
    expect(key).toMatch(/\/earbuds-shot-1-.png$/);
    const served = await fetch(url);
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await served.arrayBuffer()).equals(PNG.bytes)).toBe(true);
    expect(s.ledger()).toMatchObject({ uploadUrlsIssued: 1, uploads: 1 });
  });

  it.each([
    ["generateurl 503", { rate503: 1, faultRoutes: ["generateurl"] } as SimOptionsPatch, "HTTP_503"],
    ["generateurl 500", { rate500: 1, faultRoutes: ["generateurl"] } as SimOptionsPatch, "HTTP_500"],
    ["the PUT 500", { failUploadsNamed: ["earbuds"] } as SimOptionsPatch, "UPLOAD_HTTP_500"],
    ["the PUT reset", { rateReset: 1, faultRoutes: ["upload"] } as SimOptionsPatch, "UND_ERR_SOCKET"],
  ])("%s: retryable, as data", async (_name, options, code) => {
    const { p } = await simAndProvider(options);
    const error = await failure(p.references.upload(PNG));
    expect(classifyFailure(error)).toMatchObject({ kind: "retryable", code });
  });

  it("a 429 at generateurl is a throttle (no attempt used)", async () => {
    const { p } = await simAndProvider({ rate429: 1, retryAfterSeconds: 3, faultRoutes: ["generateurl"] });
    expect(classifyFailure(await failure(p.references.upload(PNG)))).toEqual({ kind: "throttled", retryAfterMs: 3000 });
  });

  it("a signed URL past its time: UPLOAD_URL_EXPIRED, retryable (the next attempt asks for a fresh one); the URL is in no message", async () => {
    let t = Date.now();
    // The simulator's clock moves a minute per read: a 30 s URL has expired by the PUT.
    const { s, p } = await simAndProvider({ uploadUrlTtlMs: 30_000 }, { now: () => (t += 60_000) });
    const error = await failure(p.references.upload(PNG));
    expect(error).toBeInstanceOf(ServiceError);
    expect(classifyFailure(error)).toMatchObject({ kind: "retryable", code: "UPLOAD_URL_EXPIRED" });
    expect(error.message).toMatch(/Request has expired/);
    expect(error.message).not.toMatch(/sig=|exp=|\/uploads\//);
    expect(s.ledger().uploadsRefused).toEqual({ expired: 1 });
  });

  it("a PUT the storage refuses (the signature does not match): permanent", async () => {
    const { s } = await simAndProvider();
    // generateurl signed image/jpeg; the file is PUT as image/png.
    const issued = (await (await fetch(`${s.url}/v1/media/generateurl`, { method: "POST", headers: { Authorization: s.apiKey, "Content-Type": "application/json" }, body: JSON.stringify({ fileName: "a.jpg", contentType: "image/jpeg" }) })).json()) as { data: Record<string, string> };
    const uploader = new PictoryUploader(async () => ({ success: true, data: issued.data }), s.url, { headersTimeoutMs: 2000, bodyTimeoutMs: 2000, userAgent: "imgbatch-test" });
    const error = await failure(uploader.upload(PNG));
    expect(error).toBeInstanceOf(PermanentError);
    expect(classifyFailure(error)).toMatchObject({ kind: "permanent", code: "UPLOAD_REFUSED" });
    expect(error.message).toMatch(/HTTP 403 SignatureDoesNotMatch/);
  });

  it("a generateurl answer without its URLs is a bad response, retryable", async () => {
    const uploader = new PictoryUploader(async () => ({ success: true, data: { key: "k" } }), "http://x", { headersTimeoutMs: 2000, bodyTimeoutMs: 2000, userAgent: "t" });
    expect(classifyFailure(await failure(uploader.upload(PNG)))).toMatchObject({ kind: "retryable", code: "BAD_RESPONSE" });
  });

  it("names files as the media API takes them", () => {
    expect(uploadFileName("earbuds.png")).toBe("earbuds.png");
    expect(uploadFileName("Produkt Foto (größe 2).jpg")).toBe("Produkt-Foto-gr-e-2-.jpg");
    expect(uploadFileName("../../etc/passwd")).toBe("etc-passwd");
    expect(uploadFileName("")).toBe("reference");
  });

  it("never submits a local reference that was not uploaded (nothing is sent)", async () => {
    const { s, p } = await simAndProvider();
    const error = await failure(p.submit({ prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0", aspectRatio: "1:1", referenceImage: { sha256: "a".repeat(64), contentType: "image/png" } }));
    expect(classifyFailure(error)).toMatchObject({ kind: "permanent", code: "INVALID_REQUEST_BODY" });
    expect(s.ledger().jobsCreated).toBe(0);
  });
});
