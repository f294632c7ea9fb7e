// Cron-grade stops through the built CLI: --deadline, --max-runtime and --max-credits each stop
// submitting and exit 3, and the database says why; the next run finishes without paying twice.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { jsonLines, runCli } from "./helpers/cli.js";
import { readDb, stateCounts } from "./helpers/db.js";
import { useCleanup } from "./helpers/cleanup.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const track = useCleanup();
let sim: SimHandle | null = null;

const ROWS = 30;

function writeManifest(dir: string): void {
  const lines = ["name: night", "provider: pictory", "defaults: { model: flux-schnell }", "rows:"];
  for (let i = 0; i < ROWS; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a quiet harbour town`);
  writeFileSync(join(dir, "night.yaml"), `${lines.join("\n")}\n`);
}

async function setUp(latencyMs: number) {
  sim = track(await startSimulator({ latencyMs: { "flux-schnell": latencyMs }, jitterMs: 0 }), (handle) => handle.stop());
  const cwd = tempDir();
  writeManifest(cwd);
  const env = { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };
  const db = join(cwd, "jobs", "night.sqlite");
  const run = (...extra: string[]) => runCli(["run", "night.yaml", "--poll-interval", "50ms", "--concurrency", "2", ...extra], { cwd, env });
  return { cwd, db, run };
}

interface RunRow {
  id: number;
  started_at: number;
  ended_at: number;
  outcome: string;
  exit_code: number;
  stop_reason: string;
  credits: number;
}

function lastRun(db: string): RunRow {
  return readDb(db, (conn) => conn.prepare("SELECT * FROM runs ORDER BY id DESC LIMIT 1").get() as RunRow)!;
}

/** Times of this run's submits (queued → submitting), oldest first. */
function submitTimes(db: string, runId: number): number[] {
  return readDb(db, (conn) =>
    (conn.prepare("SELECT at FROM events WHERE run_id = ? AND to_state = 'submitting' AND from_state = 'queued' ORDER BY at").all(runId) as { at: number }[]).map((r) => r.at),
  )!;
}

/** The stopped run left work for the next one, which finishes it without a job made twice. */
async function finishesWithoutPayingTwice(setup: Awaited<ReturnType<typeof setUp>>): Promise<void> {
  sim!.advance(60_000);
  sim!.configure({ latencyMs: { "flux-schnell": 20 } });
  const next = await setup.run("--concurrency", "8");
  expect(next.code, next.stderr).toBe(0);
  expect(stateCounts(setup.db)).toEqual({ done: ROWS });
  expect(sim!.ledger().jobsCreated).toBe(ROWS);
}

describe("stops for cron", () => {
  it("--deadline (ISO) stops submitting at that time and exits 3", async () => {
    const setup = await setUp(300);
    const deadline = Date.now() + 1_500;
    const result = await setup.run("--deadline", new Date(deadline).toISOString());
    const endedAt = Date.now();
    expect(result.code, result.stderr).toBe(3);
    expect(endedAt - deadline).toBeLessThan(2_000);

    const run = lastRun(setup.db);
    expect(run).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "deadline" });
    const submits = submitTimes(setup.db, run.id);
    expect(submits.length).toBeGreaterThan(0);
    expect(submits.every((at) => at < deadline)).toBe(true);
    expect(sim!.ledger().requestsByRoute["POST /v1/aistudio/images"]).toBe(submits.length);
    expect(stateCounts(setup.db).queued).toBeGreaterThan(0);
    expect(jsonLines(result.stderr).some((l) => l.msg === "stopping: deadline")).toBe(true);

    await finishesWithoutPayingTwice(setup);
  }, 30_000);

  it("--max-runtime stops submitting after that long and exits 3", async () => {
    const setup = await setUp(300);
    const result = await setup.run("--max-runtime", "1s");
    expect(result.code, result.stderr).toBe(3);

    const run = lastRun(setup.db);
    expect(run).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "max-runtime" });
    const submits = submitTimes(setup.db, run.id);
    expect(submits.length).toBeGreaterThan(0);
    // The clock starts once the run is set up (manifest synced, quota read): a little after the run row.
    expect(submits.at(-1)! - run.started_at).toBeLessThan(1_000 + 500);
    expect(run.ended_at - run.started_at).toBeLessThan(1_000 + 2_000);
    expect(sim!.ledger().requestsByRoute["POST /v1/aistudio/images"]).toBe(submits.length);
    expect(stateCounts(setup.db).queued).toBeGreaterThan(0);

    await finishesWithoutPayingTwice(setup);
  }, 30_000);

  it("--max-credits never lets spent plus in-flight credits pass the cap, and exits 3", async () => {
    const setup = await setUp(150);
    const result = await setup.run("--max-credits", "3"); // flux-schnell: 0.6 a picture, so 5 at most
    expect(result.code, result.stderr).toBe(3);

    const run = lastRun(setup.db);
    expect(run).toMatchObject({ outcome: "stopped", exit_code: 3, stop_reason: "credits" });
    expect(run.credits).toBeLessThanOrEqual(3);
    const submits = submitTimes(setup.db, run.id);
    expect(submits.length).toBe(5);
    // Whatever was in flight when the run stopped is paid for too, and still within the cap.
    sim!.advance(60_000);
    expect(sim!.ledger().jobsCreated).toBe(5);
    expect(sim!.ledger().creditsUsed).toBeLessThanOrEqual(3);
    expect(stateCounts(setup.db).queued).toBe(ROWS - 5);

    await finishesWithoutPayingTwice(setup);
  }, 30_000);
});
