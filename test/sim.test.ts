import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { loadSimConfig, simRequestHash, startSimulator, formatSimBanner, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";

const KEY = "pictai_simkey";
const running: SimHandle[] = [];

async function sim(options: SimOptionsPatch = {}): Promise<SimHandle> {
  const handle = await startSimulator({
    latencyMs: { "seedream3.0": 1_000, "flux-schnell": 1_000, nanobanana: 1_000, "nanobanana-pro": 1_000 },
    jitterMs: 0,
    ...options,
  });
  running.push(handle);
  return handle;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((h) => h.stop()));
});

const json = { "Content-Type": "application/json" };

function submit(s: SimHandle, body: unknown, headers: Record<string, string> = { Authorization: KEY, ...json }): Promise<Response> {
  return fetch(`${s.url}/v1/aistudio/images`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
}

async function submitOk(s: SimHandle, body: Record<string, unknown>): Promise<string> {
  const res = await submit(s, body);
  expect(res.status).toBe(200);
  const payload = (await res.json()) as { success: boolean; data: { jobId: string } };
  expect(payload.success).toBe(true);
  return payload.data.jobId;
}

async function get(s: SimHandle, path: string, key = KEY): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${s.url}${path}`, { headers: { Authorization: key } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML and plain-text bodies stay strings
  }
  return { status: res.status, body, headers: res.headers };
}

const PROMPT = "A lighthouse on a cliff at dawn";

describe("POST /v1/aistudio/images validation", () => {
  it("reports every bad field once, ignores unknown fields", async () => {
    const s = await sim();
    const res = await submit(s, { prompt: "hey", model: "SEEDREAM3.0", aspectRatio: "4:3", style: "noir", referenceImageUrl: "not a url", webhook: "ftp://x/y", extra: 1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; message: string; fields: { name: string; errors: string }[] };
    expect(body.code).toBe("INVALID_REQUEST_BODY");
    expect(body.fields.map((f) => f.name)).toEqual(["prompt", "model", "aspectRatio", "style", "referenceImageUrl", "webhook"]);
    expect(body.fields.every((f) => typeof f.errors === "string" && f.errors.length > 0)).toBe(true);

    const missing = await submit(s, { style: "cartoon" });
    expect(((await missing.json()) as { fields: unknown[] }).fields).toEqual([{ name: "prompt", errors: '"prompt" is required' }]);
    const long = await submit(s, { prompt: "x".repeat(5001) });
    expect(long.status).toBe(400);
    // UTF-16 units are counted (Unknown 3): three emoji are six units, so accepted.
    expect((await submit(s, { prompt: "😀😀😀" })).status).toBe(200);
    expect((await submit(s, { prompt: PROMPT, unknownField: true })).status).toBe(200);
  });

  it("refuses non-JSON bodies and a wrong Content-Type with 400", async () => {
    const s = await sim();
    const notJson = await submit(s, "{prompt:");
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { code: string }).code).toBe("INVALID_REQUEST_BODY");
    const text = await submit(s, { prompt: PROMPT }, { Authorization: KEY, "Content-Type": "text/plain" });
    expect(text.status).toBe(400);
    expect(s.ledger().jobsCreated).toBe(0);
  });

  it("rejects a reference with flux-schnell only in that fault mode", async () => {
    const s = await sim();
    const body = { prompt: PROMPT, model: "flux-schnell", referenceImageUrl: "https://example.com/a.png" };
    expect((await submit(s, body)).status).toBe(200);
    s.configure({ rejectReferenceWithFlux: true });
    const res = await submit(s, body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { fields: { name: string }[] }).fields[0]?.name).toBe("referenceImageUrl");
  });
});

describe("auth", () => {
  it.each([
    ["missing", undefined],
    ["Bearer", `Bearer ${KEY}`],
    ["unknown key", "pictai_other"],
    ["wrong format", "sk_live_123"],
  ])("401 for a %s key", async (_name, auth) => {
    const s = await sim();
    const headers: Record<string, string> = auth === undefined ? {} : { Authorization: auth };
    for (const res of [
      await fetch(`${s.url}/v1/quota`, { headers }),
      await submit(s, { prompt: PROMPT }, { ...headers, ...json }),
    ]) {
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ message: "Unauthorized" });
    }
  });

  it("forbiddenHtml answers every API request with Cloudflare's 403 HTML", async () => {
    const s = await sim({ forbiddenHtml: true });
    const res = await get(s, "/v1/quota");
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.body).toContain("1010");
  });
});

describe("job lifecycle", () => {
  it("goes in-progress → completed with a real PNG of the reported size, debiting at completion", async () => {
    const s = await sim();
    const jobId = await submitOk(s, { prompt: PROMPT, aspectRatio: "16:9" });
    expect(jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await get(s, `/v1/jobs/${jobId}`)).body).toEqual({ job_id: jobId, success: true, data: { status: "in-progress" } });
    expect((await get(s, "/v1/quota")).body.aiCredits.used).toBe(0);
    expect(s.ledger().inFlightNow).toBe(1);

    s.advance(1_000);
    const done = await get(s, `/v1/jobs/${jobId}`);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ job_id: jobId, success: true, data: { status: "completed", width: 1280, height: 720, aiCreditsUsed: 2 } });
    expect(done.body.data.url).toMatch(new RegExp(`^${s.origin}/files/images/user/[0-9a-f-]{36}/[0-9a-f-]{36}\\.png\\?`));

    const file = await fetch(done.body.data.url as string);
    expect(file.status).toBe(200);
    expect(file.headers.get("content-type")).toBe("image/png");
    const bytes = Buffer.from(await file.arrayBuffer());
    expect(Number(file.headers.get("content-length"))).toBe(bytes.length);
    const meta = await sharp(bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 1280, 720]);

    expect((await get(s, "/v1/quota")).body).toEqual({
      videoMinutes: { used: 0, limit: 14400 },
      transcriptionMinutes: { used: 0, limit: 14400 },
      elevenLabsVoiceOverMinutes: { used: 0, limit: 480 },
      aiCredits: { used: 2, limit: 22000 },
    });
  });

  it("fails jobs with the documented shapes, at no cost", async () => {
    const s = await sim({ rateJobFailPermanent: 1 });
    const policy = await submitOk(s, { prompt: PROMPT });
    s.configure({ rateJobFailPermanent: 0, rateJobFailTransient: 1 });
    const transient = await submitOk(s, { prompt: PROMPT });
    s.configure({ rateJobFailTransient: 0 });
    const unreachable = await submitOk(s, { prompt: PROMPT, referenceImageUrl: "https://unreachable.invalid/ref.png" });
    s.advance(1_000);
    for (const [id, code] of [
      [policy, "CONTENT_POLICY_VIOLATION"],
      [transient, "IMAGE_GENERATION_FAILED"],
      [unreachable, "REFERENCE_IMAGE_UNREACHABLE"],
    ] as const) {
      const res = await get(s, `/v1/jobs/${id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ job_id: id, success: false, data: { status: "failed", error_code: code, error_message: expect.any(String) } });
    }
    expect((await get(s, "/v1/quota")).body.aiCredits.used).toBe(0);
    expect(s.ledger().jobsFailed).toBe(3);
  });

  it("404s unknown ids and other keys' jobs with the vendor body", async () => {
    const s = await sim({ apiKeys: [KEY, "pictai_second"] });
    const jobId = await submitOk(s, { prompt: PROMPT });
    const notFound = { success: false, data: { error_code: "5000", error_message: "JOB_NOT_FOUND" } };
    for (const res of [await get(s, "/v1/jobs/00000000-0000-4000-8000-000000000000"), await get(s, `/v1/jobs/${jobId}`, "pictai_second")]) {
      expect(res.status).toBe(404);
      expect(res.body).toEqual(notFound);
    }
  });

  it("expires download URLs with a 403 and hands out a fresh one on re-read; cleans old jobs", async () => {
    const s = await sim({ urlTtlMs: 5_000, jobRetentionMs: 60_000 });
    const jobId = await submitOk(s, { prompt: PROMPT });
    s.advance(1_000);
    const first = (await get(s, `/v1/jobs/${jobId}`)).body.data.url as string;
    s.advance(6_000);
    const expired = await fetch(first);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("AccessDenied");
    const fresh = (await get(s, `/v1/jobs/${jobId}`)).body.data.url as string;
    expect(fresh).not.toBe(first);
    expect((await fetch(fresh)).status).toBe(200);
    expect((await fetch(fresh.replace(/sig=[0-9a-f]+/, "sig=" + "0".repeat(32)))).status).toBe(403);

    s.advance(60_000);
    expect((await get(s, `/v1/jobs/${jobId}`)).body).toEqual({ job_id: jobId, success: true, data: { status: "cleaned" } });
    expect((await fetch(fresh)).status).toBe(403);
  });
});

