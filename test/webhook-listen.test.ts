// Issue 19, items 2 and 3: `run --listen` against the simulator, which delivers webhooks with
// duplicates, delays and losses. A webhook only makes a job's read come at once; every item is
// delivered once whatever arrives, and forged POSTs (no such address, a job the item does not
// follow, an item already delivered, a replay, a flood) change nothing.
import { createServer } from "node:net";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { runCommand, type RunCommandOptions } from "../src/commands/run.js";
import { ExitError } from "../src/errors.js";
import { startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { useCleanup } from "./helpers/cleanup.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const cleanup = useCleanup();
const TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };

async function sim(options: SimOptionsPatch): Promise<SimHandle> {
  return cleanup(await startSimulator({ latencyMs: { "seedream3.0": 40, "flux-schnell": 40, nanobanana: 40, "nanobanana-pro": 40 }, jitterMs: 20, ...options }), (s) => s.stop());
}

/** A port free a moment ago (the receiver needs one the public URL can name). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function writeManifest(dir: string, rows: number): string {
  const lines = ["name: listen", "provider: pictory", "defaults:", "  model: flux-schnell", "rows:"];
  for (let i = 0; i < rows; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a quiet harbour town`);
  const path = join(dir, "listen.yaml");
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

type WebhookCounts = Record<"received" | "toBoard" | "badAddress" | "limited" | "tooLarge" | "notPost" | "used" | "finished" | "unknown-job" | "repeat", number>;

/** The counts the run logs when its receiver closes. */
function webhookCounts(logs: string): WebhookCounts {
  const line = logs.split("\n").find((l) => l.includes('"webhooks":{'));
  if (!line) throw new Error(`no webhook summary in the log:\n${logs.slice(-3000)}`);
  return (JSON.parse(line) as { webhooks: WebhookCounts }).webhooks;
}

function deliveredOnce(dbPath: string): { done: number; detections: number[] } {
  const db = new Database(dbPath, { readonly: true });
  try {
    const done = (db.prepare(`SELECT COUNT(*) AS n FROM items WHERE state = 'done'`).get() as { n: number }).n;
    const detections = (db.prepare(`SELECT COUNT(*) AS n FROM events WHERE from_state = 'running' AND to_state = 'downloading' GROUP BY item_id`).all() as { n: number }[]).map((r) => r.n);
    return { done, detections };
  } finally {
    db.close();
  }
}

