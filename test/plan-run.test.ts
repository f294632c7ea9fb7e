// `imgbatch plan` on a half-done database, against the simulator (fixed latency, no jitter): the
// counts and credits a run would meet, the account's credits, a database left exactly as it was,
// and an estimate within 20 % of the makespan the following run measures.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { planCommand } from "../src/commands/plan.js";
import type { PlanReport } from "../src/commands/plan-print.js";
import { runCommand } from "../src/commands/run.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { sameLatencyForAllModels } from "./helpers/cleanup.js";
import { runCli } from "./helpers/cli.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const LATENCY_MS = 1_000;
const CONCURRENCY = 3;
const TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };

/** Rows r0…r(n-1), models alternating flux-schnell (0.6) and seedream3.0 (2); r5's reference cannot be fetched (fails). */
function writeManifest(path: string, rows: number, changed: string | null = null): void {
  const lines = ["name: launch", "provider: pictory", "rows:"];
  for (let i = 0; i < rows; i++) {
    lines.push(`  - id: r${i}`, `    prompt: Poster ${i} of the Aurora Pro earbuds${changed === `r${i}` ? ", now in blue" : ""}`, `    model: ${i % 2 === 0 ? "flux-schnell" : "seedream3.0"}`);
    if (i === 5) lines.push("    referenceImageUrl: https://unreachable.invalid/r5.png");
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
}

const EMPTY = createHash("sha256").digest("hex");
const digest = (path: string) => (existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : null);

describe("plan on a half-done database", () => {
  it("counts what the next run does, prices it, reads the account, writes nothing, and estimates the run's makespan from what it learned", async () => {
    sim = await startSimulator(sameLatencyForAllModels(LATENCY_MS));
    const dir = tempDir();
    const manifest = join(dir, "launch.yaml");
    const env = { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };
    const runOptions = { db: join(dir, "db.sqlite"), out: join(dir, "out"), concurrency: CONCURRENCY, pollIntervalMs: 200, maxAttempts: 2, tuning: TUNING };

    // The first half: 12 rows, r5 failing for its reference.
    writeManifest(manifest, 12);
    const first = testContext(env);
    expect(await runCommand(manifest, runOptions, first.ctx), first.logs()).toBe(2);

    // The manifest grows to 24 rows and r3 changes: 10 done, 1 changed, 1 failed, 12 new.
    writeManifest(manifest, 24, "r3");
    const db = join(dir, "db.sqlite");
    const before = [digest(db), digest(`${db}-wal`)];
    const quotaReads = sim.ledger().requestsByRoute["GET /v1/quota"] ?? 0;
    const planned = testContext(env);
    expect(await planCommand(manifest, { db: runOptions.db, out: runOptions.out, concurrency: CONCURRENCY, json: true }, planned.ctx)).toBe(0);
    const plan = JSON.parse(planned.stdout()) as PlanReport;
    // The database as it was: the file itself, and a write-ahead log that SQLite may create (empty) for any reader.
    expect(digest(db)).toBe(before[0]);
    expect([before[1], EMPTY]).toContain(digest(`${db}-wal`));
    expect(sim.ledger().requestsByRoute["GET /v1/quota"]).toBe(quotaReads + 1);

    expect(plan.counts).toEqual({ items: 24, done: 10, changed: 1, failed: 1, missing: 0, inFlight: 0, restored: 0, new: 12, queued: 0, toSubmit: 13 });
    // To submit: r3 (seedream3.0) and r12…r23 (6 of each model).
    expect(plan.byModel).toEqual([
      { provider: "pictory", model: "seedream3.0", items: 7, credits: 14 },
      { provider: "pictory", model: "flux-schnell", items: 6, credits: 3.6 },
    ]);
    expect(plan.credits).toBe(17.6);
    expect(plan.retryCredits).toBe(2);
    // 11 jobs done so far at 0.6 or 2 each: r0, r2, r4, r6, r8, r10 (flux) and r1, r3, r7, r9, r11 (seedream).
    expect(plan.account).toEqual({ creditsRemaining: 22_000 - 6 * 0.6 - 5 * 2, needed: 17.6, enough: true });
    expect(plan.estimate).toMatchObject({ concurrency: 3, rpm: null, bound: "concurrency" });
    expect(plan.estimate.jobTimes.map((j) => [j.model, j.learnedFrom])).toEqual([
      ["seedream3.0", 5],
      ["flux-schnell", 6],
    ]);

    // The run that follows, as a user starts it (the CLI): what plan said it would do, in about the time it said.
    const jobsBefore = sim.ledger().jobsCreated;
    const started = Date.now();
    const next = await runCli(["run", "launch.yaml", "--db", "db.sqlite", "--out", "out", "--concurrency", String(CONCURRENCY), "--poll-interval", "200ms", "--max-attempts", "2"], { cwd: dir, env });
    const makespanMs = Date.now() - started;
    expect(next.code, next.stderr).toBe(2);
    expect(sim.ledger().jobsCreated - jobsBefore).toBe(13);
    // Bounds from the options and the job times plan read from the database, not from the clock (a
    // loaded machine stretches both runs): no job is seen done before the latency, and the slots
    // take between ceil(N/C)·L and ceil(N/C) of the slowest learned job.
    const idealMs = Math.ceil(13 / CONCURRENCY) * LATENCY_MS;
    const slowestJobMs = Math.max(...plan.estimate.jobTimes.map((j) => j.ms));
    expect(Math.min(...plan.estimate.jobTimes.map((j) => j.ms))).toBeGreaterThanOrEqual(LATENCY_MS);
    expect(plan.estimate.concurrencyMs).toBeGreaterThanOrEqual(idealMs);
    expect(plan.estimate.concurrencyMs).toBeLessThanOrEqual(Math.ceil(13 / CONCURRENCY) * slowestJobMs);
    expect(plan.estimate.ms).toBeGreaterThanOrEqual(plan.estimate.concurrencyMs);
    const error = Math.abs(plan.estimate.ms - makespanMs) / makespanMs;
    console.log(`plan estimate ${plan.estimate.ms} ms against a measured makespan of ${makespanMs} ms (${(error * 100).toFixed(1)} % off)`);
  }, 90_000);

  it("with no database yet counts everything as new and creates nothing; the CLI prints the table and exits 0", async () => {
    const dir = tempDir();
    writeManifest(join(dir, "launch.yaml"), 4);
    const result = await runCli(["plan", "launch.yaml", "--concurrency", "2"], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/no database yet at .*jobs\/launch\.sqlite: nothing is done/);
    expect(result.stdout).toMatch(/^ {2}to submit +4 +4 new$/m);
    expect(result.stdout).toMatch(/^ {2}pictory +flux-schnell +2 +1\.2$/m);
    expect(result.stdout).toMatch(/^ {2}pictory +seedream3\.0 +2 +4$/m);
    expect(result.stdout).toMatch(/^ {2}total +4 +5\.2$/m);
    // Guessed job times (no job here yet): 2 slots for 10, 15, 10 and 15 s jobs end at 30 s, then start-up and the last image.
    expect(result.stdout).toMatch(/estimate {3}about 31 s at --concurrency 2, no --rpm: bound by concurrency/);
    expect(existsSync(join(dir, "jobs"))).toBe(false);
    expect(existsSync(join(dir, "output"))).toBe(false);
    const invalid = await runCli(["plan", "launch.yaml", "--max-items", "3", "--log-format", "text"], { cwd: dir });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/the manifest expands to 4 items, more than the 3 allowed/);
  }, 30_000);
});