describe("listings", () => {
  it("pages GET /v1/jobs newest first with a base64 nextPageKey, null at the end", async () => {
    const s = await sim({ pageSize: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submitOk(s, { prompt: `${PROMPT} #${i}` }));
    const seen: string[] = [];
    let key: string | null = null;
    let pages = 0;
    do {
      const res = await get(s, `/v1/jobs${key === null ? "" : `?nextPageKey=${encodeURIComponent(key)}`}`);
      expect(res.status).toBe(200);
      pages++;
      for (const item of res.body.items) {
        expect(item).toMatchObject({ job_id: item.data.jobId, success: true, data: { status: "in-progress" } });
        expect(new Date(item.data.createdAt).toISOString()).toBe(item.data.createdAt);
        seen.push(item.data.jobId);
      }
      key = res.body.nextPageKey;
      if (key !== null) expect(JSON.parse(Buffer.from(key, "base64").toString())).toHaveProperty("lastEvaluatedKey");
    } while (key !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
    expect((await get(s, "/v1/jobs?nextPageKey=bm9wZQ==")).status).toBe(400);
  });

  it("lists only completed images, with their own ids, the request echoed, nextPageKey absent at the end", async () => {
    const s = await sim({ imagesPageSize: 2 });
    const jobIds = [
      await submitOk(s, { prompt: `${PROMPT} a`, style: "vintage" }),
      await submitOk(s, { prompt: `${PROMPT} b`, model: "nanobanana", aspectRatio: "9:16" }),
      await submitOk(s, { prompt: `${PROMPT} c`, referenceImageUrl: "https://example.com/r.png" }),
    ];
    expect((await get(s, "/v1/aistudio/images")).body).toEqual({ items: [] });
    s.advance(1_000);
    await submitOk(s, { prompt: `${PROMPT} still running` });

    const page1 = (await get(s, "/v1/aistudio/images")).body;
    expect(page1.items).toHaveLength(2);
    expect(typeof page1.nextPageKey).toBe("string");
    const page2 = (await get(s, `/v1/aistudio/images?nextPageKey=${encodeURIComponent(page1.nextPageKey)}`)).body;
    expect(page2).not.toHaveProperty("nextPageKey");
    const items = [...page1.items, ...page2.items];
    expect(items.map((i: { prompt: string }) => i.prompt)).toEqual([`${PROMPT} c`, `${PROMPT} b`, `${PROMPT} a`]);
    for (const item of items) expect(jobIds).not.toContain(item.id);
    expect(items[1]).toEqual({
      url: expect.stringContaining(`/files/images/user/`),
      id: expect.any(String),
      prompt: `${PROMPT} b`,
      aspectRatio: "9:16",
      createdDate: expect.stringMatching(/Z$/),
      model: "nanobanana",
      width: 720,
      height: 1280,
    });
    expect(items[0]).toMatchObject({ referenceImageUrl: "https://example.com/r.png", model: "seedream3.0", aspectRatio: "1:1" });
    expect(items[2]).toMatchObject({ style: "vintage" });
  });
});

describe("credits", () => {
  it("debits exact fractional prices and refuses a submit beyond the limit", async () => {
    const s = await sim({ creditsLimit: 2 });
    for (let i = 0; i < 3; i++) await submitOk(s, { prompt: PROMPT, model: "flux-schnell" });
    s.advance(1_000);
    expect((await get(s, "/v1/quota")).body.aiCredits).toEqual({ used: 1.8, limit: 2 });
    const refused = await submit(s, { prompt: PROMPT, model: "flux-schnell" });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { code: string }).code).toBe("INSUFFICIENT_AI_CREDITS");
  });

  it("fail-job mode accepts the job and fails it with INSUFFICIENT_AI_CREDITS", async () => {
    const s = await sim({ creditsLimit: 1, insufficientCredits: "fail-job" });
    const jobId = await submitOk(s, { prompt: PROMPT });
    s.advance(1_000);
    expect((await get(s, `/v1/jobs/${jobId}`)).body.data).toMatchObject({ status: "failed", error_code: "INSUFFICIENT_AI_CREDITS" });
    expect((await get(s, "/v1/quota")).body.aiCredits.used).toBe(0);
  });
});