async function setUp(n: number, options: SimOptionsPatch) {
  const s = await sim(options);
  const dir = tempDir();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}/hooks`;
  const run: RunCommandOptions = { provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out"), concurrency: 6, tuning: TUNING, listen: { host: "127.0.0.1", port }, publicUrl };
  return { s, dir, path: writeManifest(dir, n), run, publicUrl, t: testContext({ PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url }) };
}

describe("run --listen against the simulator", () => {
  it("reads each job once, when its webhook comes, when every webhook arrives", async () => {
    // A poll interval far above the jobs' 40–60 ms: without the hints the first reads would wait 22 s.
    const { s, dir, path, run, publicUrl, t } = await setUp(12, {});
    expect(await runCommand(path, { ...run, pollIntervalMs: 20_000 }, t.ctx), t.logs()).toBe(0);
    const ledger = s.ledger();
    expect(ledger.jobsCreated).toBe(12);
    expect(ledger.requestsByRoute["GET /v1/jobs/:id"]).toBe(12);
    // Each submit carried its item's own address under --public-url.
    const sent = Object.values(ledger.webhookByJob) as string[];
    expect(new Set(sent).size).toBe(12);
    for (const url of sent) expect(url).toMatch(new RegExp(`^${publicUrl}/r\\d+/[A-Za-z0-9_-]{43}$`));
    expect(webhookCounts(t.logs())).toMatchObject({ used: 12, repeat: 0, finished: 0, "unknown-job": 0, badAddress: 0 });
    expect(deliveredOnce(join(dir, "db.sqlite"))).toEqual({ done: 12, detections: Array(12).fill(1) });
    // The tokens are neither logged nor stored.
    const tokens = sent.map((url) => url.split("/").pop()!);
    for (const token of tokens) expect(t.logs()).not.toContain(token);
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const file of files) {
      const bytes = readFileSync(join(file.parentPath, file.name));
      for (const token of tokens) expect(bytes.includes(Buffer.from(token)), file.name).toBe(false);
    }
  }, 30_000);

  it.each<[string, SimOptionsPatch, (counts: WebhookCounts, n: number) => void]>([
    ["every webhook delivered twice: the second is ignored", { rateWebhookDuplicate: 1 }, (c, n) => expect(c).toMatchObject({ used: n, received: 2 * n, toBoard: 2 * n })],
    ["every webhook 300 ms late: still read on its hint, not polled", { rateWebhookDelay: 1, webhookDelayMs: 300 }, (c, n) => expect(c).toMatchObject({ used: n, repeat: 0, finished: 0 })],
  ])("%s", async (_name, faults, check) => {
    const n = 10;
    const { s, dir, path, run, t } = await setUp(n, faults);
    expect(await runCommand(path, { ...run, pollIntervalMs: 20_000 }, t.ctx), t.logs()).toBe(0);
    const counts = webhookCounts(t.logs());
    check(counts, n);
    // A duplicate finds its item delivered (or its hint taken): ignored either way.
    expect(counts.used + counts.repeat + counts.finished).toBe(counts.toBoard);
    expect(s.ledger().requestsByRoute["GET /v1/jobs/:id"]).toBe(n);
    expect(deliveredOnce(join(dir, "db.sqlite"))).toEqual({ done: n, detections: Array(n).fill(1) });
  }, 30_000);

  it("with duplicated, delayed and 30 % lost webhooks, and forged POSTs meanwhile: every item done once, nothing created twice", async () => {
    const n = 40;
    const { s, dir, path, run, publicUrl, t } = await setUp(n, { seed: 19, rateWebhookDuplicate: 0.3, rateWebhookDelay: 0.3, webhookDelayMs: 300, rateWebhookDrop: 0.3 });
    const statuses: Record<string, number> = {};
    const post = async (url: string, body: unknown): Promise<void> => {
      const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).catch(() => null);
      const status = response === null ? "error" : String(response.status);
      statuses[status] = (statuses[status] ?? 0) + 1;
      await response?.body?.cancel();
    };
    // One forged POST every 40 ms, in turn of each kind, from the address the service delivers from.
    let running = true;
    const forger = (async () => {
      for (let turn = 0; running; turn++) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        const created = Object.entries(s.ledger().webhookByJob) as [string, string][];
        if (created.length === 0) continue;
        const [jobId, url] = created[turn % created.length]!;
        const finished = s.state.job(s.apiKey, jobId)?.outcome != null;
        switch (turn % 4) {
          case 0: // no such address: a guessed token
            await post(`${publicUrl}/r0/${"A".repeat(43)}`, { job_id: jobId });
            break;
          case 1: // one item's token under another's key
            await post(`${publicUrl}/r${(turn + 1) % n}x/${url.split("/").pop()}`, { job_id: jobId });
            break;
          case 2: {
            // a real address naming a job its item does not follow (an item still at the service)
            const inFlight = created.find(([id]) => s.state.job(s.apiKey, id)?.outcome === null);
            if (inFlight) await post(inFlight[1], { job_id: "00000000-0000-4000-8000-000000000000", success: true, data: { status: "completed" } });
            break;
          }
          default: // a replay of what the service sent, once the job ended (delivered, or its hint taken)
            if (finished) await post(url, { job_id: jobId, success: true, data: { status: "completed" } });
        }
      }
    })();
    let code: number;
    try {
      code = await runCommand(path, { ...run, pollIntervalMs: 150 }, t.ctx);
    } finally {
      running = false;
      await forger;
    }
    expect(code, t.logs().slice(-3000)).toBe(0);
    const ledger = s.ledger();
    expect(ledger.jobsCreated).toBe(n);
    expect(Object.values(ledger.jobsByRequestHash).every((count) => count === 1)).toBe(true);
    expect(ledger.webhooksDropped).toBeGreaterThan(0);
    expect(deliveredOnce(join(dir, "db.sqlite"))).toEqual({ done: n, detections: Array(n).fill(1) });
    const counts = webhookCounts(t.logs());
    // At most one hint per job was acted on; the forged ones were refused or ignored, never used.
    expect(counts.used).toBeLessThanOrEqual(n);
    expect(counts.badAddress).toBeGreaterThanOrEqual(statuses["404"] ?? 0);
    expect(statuses["404"]).toBeGreaterThan(0);
    expect(counts["unknown-job"]).toBeGreaterThan(0);
    expect(counts.finished + counts.repeat).toBeGreaterThan(0);
    // A hinted read is the only read a hint causes: reads are bounded by one per hint plus the polls of the lost ones.
    expect(ledger.requestsByRoute["GET /v1/jobs/:id"]).toBeGreaterThanOrEqual(n);
  }, 60_000);

  it("a flood of POSTs changes nothing: each is refused (no such address, or over the rate) and the run goes on", async () => {
    const { s, dir, path, run, publicUrl, t } = await setUp(8, {});
    const flood = (async () => {
      // Starts once the receiver listens (the first create carries its address).
      await expect.poll(() => s.ledger().jobsCreated, { timeout: 10_000 }).toBeGreaterThan(0);
      return Promise.all(Array.from({ length: 300 }, () => fetch(`${publicUrl}/r0/${"B".repeat(43)}`, { method: "POST", body: "{}" }).then((r) => r.status).catch(() => 0)));
    })();
    expect(await runCommand(path, { ...run, pollIntervalMs: 300 }, t.ctx), t.logs()).toBe(0);
    const answers = await flood;
    const counts = webhookCounts(t.logs());
    // Whether the rate limit bites depends on how fast 300 requests arrive (the receiver's tests
    // pin it with a fixed clock), and past 256 connections a socket is dropped: each one is
    // refused either way (404, 429 or no answer), none reaches the board.
    expect(answers.filter((a) => a !== 404 && a !== 429 && a !== 0)).toEqual([]);
    expect(counts.badAddress).toBe(answers.filter((a) => a === 404).length);
    // Only the simulator's eight deliveries reach the board (some may be refused as over the rate: latency only).
    expect(counts.toBoard).toBeLessThanOrEqual(8);
    expect(counts.limited).toBeGreaterThanOrEqual(answers.filter((a) => a === 429).length);
    expect(s.ledger().jobsCreated).toBe(8);
    expect(deliveredOnce(join(dir, "db.sqlite"))).toEqual({ done: 8, detections: Array(8).fill(1) });
  }, 30_000);

  it("when every webhook is lost, polling still delivers every image", async () => {
    const { s, dir, path, run, t } = await setUp(10, { rateWebhookDrop: 1 });
    expect(await runCommand(path, { ...run, pollIntervalMs: 100 }, t.ctx), t.logs()).toBe(0);
    expect(s.ledger().jobsCreated).toBe(10);
    expect(deliveredOnce(join(dir, "db.sqlite")).done).toBe(10);
    expect(t.logs()).toMatch(/no webhook reached 127\.0\.0\.1:\d+ during the run/);
  }, 30_000);

  it("exits 1 before submitting anything when it cannot listen", async () => {
    const { s, path, run, t } = await setUp(3, {});
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(run.listen!.port, "127.0.0.1", resolve));
    cleanup(taken, (server) => new Promise<void>((resolve) => server.close(() => resolve())));
    const error = await runCommand(path, { ...run, pollIntervalMs: 100 }, t.ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExitError);
    expect((error as ExitError).exitCode).toBe(1);
    expect((error as ExitError).message).toMatch(/--listen 127\.0\.0\.1:\d+: cannot listen \(the port is in use\)/);
    expect(s.ledger().jobsCreated).toBe(0);
  }, 30_000);
});
