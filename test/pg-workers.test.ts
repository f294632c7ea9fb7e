// Several `imgbatch run` processes share one run through PostgreSQL, against the simulator: every
// item made once, no exit 4 between workers of the same manifest, a worker of another version
// refused, a killed worker's items taken over after its lease, the password nowhere.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { REPORT_LOCK } from "../src/store/postgres/schema.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { freshSchema } from "./helpers/postgres-server.mjs";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const PASSWORD = "s3cret-Pw-never-shown";

function manifest(dir: string, rows: number, name = "shared.yaml", extra = ""): string {
  const lines = ["name: shared", "provider: pictory", "defaults:", "  model: flux-schnell", "rows:"];
  for (let i = 0; i < rows; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a harbour town${extra}`);
  const path = join(dir, name);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

/** A schema of the test server, its URL carrying a password (trust auth ignores it) that must never be shown. */
async function database(): Promise<string> {
  const url = new URL(await freshSchema(process.env.IMGBATCH_TEST_PG!));
  url.password = PASSWORD;
  return url.toString();
}

async function rows(url: string): Promise<{ key: string; state: string; job_id: string | null }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const result = await client.query("SELECT key, state, job_id FROM items WHERE superseded_at IS NULL ORDER BY key");
  await client.end();
  return result.rows as { key: string; state: string; job_id: string | null }[];
}

function worker(dir: string, manifestPath: string, db: string, name: string, extra: string[] = []) {
  return runCli(["run", manifestPath, "--db", db, "--out", join(dir, "out"), "--worker", name, "--poll-interval", "50ms", "--lease", "2s", ...extra], {
    cwd: dir,
    env: { PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url },
    timeoutMs: 90_000,
  });
}

function expectNoPassword(results: CliResult[], dir: string): void {
  for (const r of results) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  for (const file of readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
    expect(readFileSync(join(file.parentPath, file.name)).includes(Buffer.from(PASSWORD)), file.name).toBe(false);
  }
}

describe("several workers on one PostgreSQL run", () => {
  it("three workers make every item exactly once and all end 0; the password is nowhere", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 150, "seedream3.0": 150, nanobanana: 150, "nanobanana-pro": 150 }, jitterMs: 50 });
    const dir = tempDir();
    const path = manifest(dir, 30);
    const db = await database();
    const results = await Promise.all(["w1", "w2", "w3"].map((name) => worker(dir, path, db, name, ["--log-level", "debug"])));
    for (const r of results) expect(r.code, r.stderr.slice(-2_000)).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(30);
    // Ending together, they wrote one report of the finished run, not one each.
    const reportsKept = results.map((r) => (r.stderr.match(/another worker of the run wrote it for this same state/g) ?? []).length);
    expect(reportsKept.reduce((a, b) => a + b, 0)).toBe(2);
    expect(readFileSync(join(dir, "out", "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(30);
    expect(Object.values(sim.ledger().jobsByRequestHash).every((n) => n === 1)).toBe(true);
    const stored = await rows(db);
    expect(stored.filter((r) => r.state === "done")).toHaveLength(30);
    // Each worker did part of the work: the claims spread it.
    const byWorker = results.map((r) => (r.stderr.match(/"msg":"finished: /g) ?? []).length);
    expect(byWorker).toEqual([1, 1, 1]);
    expectNoPassword(results, dir);
  }, 120_000);

  it("a worker of another version of the manifest is refused (exit 4) while a worker of the first runs", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 400, "seedream3.0": 400, nanobanana: 400, "nanobanana-pro": 400 } });
    const dir = tempDir();
    const path = manifest(dir, 12);
    const changed = manifest(dir, 12, "shared-v2.yaml", " at dawn");
    const db = await database();
    const first = worker(dir, path, db, "w1", ["--concurrency", "2"]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const other = await worker(dir, changed, db, "w2");
    expect(other.code, other.stderr.slice(-1_000)).toBe(4);
    expect(other.stderr).toMatch(/another version of the manifest/);
    expect((await first).code).toBe(0);
    expectNoPassword([other], dir);
  }, 120_000);

  it("a worker stopped by SIGTERM writes its report at once, not after another worker's turn at it", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 300, "seedream3.0": 300, nanobanana: 300, "nanobanana-pro": 300 } });
    const dir = tempDir();
    const path = manifest(dir, 12);
    const db = await database();
    // Another worker's turn at the report, held (as by one paused while it writes): a worker
    // that ended normally would wait up to a minute for it.
    const holder = new pg.Client({ connectionString: db });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1, hashtext(current_schema()))", [REPORT_LOCK]);
      const stopped = runCli(["run", path, "--db", db, "--out", join(dir, "out"), "--worker", "w1", "--poll-interval", "50ms"], {
        cwd: dir,
        env: { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url },
        timeoutMs: 30_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      stopped.child.kill("SIGTERM");
      const result = await stopped;
      // It ended by itself (exit 3, stopped early), not by the test's kill.
      expect([result.code, result.signal], result.stderr.slice(-1_500)).toEqual([3, null]);
      expect(readFileSync(join(dir, "out", "index.html"), "utf8")).toContain("shared");
    } finally {
      await holder.end();
    }
  }, 60_000);

  it("a worker killed mid-run leaves its items to the others after its lease: every item done, none paid twice", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 300, "seedream3.0": 300, nanobanana: 300, "nanobanana-pro": 300 }, jitterMs: 50 });
    const dir = tempDir();
    const path = manifest(dir, 24);
    const db = await database();
    const doomed = worker(dir, path, db, "doomed", ["--concurrency", "6"]);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    doomed.child.kill("SIGKILL");
    await doomed;
    const survivor = await worker(dir, path, db, "survivor");
    expect(survivor.code, survivor.stderr.slice(-2_000)).toBe(0);
    const stored = await rows(db);
    expect(stored.every((r) => r.state === "done")).toBe(true);
    // A submit that was out when the worker died is found through the listings, not paid again.
    expect(Object.values(sim.ledger().jobsByRequestHash).every((n) => n === 1)).toBe(true);
  }, 120_000);

  it("a server that cannot be reached is exit 1 with a sentence, the URL's password replaced by ***", async () => {
    const dir = tempDir();
    const path = manifest(dir, 2);
    const unreachable = `postgres://imgbatch:${PASSWORD}@127.0.0.1:1/imgbatch`;
    for (const command of [["run", path, "--provider", "local"], ["status", path]]) {
      const result = await runCli([...command, "--db", unreachable], { cwd: dir, timeoutMs: 30_000 });
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toContain("postgres://imgbatch:***@127.0.0.1:1/imgbatch");
      expectNoPassword([result], dir);
    }
    // IMGBATCH_DB stands in for --db.
    const viaEnv = await runCli(["status", path], { cwd: dir, env: { IMGBATCH_DB: unreachable }, timeoutMs: 30_000 });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toContain("***");
    expectNoPassword([viaEnv], dir);
  }, 60_000);

  it("--roles: a worker that only submits hands finished jobs to one that only delivers; every image delivered by the latter, each paid once", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 150, "seedream3.0": 150, nanobanana: 150, "nanobanana-pro": 150 } });
    const dir = tempDir();
    const path = manifest(dir, 12);
    const db = await database();
    const [submitter, deliverer] = await Promise.all([worker(dir, path, db, "submitter", ["--roles", "submit"]), worker(dir, path, db, "deliverer", ["--roles", "deliver"])]);
    expect(submitter.code, submitter.stderr.slice(-1_500)).toBe(0);
    expect(deliverer.code, deliverer.stderr.slice(-1_500)).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(12);
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const byWorker = (await client.query("SELECT r.worker, e.to_state, COUNT(*)::int AS n FROM events e JOIN runs r ON r.id = e.run_id WHERE e.to_state IN ('submitting', 'done') GROUP BY 1, 2 ORDER BY 1, 2")).rows;
    await client.end();
    expect(byWorker).toEqual([
      { worker: "deliverer", to_state: "done", n: 12 },
      { worker: "submitter", to_state: "submitting", n: 12 },
    ]);
    // On a SQLite run there is nobody to divide the work with.
    const alone = await runCli(["run", path, "--roles", "deliver", "--db", join(dir, "x.sqlite"), "--provider", "local"], { cwd: dir });
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/--roles divides a shared run/);
  }, 120_000);

  it("migrate moves a SQLite run to PostgreSQL: the run goes on there with nothing paid again, its history kept", async () => {
    sim = await startSimulator({ latencyMs: { "flux-schnell": 50, "seedream3.0": 50, nanobanana: 50, "nanobanana-pro": 50 } });
    const dir = tempDir();
    const path = manifest(dir, 4);
    const sqlite = join(dir, "jobs", "shared.sqlite");
    const env = { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };
    const first = await runCli(["run", path, "--db", sqlite, "--out", join(dir, "out"), "--poll-interval", "50ms"], { cwd: dir, env });
    expect(first.code, first.stderr.slice(-1_000)).toBe(0);
    const db = await database();
    const moved = await runCli(["migrate", "--from", sqlite, "--to", db], { cwd: dir });
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/moved .* 4 items/);
    const again = await runCli(["run", path, "--db", db, "--out", join(dir, "out"), "--poll-interval", "50ms"], { cwd: dir, env });
    expect(again.code, again.stderr.slice(-1_000)).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(4);
    const status = await runCli(["status", path, "--db", db, "--out", join(dir, "out"), "--json"], { cwd: dir });
    const report = JSON.parse(status.stdout) as { counts: { done: number }; runs: unknown[] };
    expect(report.counts.done).toBe(4);
    expect(report.runs).toHaveLength(2);
    // Into a database that holds items already: refused, nothing changed.
    const twice = await runCli(["migrate", "--from", sqlite, "--to", db], { cwd: dir });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already holds items/);
    expectNoPassword([moved, again, status, twice], dir);
  }, 120_000);
});