describe("faults", () => {
  it("429 with and without Retry-After", async () => {
    const s = await sim({ rate429: 1 });
    const with429 = await get(s, "/v1/quota");
    expect([with429.status, with429.body, with429.headers.get("retry-after")]).toEqual([429, { message: "Too Many Requests" }, "1"]);
    s.configure({ rate429: 0, rate429NoRetryAfter: 1 });
    const without = await get(s, "/v1/quota");
    expect([without.status, without.headers.get("retry-after")]).toEqual([429, null]);
    expect(s.ledger().faultsInjected).toEqual({ "429": 1, "429-no-retry-after": 1 });
  });

  it("throttles per key with a token bucket", async () => {
    const s = await sim({ rpm: 60, rpmBurst: 2 });
    expect((await get(s, "/v1/quota")).status).toBe(200);
    expect((await get(s, "/v1/quota")).status).toBe(200);
    const third = await get(s, "/v1/quota");
    expect(third.status).toBe(429);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    s.advance(1_000);
    expect((await get(s, "/v1/quota")).status).toBe(200);
  });

  it("5xx bodies and resets, only on the chosen routes", async () => {
    const s = await sim({ rate500: 1, faultRoutes: ["quota"] });
    expect(await get(s, "/v1/quota")).toMatchObject({ status: 500, body: { message: "Internal server error" } });
    expect((await get(s, "/v1/jobs")).status).toBe(200);
    s.configure({ rate500: 0, rate502: 1 });
    expect((await get(s, "/v1/quota")).headers.get("content-type")).toContain("text/html");
    s.configure({ rate502: 0, rate503: 1 });
    expect(await get(s, "/v1/quota")).toMatchObject({ status: 503, body: "Service Unavailable\n" });
    s.configure({ rate503: 0, rateReset: 1 });
    await expect(get(s, "/v1/quota")).rejects.toThrow();
  });

  it("lost create: no usable response, yet the job exists and completes", async () => {
    const s = await sim({ rateLostCreate: 1, seed: 7 });
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        const res = await submit(s, { prompt: `${PROMPT} ${i}` });
        outcomes.push(String(res.status));
        await res.text();
      } catch {
        outcomes.push("reset");
      }
    }
    expect(outcomes.every((o) => o === "502" || o === "reset")).toBe(true);
    expect(new Set(outcomes).size).toBe(2);
    s.advance(1_000);
    const list = (await get(s, "/v1/jobs")).body.items as { data: { status: string } }[];
    expect(list).toHaveLength(6);
    expect(list.every((item) => item.data.status === "completed")).toBe(true);
    expect(s.ledger().jobsCreated).toBe(6);
  });

  it("truncated download dies before Content-Length is reached; wrong type serves JPEG bytes", async () => {
    const s = await sim();
    const jobId = await submitOk(s, { prompt: PROMPT });
    s.advance(1_000);
    const url = (await get(s, `/v1/jobs/${jobId}`)).body.data.url as string;
    s.configure({ rateTruncatedDownload: 1 });
    const truncated = await fetch(url);
    expect(truncated.status).toBe(200);
    await expect(truncated.arrayBuffer()).rejects.toThrow();
    s.configure({ rateTruncatedDownload: 0, rateWrongContentType: 1 });
    const jpeg = await fetch(url);
    expect(jpeg.headers.get("content-type")).toBe("image/png");
    expect((await sharp(Buffer.from(await jpeg.arrayBuffer())).metadata()).format).toBe("jpeg");
  });

  it("delivers the terminal job body to the webhook, twice in duplicate mode", async () => {
    const received: unknown[] = [];
    const hook = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      req.on("end", () => {
        received.push(JSON.parse(text));
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    try {
      const s = await sim({ latencyMs: { "seedream3.0": 20 }, rateWebhookDuplicate: 1 });
      const webhook = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
      const jobId = await submitOk(s, { prompt: PROMPT, webhook });
      for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(received).toHaveLength(2);
      expect(received[0]).toMatchObject({ job_id: jobId, success: true, data: { status: "completed" } });
      expect(s.ledger().webhooksSent).toBe(2);
    } finally {
      hook.closeAllConnections();
      await new Promise((resolve) => hook.close(resolve));
    }
  });
});

