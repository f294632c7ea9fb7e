// The reference stager's retries, as data: an upload answered by a scripted sequence of outcomes
// (an expired signed URL, 5xx, a 429, a refusal) ends uploaded or REFERENCE_UPLOAD_FAILED after
// the attempts the retry policy allows; a 429 uses none; items of one file share one upload; a
// file uploaded before (the store) is not uploaded again.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { PermanentError, ServiceError, ThrottledError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import type { Provider, ReferenceUpload } from "../src/providers/provider.js";
import { ReferenceStager } from "../src/runner/references.js";
import type { Store } from "../src/store/port.js";
import type { UploadRecord } from "../src/store/types.js";

const BYTES = Buffer.from("89504e470d0a1a0a0000", "hex");
const SHA = createHash("sha256").update(BYTES).digest("hex");
const REQUEST = { prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0" as const, aspectRatio: "1:1" as const, referenceImage: { sha256: SHA, contentType: "image/png" as const } };

type Outcome = "ok" | "expired" | "503" | "429" | "refused";
const errors: Record<Exclude<Outcome, "ok">, () => Error> = {
  expired: () => new ServiceError("PUT of the reference earbuds.png: HTTP 403 AccessDenied Request has expired", "UPLOAD_URL_EXPIRED", { retryable: true }),
  "503": () => new ServiceError("POST /v1/media/generateurl: HTTP 503", "HTTP_503", { retryable: true }),
  "429": () => new ThrottledError("429", 50),
  refused: () => new PermanentError("PUT of the reference earbuds.png: HTTP 400 EntityTooLarge", "UPLOAD_REFUSED", 400),
};

function stager(script: Outcome[], stored: UploadRecord[] = []) {
  const dir = mkdtempSync(join(tmpdir(), "imgbatch-stager-"));
  writeFileSync(join(dir, "earbuds.png"), BYTES);
  const calls: ReferenceUpload[] = [];
  const sleeps: number[] = [];
  const records: UploadRecord[] = [...stored];
  const provider = {
    name: "pictory",
    references: {
      service: "https://api.example/pictoryapis",
      async upload(file: ReferenceUpload) {
        calls.push(file);
        const outcome = script[calls.length - 1] ?? "ok";
        if (outcome !== "ok") throw errors[outcome]();
        return { url: `https://cdn.example/${calls.length}/earbuds.png`, key: null };
      },
    },
  } as unknown as Provider;
  const store = {
    async uploadOf(sha256: string, service: string) {
      return records.find((r) => r.sha256 === sha256 && r.service === service);
    },
    async recordUpload(r: UploadRecord) {
      records.push(r);
    },
  } as unknown as Store;
  const never = new AbortController().signal;
  const s = new ReferenceStager({
    store,
    provider,
    gate: { take: async () => {}, send: (p) => p, retryAfterMs: (ms) => { sleeps.push(ms ?? 0); return 0; } },
    references: () => ({ sha256: SHA, contentType: "image/png", path: join(dir, "earbuds.png"), fileName: "earbuds.png" }),
    options: { backoffBaseMs: 0, backoffCapMs: 0, maxAttempts: 3 },
    log: createLogger({ level: "silent" }),
    now: () => 1_000,
    random: () => 0,
    softSignal: never,
    hardSignal: never,
  });
  return { s, calls, records, sleeps };
}

describe("ReferenceStager", () => {
  it.each([
    ["at once", ["ok"] as Outcome[], 1, "https://cdn.example/1/earbuds.png"],
    ["an expired signed URL, then a fresh one", ["expired", "ok"] as Outcome[], 2, "https://cdn.example/2/earbuds.png"],
    ["two 5xx, then through (the third of 3 attempts)", ["503", "503", "ok"] as Outcome[], 3, "https://cdn.example/3/earbuds.png"],
    ["429s use no attempt", ["429", "503", "429", "503", "ok"] as Outcome[], 5, "https://cdn.example/5/earbuds.png"],
  ])("uploads %s", async (_name, script, calls, url) => {
    const t = stager(script);
    expect((await t.s.resolve(REQUEST)).referenceImageUrl).toBe(url);
    expect(t.calls).toHaveLength(calls);
    expect(t.records).toEqual([{ sha256: SHA, service: "https://api.example/pictoryapis", url, key: null, contentType: "image/png", bytes: BYTES.length, uploadedAt: 1_000 }]);
    expect(t.sleeps).toEqual(script.filter((o) => o === "429").map(() => 50));
  });

  it.each([
    ["three 5xx: out of attempts", ["503", "503", "503"] as Outcome[], 3, /\(HTTP_503: .*; 3 attempts\)/],
    ["a refusal: at once", ["refused"] as Outcome[], 1, /\(UPLOAD_REFUSED: .*EntityTooLarge; 1 attempt\)/],
    ["expired every time", ["expired", "expired", "expired"] as Outcome[], 3, /\(UPLOAD_URL_EXPIRED: .*Request has expired; 3 attempts\)/],
  ])("fails %s, once for every item of the file", async (_name, script, calls, reason) => {
    const t = stager(script);
    const outcomes = await Promise.allSettled([t.s.resolve(REQUEST), t.s.resolve({ ...REQUEST, prompt: "Aurora Pro earbuds on a beach" })]);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      const error = (o as PromiseRejectedResult).reason as PermanentError;
      expect(error.code).toBe("REFERENCE_UPLOAD_FAILED");
      expect(error.message).toMatch(/^the reference earbuds\.png could not be uploaded /);
      expect(error.message).toMatch(reason);
    }
    expect(t.calls).toHaveLength(calls);
    expect(t.records).toEqual([]);
  });

  it("shares one upload among the items of a file, and reuses one the store recorded", async () => {
    const t = stager(["ok"]);
    const [a, b] = await Promise.all([t.s.resolve(REQUEST), t.s.resolve(REQUEST)]);
    expect(a.referenceImageUrl).toBe(b.referenceImageUrl);
    expect(t.calls).toHaveLength(1);
    const earlier = stager(["refused"], [{ sha256: SHA, service: "https://api.example/pictoryapis", url: "https://cdn.example/before.png", key: null, contentType: "image/png", bytes: 10, uploadedAt: 1 }]);
    expect((await earlier.s.resolve(REQUEST)).referenceImageUrl).toBe("https://cdn.example/before.png");
    expect(earlier.calls).toHaveLength(0);
  });

  it("leaves a request without a local reference as it is", async () => {
    const t = stager(["refused"]);
    const plain = { prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0" as const, aspectRatio: "1:1" as const };
    expect(await t.s.resolve(plain)).toBe(plain);
    expect(t.calls).toHaveLength(0);
  });
});
