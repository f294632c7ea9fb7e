// Issue 14: every run ends by itself, whatever the service does. A scripted service answers
// each request at random from a menu of broken answers (seeded, so a failure replays); each
// run must end within a bound computed from the options, with a documented exit code and no
// item left in flight unless the run says it stopped early.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { runCommand, type RunCommandOptions } from "../src/commands/run.js";
import { ExitError, PermanentError } from "../src/errors.js";
import { LocalProvider } from "../src/providers/local.js";
import { mulberry32 } from "../src/sim/faults.js";
import { testContext } from "./helpers/context.js";
import { useCleanup } from "./helpers/cleanup.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const cleanup = useCleanup();

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => (_req, res) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};
const hang: Answer = () => {};
const notJson: Answer = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end("{not json");
};
const redirect: Answer = (_req, res) => {
  res.writeHead(302, { location: "https://elsewhere.example/" });
  res.end();
};
const drip: Answer = (_req, res) => {
  res.writeHead(200, { "content-type": "image/png" });
  const timer = setInterval(() => res.write(Buffer.from([0x89])), 25);
  res.on("close", () => clearInterval(timer));
};

/** Listens on loopback; closed after the test with every connection (a hanging answer holds one). */
async function listen(server: Server): Promise<string> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup(server, (s) => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => s.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/pictoryapis`;
}

/** A Pictory-shaped service whose every answer is drawn from a menu of broken ones. */
async function brokenService(seed: number, png: Buffer): Promise<{ url: string; requests: () => number }> {
  const roll = mulberry32(seed);
  const pick = <T,>(menu: readonly T[]): T => menu[Math.floor(roll() * menu.length)]!;
  let jobs = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const path = (req.url ?? "").split("?")[0]!;
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const completed = json(200, { success: true, data: { status: "completed", url: `${origin}/files/img${jobs}.png`, width: 64, height: 64, aiCreditsUsed: 0.6 } });
    let menu: Answer[];
    if (path.endsWith("/v1/quota")) menu = [json(200, { aiCredits: { used: 0, limit: 1000 } }), json(500, {}), hang];
    else if (req.method === "POST") {
      menu = [() => json(200, { success: true, data: { jobId: `job-${++jobs}` } })(req, res), json(500, { message: "boom" }), json(503, {}), hang, notJson, redirect, json(200, {}), json(429, { message: "Too Many Requests" }, { "retry-after": "1" })];
      if (seed % 3 === 0) menu.push(json(429, { message: "Too Many Requests" }, { "retry-after": "999999" }));
    } else if (/\/v1\/jobs\/[^/]+$/.test(path)) {
      menu = [
        json(200, {}),
        notJson,
        redirect,
        hang,
        json(500, {}),
        json(200, { success: true, data: { status: "in-progress" } }),
        json(200, { success: true, data: { status: "thinking-about-it" } }),
        json(200, { success: true, data: { status: "completed", aiCreditsUsed: -15 } }),
        json(200, { success: true, data: { status: "failed", error_code: "IMAGE_GENERATION_FAILED", error_message: "try again" } }),
        completed,
        completed,
      ];
    } else if (path.endsWith("/v1/jobs") || path.endsWith("/v1/aistudio/images")) menu = [json(200, { items: [] }), hang, json(500, {}), notJson];
    else if (path.startsWith("/files/")) {
      menu = [drip, json(404, {}), hang, (_q, r) => {
        r.writeHead(200, { "content-type": "image/png", "content-length": String(png.length) });
        r.end(png);
      }];
    } else menu = [json(404, {})];
    pick(menu)(req, res);
  });
  return { url: await listen(server), requests: () => requests };
}

const ITEMS = 6;
const OPTIONS = {
  concurrency: 3,
  maxAttempts: 3,
  pollIntervalMs: 20,
  jobTimeoutMs: 400,
  tuning: { backoffBaseMs: 10, backoffCapMs: 50, throttleFallbackMs: 50, reconcileWindowMs: 500, retryAfterCapMs: 200, serviceDownMs: 3_000 },
  network: { connectTimeoutMs: 200, headersTimeoutMs: 200, bodyTimeoutMs: 200, deadlineMs: 500, minBytesPerSecond: 1_000, rateGraceMs: 150 },
} satisfies Partial<RunCommandOptions>;

/**
 * The longest a run may take with these options, whatever the answers: each item makes at most
 * `maxAttempts` submits, each with its lost-submit looks (the reconcile window, then failed looks),
 * its reads (the job timeout, then failed reads) and its download attempts, each request bounded
 * by its timeout and each wait by the backoff cap; items go `concurrency` at a time.
 */
function boundMs(o: typeof OPTIONS, items: number): number {
  const request = o.network.connectTimeoutMs + o.network.headersTimeoutMs + o.network.bodyTimeoutMs;
  const wait = o.tuning.backoffCapMs + o.tuning.retryAfterCapMs + 250;
  const looks = o.tuning.reconcileWindowMs + o.maxAttempts * (2 * 20 * request + wait);
  const reads = o.jobTimeoutMs + o.maxAttempts * (request + wait);
  const download = o.maxAttempts * (request + o.network.deadlineMs + wait);
  const perItem = o.maxAttempts * (request + wait + looks + reads + download);
  return Math.ceil(items / o.concurrency) * perItem + 5_000;
}

describe("every run ends, whatever the service answers", () => {
  // Noise, not a flat colour: a flat frame is what the blank quality gate remakes.
  const png = sharp({ create: { width: 64, height: 64, channels: 3, background: "#000000", noise: { type: "gaussian", mean: 128, sigma: 40 } } }).png().toBuffer();

  it.each([1, 2, 3, 4, 5, 6])("seed %i: ends within the bound computed from the options, with a documented exit code", async (seed) => {
    const service = await brokenService(seed, await png);
    const dir = tempDir();
    const manifest = join(dir, "night.csv");
    writeFileSync(manifest, ["id,prompt", ...Array.from({ length: ITEMS }, (_, i) => `r${i},A lighthouse on a cliff number ${i}`)].join("\n"));
    const t = testContext({ PICTORY_API_KEY: "pictai_chaos", PICTORY_BASE_URL: service.url }, "warn");
    const bound = boundMs(OPTIONS, ITEMS);
    // The run must end before the bound computed from its options (a timer of that length, no
    // tighter wall-clock assertion: a loaded machine only makes it slower, never endless).
    const code = await Promise.race([
      runCommand(manifest, { ...OPTIONS, provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out") }, t.ctx).catch((error: unknown) => {
        if (error instanceof ExitError) return error.exitCode;
        throw error;
      }),
      new Promise<"no end">((resolve) => setTimeout(() => resolve("no end"), bound).unref()),
    ]);
    expect(code, `still running after ${bound} ms; ${service.requests()} requests\n${t.logs()}`).not.toBe("no end");
    expect([0, 2, 3]).toContain(code);
    const db = new Database(join(dir, "db.sqlite"), { readonly: true });
    const states = db.prepare("SELECT state FROM items WHERE superseded_at IS NULL").pluck().all() as string[];
    db.close();
    if (code !== 3) expect(states.every((s) => s === "done" || s === "failed" || s === "missing"), states.join(",")).toBe(true);
    // No partial file is left, and the key is in no file of the run.
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    expect(files.filter((f) => f.endsWith(".imgbatch-tmp"))).toEqual([]);
    for (const file of files) expect(readFileSync(file).includes(Buffer.from("pictai_chaos")), file).toBe(false);
  }, 120_000);

  it("a Retry-After beyond the cap stops the run resumable (exit 3) with the reason, instead of waiting it out", async () => {
    const srv = createServer((req, res) => {
      if ((req.url ?? "").endsWith("/v1/quota")) return json(200, { aiCredits: { used: 0, limit: 1000 } })(req, res);
      json(429, { message: "Too Many Requests" }, { "retry-after": "999999" })(req, res);
    });
    const url = await listen(srv);
    const dir = tempDir();
    const manifest = join(dir, "night.csv");
    writeFileSync(manifest, "id,prompt\nr0,A lighthouse on a cliff at dusk\n");
    const t = testContext({ PICTORY_API_KEY: "pictai_chaos", PICTORY_BASE_URL: url }, "warn");
    const error = await runCommand(manifest, { ...OPTIONS, provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out") }, t.ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExitError);
    expect((error as ExitError).exitCode).toBe(3);
    expect((error as ExitError).message).toMatch(/asked to wait 999999 s .*Retry-After/);
    const db = new Database(join(dir, "db.sqlite"), { readonly: true });
    expect(db.prepare("SELECT state FROM items").pluck().all()).toEqual(["queued"]);
    db.close();
  }, 30_000);

  it("a job that stays in progress fails JOB_TIMEOUT with its job id kept, and retry reads that job before paying", async () => {
    let status = "in-progress";
    let creates = 0;
    const srv = createServer((req, res) => {
      const url = req.url ?? "";
      if (url.endsWith("/v1/quota")) return json(200, { aiCredits: { used: 0, limit: 1000 } })(req, res);
      if (req.method === "POST") return json(200, { success: true, data: { jobId: `job-${++creates}` } })(req, res);
      if (url.startsWith("/files/")) return void png.then((bytes) => {
        res.writeHead(200, { "content-type": "image/png", "content-length": String(bytes.length) });
        res.end(bytes);
      });
      const origin = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      if (status === "in-progress") return json(200, { success: true, data: { status } })(req, res);
      json(200, { success: true, data: { status: "completed", url: `${origin}/files/a.png`, width: 64, height: 64, aiCreditsUsed: 0.6 } })(req, res);
    });
    const url = await listen(srv);
    const dir = tempDir();
    const manifest = join(dir, "night.csv");
    writeFileSync(manifest, "id,prompt\nr0,A lighthouse on a cliff at dusk\n");
    const t = testContext({ PICTORY_API_KEY: "pictai_chaos", PICTORY_BASE_URL: url }, "warn");
    const run = (extra: Partial<RunCommandOptions> = {}) => runCommand(manifest, { ...OPTIONS, provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out"), ...extra }, t.ctx);
    expect(await run()).toBe(2);
    const db = () => new Database(join(dir, "db.sqlite"), { readonly: true });
    const failed = db().prepare("SELECT state, error_code, job_id FROM items").get();
    expect(failed).toEqual({ state: "failed", error_code: "JOB_TIMEOUT", job_id: "job-1" });
    status = "completed";
    expect(await run({ retryFilter: {} })).toBe(0);
    expect(creates).toBe(1);
  }, 30_000);

  /** A service answering each route with one fixed answer; counts requests per route. */
  async function scripted(routes: { submit: Answer; job: Answer; listing?: Answer }): Promise<{ url: string; count: Record<string, number> }> {
    const count: Record<string, number> = { submit: 0, job: 0, listing: 0 };
    const srv = createServer((req, res) => {
      const path = (req.url ?? "").split("?")[0]!;
      if (path.endsWith("/v1/quota")) return json(200, { aiCredits: { used: 0, limit: 1000 } })(req, res);
      const route = req.method === "POST" ? "submit" : /\/v1\/jobs\/[^/]+$/.test(path) ? "job" : "listing";
      count[route]!++;
      (route === "submit" ? routes.submit : route === "job" ? routes.job : (routes.listing ?? json(200, { items: [] })))(req, res);
    });
    return { url: await listen(srv), count };
  }

  async function runOne(url: string, extra: Partial<RunCommandOptions> = {}): Promise<{ code: number; item: { state: string; error_code: string | null; job_id: string | null; error_message: string | null } }> {
    const dir = tempDir();
    const manifest = join(dir, "night.csv");
    writeFileSync(manifest, "id,prompt\nr0,A lighthouse on a cliff at dusk\n");
    const t = testContext({ PICTORY_API_KEY: "pictai_chaos", PICTORY_BASE_URL: url }, "warn");
    const code = await runCommand(manifest, { ...OPTIONS, provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out"), ...extra }, t.ctx).catch((error: unknown) => {
      if (error instanceof ExitError) return error.exitCode;
      throw error;
    });
    const db = new Database(join(dir, "db.sqlite"), { readonly: true });
    const item = db.prepare("SELECT state, error_code, job_id, error_message FROM items").get() as { state: string; error_code: string | null; job_id: string | null; error_message: string | null };
    db.close();
    return { code, item };
  }

  it.each([
    ["200 {}", json(200, {})],
    ["a body that is not JSON", notJson],
    ["a redirect", redirect],
    ["a 500", json(500, {})],
    ["completed with aiCreditsUsed -15", json(200, { success: true, data: { status: "completed", url: "http://127.0.0.1:9/files/a.png", width: 64, height: 64, aiCreditsUsed: -15 } })],
    ["completed with aiCreditsUsed NaN", json(200, { success: true, data: { status: "completed", url: "http://127.0.0.1:9/files/a.png", width: 64, height: 64, aiCreditsUsed: "NaN" } })],
  ])("a read that answers %s every time uses up the item's attempts: POLL_FAILED, job id kept", async (_name, answer) => {
    const service = await scripted({ submit: json(200, { success: true, data: { jobId: "job-1" } }), job: answer });
    const { code, item } = await runOne(service.url);
    expect(code).toBe(2);
    expect(item).toMatchObject({ state: "failed", error_code: "POLL_FAILED", job_id: "job-1" });
    expect(service.count.submit).toBe(1);
    expect(service.count.job).toBeLessThanOrEqual(OPTIONS.maxAttempts);
  }, 30_000);

  it("a service that accepts connections and never answers: the lost submit fails UNRECONCILED, never submitted twice", async () => {
    const service = await scripted({ submit: hang, job: hang, listing: hang });
    const { code, item } = await runOne(service.url, { tuning: { ...OPTIONS.tuning, serviceDownMs: 60_000 } });
    expect(code).toBe(2);
    expect(item.state).toBe("failed");
    expect(item.error_code).toBe("UNRECONCILED");
    expect(item.error_message).toMatch(/looks at the service's listings failed/);
    expect(service.count.submit).toBe(1);
  }, 30_000);

  it("a service that answers nothing but 503s: each item ends UNRECONCILED or the run stops, within the bound", async () => {
    const service = await scripted({ submit: json(503, {}), job: json(503, {}), listing: json(503, {}) });
    const { code, item } = await runOne(service.url, { tuning: { ...OPTIONS.tuning, serviceDownMs: 1_000 } });
    expect([2, 3]).toContain(code);
    expect(["queued", "submitting", "failed"]).toContain(item.state);
    expect(service.count.submit).toBe(1);
  }, 60_000);

  it("always 429 (no attempt ever used) still ends: the run stops once the service answered only 429s for serviceDownMs", async () => {
    const always429 = json(429, { message: "Too Many Requests" }, { "retry-after": "0" });
    const service = await scripted({ submit: always429, job: always429, listing: always429 });
    const { code } = await runOne(service.url, { tuning: { ...OPTIONS.tuning, serviceDownMs: 1_000 } });
    expect(code).toBe(3);
  }, 60_000);

  it("a delivered image lost from disk whose job reads in progress, then 404: missing, never submitted again", async () => {
    let phase: "deliver" | "in-progress" | "gone" = "deliver";
    let creates = 0;
    const image = await png;
    const srv = createServer((req, res) => {
      const path = (req.url ?? "").split("?")[0]!;
      if (path.endsWith("/v1/quota")) return json(200, { aiCredits: { used: 0, limit: 1000 } })(req, res);
      if (req.method === "POST") return json(200, { success: true, data: { jobId: `job-${++creates}` } })(req, res);
      if (path.startsWith("/files/")) {
        res.writeHead(200, { "content-type": "image/png", "content-length": String(image.length) });
        return void res.end(image);
      }
      if (phase === "deliver") return json(200, { success: true, data: { status: "completed", url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/files/a.png`, width: 64, height: 64, aiCreditsUsed: 0.6 } })(req, res);
      if (phase === "in-progress") {
        phase = "gone";
        return json(200, { success: true, data: { status: "in-progress" } })(req, res);
      }
      json(404, { message: "JOB_NOT_FOUND" })(req, res);
    });
    const url = await listen(srv);
    const dir = tempDir();
    const manifest = join(dir, "night.csv");
    writeFileSync(manifest, "id,prompt\nr0,A lighthouse on a cliff at dusk\n");
    const t = testContext({ PICTORY_API_KEY: "pictai_chaos", PICTORY_BASE_URL: url }, "warn");
    const run = () => runCommand(manifest, { ...OPTIONS, provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out") }, t.ctx);
    expect(await run()).toBe(0);
    rmSync(join(dir, "out", "images", "r0.png"));
    phase = "in-progress";
    expect(await run()).toBe(2);
    const db = new Database(join(dir, "db.sqlite"), { readonly: true });
    expect(db.prepare("SELECT state, error_code, job_id FROM items").get()).toEqual({ state: "missing", error_code: "IMAGE_MISSING", job_id: "job-1" });
    db.close();
    expect(creates).toBe(1);
  }, 30_000);

  it("the local renderer's refusal fails the item at once", async () => {
    const error = await new LocalProvider().getJob({ jobId: "x", request: { prompt: "a bad \u0000 prompt with a NUL", model: "flux-schnell", aspectRatio: "1:1" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe("RENDER_FAILED");
  });
});
