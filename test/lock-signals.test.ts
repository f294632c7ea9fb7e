// The lock and signals, through the built CLI against the simulator: a second run of the same
// manifest exits 4 naming the holder; a dead holder's lock is taken over (and the log says so);
// SIGINT/SIGTERM exit 3 within 2 s with the database consistent; a second signal exits at once.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lockIsStale } from "../src/commands/lock.js";
import { startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { useCleanup } from "./helpers/cleanup.js";
import { jsonLines, runCli, type CliResult } from "./helpers/cli.js";
import { readDb, stateCounts, waitForLock, waitUntil } from "./helpers/db.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const track = useCleanup();
let sim: SimHandle | null = null;

async function simulator(options: SimOptionsPatch): Promise<SimHandle> {
  sim = track(await startSimulator(options), (s) => s.stop());
  return sim;
}

/** Jobs that stay in progress for a minute: runs sit with their polls sleeping. */
const SLOW_JOBS: SimOptionsPatch = { latencyMs: { "seedream3.0": 60_000, "flux-schnell": 20 }, jitterMs: 0 };

function writeManifest(dir: string, rows: number, model = "seedream3.0"): void {
  const lines = ["name: night", "provider: pictory", `defaults: { model: ${model} }`, "rows:"];
  for (let i = 0; i < rows; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a quiet harbour town`);
  writeFileSync(join(dir, "night.yaml"), `${lines.join("\n")}\n`);
}

interface Started {
  result: Promise<CliResult>;
  pid: number;
  exited: () => boolean;
}

function start(cwd: string, extra: string[] = []): Started {
  const run = runCli(["run", "night.yaml", ...extra], { cwd, env: { PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url } });
  track(run.child, (child) => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let exited = false;
  void run.then(() => (exited = true));
  return { result: run, pid: run.child.pid!, exited: () => exited };
}

/**
 * A run of `rows` finished jobs whose downloads each take 8 s (8 chunks, 1 s apart), returned
 * once bytes are arriving (two downloads at a time) and the process holds its lock.
 */
async function startWithSlowDownloads(rows: number): Promise<{ s: SimHandle; cwd: string; db: string; run: Started }> {
  const s = await simulator({ latencyMs: { "flux-schnell": 20 }, jitterMs: 0, rateSlowDownload: 1, slowDownloadChunkDelayMs: 1_000 });
  const cwd = tempDir();
  writeManifest(cwd, rows, "flux-schnell");
  const db = join(cwd, "jobs", "night.sqlite");
  const run = start(cwd, ["--poll-interval", "50ms"]);
  expect(await waitForLock(db, run.pid, run.exited)).toBe(true);
  await waitUntil(() => (stateCounts(db).downloading ?? 0) === rows, run.exited);
  await waitUntil(() => (s.ledger().requestsByRoute["GET /files"] ?? 0) >= 2, run.exited);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  return { s, cwd, db, run };
}

function lastRun(db: string): Record<string, unknown> {
  return readDb(db, (conn) => conn.prepare("SELECT * FROM runs ORDER BY id DESC LIMIT 1").get() as Record<string, unknown>)!;
}

function lockRow(db: string): Record<string, unknown> | undefined {
  return readDb(db, (conn) => conn.prepare("SELECT * FROM run_lock WHERE id = 1").get() as Record<string, unknown> | undefined);
}

function tempFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".imgbatch-tmp"))
    .map((e) => join(e.parentPath, e.name));
}

/** Sends `signal` and measures how long the process takes to end. */
async function signalAndTime(run: Started, signal: NodeJS.Signals): Promise<{ result: CliResult; ms: number }> {
  const sent = Date.now();
  process.kill(run.pid, signal);
  const result = await run.result;
  return { result, ms: Date.now() - sent };
}

describe("the lock", () => {
  it("a second run of the same manifest exits 4 and names the holder's pid, host and start time", async () => {
    sim = await simulator(SLOW_JOBS);
    const cwd = tempDir();
    writeManifest(cwd, 4);
    const db = join(cwd, "jobs", "night.sqlite");
    const first = start(cwd);
    expect(await waitForLock(db, first.pid, first.exited)).toBe(true);
    const holder = lockRow(db)!;

    const second = await runCli(["run", "night.yaml"], { cwd, env: { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url } });
    expect(second.code, second.stderr).toBe(4);
    const message = jsonLines(second.stderr).map((l) => String(l.msg)).join("\n");
    expect(message).toContain(`pid ${first.pid}`);
    expect(message).toContain(`on ${hostname()}`);
    expect(message).toContain(`started ${new Date(holder.started_at as number).toISOString()}`);
    // The refused run left no trace: one run recorded, the lock still the first run's.
    expect(readDb(db, (conn) => (conn.prepare("SELECT COUNT(*) n FROM runs").get() as { n: number }).n)).toBe(1);
    expect(lockRow(db)?.pid).toBe(first.pid);
    // status reads alongside a run, and tells it is in progress.
    const status = await runCli(["status", "night.yaml", "--json"], { cwd });
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { runs: unknown[] }).runs[0]).toMatchObject({ outcome: "running", endedAt: null, pid: first.pid, host: hostname() });

    const { result } = await signalAndTime(first, "SIGTERM");
    expect(result.code).toBe(3);
  }, 30_000);

  it("a lock whose process is dead is taken over, the log says so, and status shows the run as died", async () => {
    sim = await simulator({ latencyMs: { "flux-schnell": 20 }, jitterMs: 10 });
    const cwd = tempDir();
    writeManifest(cwd, 6, "flux-schnell");
    const db = join(cwd, "jobs", "night.sqlite");
    const env = { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };
    // Jobs the first run submits stay in progress until it is dead.
    sim.configure({ latencyMs: { "flux-schnell": 60_000 } });
    const killed = start(cwd, ["--poll-interval", "50ms"]);
    expect(await waitForLock(db, killed.pid, killed.exited)).toBe(true);
    await waitUntil(() => (stateCounts(db).running ?? 0) > 0, killed.exited);
    process.kill(killed.pid, "SIGKILL");
    expect((await killed.result).signal).toBe("SIGKILL");
    expect(lockRow(db)?.pid).toBe(killed.pid);

    // Before any other run: status tells a dead run from one in progress.
    const before = await runCli(["status", "night.yaml", "--json"], { cwd });
    expect(before.code, before.stderr).toBe(0);
    const runsBefore = (JSON.parse(before.stdout) as { runs: { outcome: string; stopReason: string }[] }).runs;
    expect(runsBefore[0]).toMatchObject({ outcome: "died", stopReason: "no clean exit: killed or crashed" });

    sim.advance(61_000);
    sim.configure({ latencyMs: { "flux-schnell": 20 } });
    const next = await runCli(["run", "night.yaml", "--poll-interval", "50ms"], { cwd, env });
    expect(next.code, next.stderr).toBe(0);
    const takeOver = jsonLines(next.stderr).find((l) => /took over a stale lock/.test(String(l.msg)));
    expect(String(takeOver?.msg)).toContain(`took over a stale lock of pid ${killed.pid} on ${hostname()}`);
    // Jobs the dead run submitted were picked up by their id: none made twice.
    expect(Object.values(sim.ledger().jobsByRequestHash).every((n) => n === 1)).toBe(true);
    expect(lockRow(db)).toBeUndefined();

    const after = JSON.parse((await runCli(["status", "night.yaml", "--json"], { cwd })).stdout) as { runs: Record<string, unknown>[] };
    expect(after.runs[0]).toMatchObject({ outcome: "done", exitCode: 0, itemsFailed: 0 });
    expect(after.runs[1]).toMatchObject({ outcome: "died", exitCode: null, pid: killed.pid, stopReason: "no clean exit: killed or crashed" });
    expect(after.runs[1]!.endedAt).not.toBeNull();
  }, 30_000);

  it.each([
    ["this host, a live pid", { host: hostname(), pid: process.ppid, heartbeatAgoMs: 0 }, false],
    ["this host, a dead pid", { host: hostname(), pid: -1, heartbeatAgoMs: 0 }, true],
    ["another host, a fresh heartbeat", { host: "elsewhere.invalid", pid: process.pid, heartbeatAgoMs: 60_000 }, false],
    ["another host, a heartbeat 4 minutes old", { host: "elsewhere.invalid", pid: process.pid, heartbeatAgoMs: 4 * 60_000 }, true],
  ])("a lock held from %s is stale: %s", async (_name, holder, stale) => {
    let pid = holder.pid;
    if (pid === -1) {
      // A pid that surely belongs to no process: one that has just exited.
      const child = spawn(process.execPath, ["-e", ""]);
      pid = child.pid!;
      await new Promise((resolve) => child.on("close", resolve));
    }
    const now = 10_000_000;
    expect(lockIsStale({ runId: 1, pid, host: holder.host, startedAt: 0, heartbeatAt: now - holder.heartbeatAgoMs }, now)).toBe(stale);
  });
});

describe("signals", () => {
  it("SIGINT while polls sleep (10 s interval) exits 3 within 2 s; the next run picks the jobs up by id", async () => {
    sim = await simulator(SLOW_JOBS);
    const cwd = tempDir();
    writeManifest(cwd, 6);
    const db = join(cwd, "jobs", "night.sqlite");
    const run = start(cwd); // the default poll interval: 10 s
    expect(await waitForLock(db, run.pid, run.exited)).toBe(true);
    await waitUntil(() => (stateCounts(db).running ?? 0) === 4, run.exited);

    const { result, ms } = await signalAndTime(run, "SIGINT");
    expect(result.code, result.stderr).toBe(3);
    expect(ms).toBeLessThan(2_000);
    expect(jsonLines(result.stderr).some((l) => /^SIGINT: stopping/.test(String(l.msg)))).toBe(true);

    // Consistent: the run is closed, the lock released, submitted items keep their job ids.
    expect(lastRun(db)).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "signal" });
    expect(lockRow(db)).toBeUndefined();
    const items = readDb(db, (conn) => conn.prepare("SELECT state, job_id FROM items").all() as { state: string; job_id: string | null }[])!;
    expect(items.filter((i) => i.state === "running").length).toBe(4);
    expect(items.every((i) => (i.state === "running") === (i.job_id !== null))).toBe(true);
    expect(items.filter((i) => i.state === "queued").length).toBe(2);
    expect(readDb(db, (conn) => conn.pragma("integrity_check", { simple: true }))).toBe("ok");

    sim.advance(61_000);
    sim.configure({ latencyMs: { "seedream3.0": 20 } });
    const again = await runCli(["run", "night.yaml", "--poll-interval", "50ms"], { cwd, env: { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url } });
    expect(again.code, again.stderr).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(6);
  }, 30_000);

  it("SIGTERM with downloads in flight exits 3 within 2 s and leaves no partial file", async () => {
    const { s, cwd, db, run } = await startWithSlowDownloads(4);
    const { result, ms } = await signalAndTime(run, "SIGTERM");
    expect(result.code, result.stderr).toBe(3);
    expect(ms).toBeLessThan(2_000);
    expect(tempFiles(cwd)).toEqual([]);
    expect(existsSync(join(cwd, "output", "night", "images")) ? readdirSync(join(cwd, "output", "night", "images")) : []).toEqual([]);
    expect(lastRun(db)).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "signal" });
    expect(lockRow(db)).toBeUndefined();
    const items = readDb(db, (conn) => conn.prepare("SELECT state, result_url, credits FROM items").all() as { state: string; result_url: string | null; credits: number }[])!;
    expect(items.every((i) => i.state === "downloading" && i.result_url !== null && i.credits === 0.6)).toBe(true);

    s.configure({ rateSlowDownload: 0 });
    const again = await runCli(["run", "night.yaml", "--poll-interval", "50ms"], { cwd, env: { PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url } });
    expect(again.code, again.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(4);
  }, 30_000);

  it("SIGKILL mid-download leaves no file; a temp file a kill left mid-write is removed by the next run, which says so", async () => {
    const { s, cwd, run } = await startWithSlowDownloads(3);
    process.kill(run.pid, "SIGKILL");
    await run.result;
    // Downloads are read into memory: a kill during one leaves nothing on disk.
    expect(tempFiles(join(cwd, "output"))).toEqual([]);
    // A kill in the middle of an atomic write leaves its temporary file, named like this.
    const imagesDir = join(cwd, "output", "night", "images");
    mkdirSync(imagesDir, { recursive: true });
    writeFileSync(join(imagesDir, ".r0.png.0123456789ab.imgbatch-tmp"), "half an image");

    s.configure({ rateSlowDownload: 0 });
    const next = await runCli(["run", "night.yaml", "--poll-interval", "50ms"], { cwd, env: { PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url } });
    expect(next.code, next.stderr).toBe(0);
    expect(jsonLines(next.stderr).some((l) => /^removed 1 partial file\(s\) left by an interrupted run$/.test(String(l.msg)))).toBe(true);
    expect(tempFiles(cwd)).toEqual([]);
    expect(s.ledger().jobsCreated).toBe(3);
  }, 30_000);

  it("SIGINT during start-up (a throttled quota read waiting 30 s) exits 3 within 2 s with the run closed", async () => {
    sim = await simulator({ ...SLOW_JOBS, faultRoutes: ["quota"], rate429: 1, retryAfterSeconds: 30 });
    const cwd = tempDir();
    writeManifest(cwd, 2);
    const db = join(cwd, "jobs", "night.sqlite");
    const run = start(cwd);
    expect(await waitForLock(db, run.pid, run.exited)).toBe(true);
    await waitUntil(() => (sim!.ledger().requestsByRoute["GET /v1/quota"] ?? 0) > 0, run.exited);

    const { result, ms } = await signalAndTime(run, "SIGINT");
    expect(result.code, result.stderr).toBe(3);
    expect(ms).toBeLessThan(2_000);
    expect(lastRun(db)).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "signal" });
    expect(lockRow(db)).toBeUndefined();
    expect(sim.ledger().jobsCreated).toBe(0);
    expect(stateCounts(db)).toEqual({ queued: 2 });
  }, 30_000);

  it("a second signal exits at once; the next run takes the lock over", async () => {
    sim = await simulator(SLOW_JOBS);
    const cwd = tempDir();
    writeManifest(cwd, 4);
    const db = join(cwd, "jobs", "night.sqlite");
    const run = start(cwd);
    expect(await waitForLock(db, run.pid, run.exited)).toBe(true);
    await waitUntil(() => (stateCounts(db).running ?? 0) === 4, run.exited);

    const sent = Date.now();
    process.kill(run.pid, "SIGINT");
    process.kill(run.pid, "SIGTERM");
    const result = await run.result;
    expect(result.code, result.stderr).toBe(3);
    expect(Date.now() - sent).toBeLessThan(2_000);
    expect(jsonLines(result.stderr).some((l) => /^SIG(INT|TERM) again: exiting at once/.test(String(l.msg))), result.stderr).toBe(true);

    sim.advance(61_000);
    const again = await runCli(["run", "night.yaml", "--poll-interval", "50ms"], { cwd, env: { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url } });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`took over a stale lock of pid ${run.pid}`);
    expect(sim.ledger().jobsCreated).toBe(4);
  }, 30_000);
});