describe("ledger and config", () => {
  it("counts jobs per request hash, routes and the in-flight peak", async () => {
    const s = await sim();
    await submitOk(s, { prompt: PROMPT });
    await submitOk(s, { prompt: PROMPT, model: "seedream3.0", aspectRatio: "1:1" });
    await submitOk(s, { prompt: PROMPT, style: "cartoon" });
    s.advance(1_000);
    await submitOk(s, { prompt: `${PROMPT} later` });
    await get(s, "/v1/jobs");
    const ledger = s.ledger();
    expect(ledger.jobsCreated).toBe(4);
    expect(ledger.jobsByRequestHash[simRequestHash({ prompt: PROMPT })]).toBe(2);
    expect(ledger.jobsByRequestHash[simRequestHash({ prompt: PROMPT, style: "cartoon" })]).toBe(1);
    expect(ledger.maxInFlight).toBe(3);
    expect(ledger.inFlightNow).toBe(1);
    expect(ledger.requestsByRoute).toMatchObject({ "POST /v1/aistudio/images": 4, "GET /v1/jobs": 1 });
    expect(ledger.requestsPerMinuteMax).toBe(5);
    const overHttp = (await (await fetch(`${s.origin}/__sim/ledger`)).json()) as { jobsCreated: number };
    expect(overHttp.jobsCreated).toBe(4);
    await fetch(`${s.origin}/__sim/reset`, { method: "POST" });
    expect(s.ledger().jobsCreated).toBe(0);
    expect(formatSimBanner(s)).toContain(s.url);
    expect(() => s.configure({ rateNope: 1 } as SimOptionsPatch)).toThrow(/"rateNope"/);
  });

  it("loadSimConfig names the file and every bad key", () => {
    const dir = mkdtempSync(join(tmpdir(), "imgbatch-sim-"));
    const file = join(dir, "sim.json");
    writeFileSync(file, JSON.stringify({ rate500: 0.1, rateTypo: 1, rate502: 2, latencyMs: { "flux-schnell": 5 } }));
    expect(() => loadSimConfig(file)).toThrow(/sim\.json[\s\S]*"rateTypo"[\s\S]*"rate502"/);
    writeFileSync(file, JSON.stringify({ rate500: 0.1, latencyMs: { "flux-schnell": 5 } }));
    expect(loadSimConfig(file)).toEqual({ rate500: 0.1, latencyMs: { "flux-schnell": 5 } });
    writeFileSync(file, "{ not json");
    expect(() => loadSimConfig(file)).toThrow(/sim\.json.*not valid JSON/);
  });

  it("stop() closes keep-alive connections and frees the port", async () => {
    const s = await startSimulator();
    await get(s, "/v1/quota");
    await s.stop();
    await expect(fetch(`${s.url}/v1/quota`)).rejects.toThrow();
  });
});
