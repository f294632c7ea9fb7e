// Chaos on a shared PostgreSQL run: three workers against the simulator with faults, one killed
// with SIGKILL, one paused with SIGSTOP past its lease, then run to the end. Every item ends done
// or failed with a reason; no request is paid twice unless an orphaned job explains it (the
// documented residual window); the key's limits hold across the workers (the simulator's ledger).
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { runCli } from "./helpers/cli.js";
import { freshSchema } from "./helpers/postgres-server.mjs";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const ITEMS = 45;
const CONCURRENCY = 6;
const RPM = 1_200;
const SEEDS = (process.env.PG_CHAOS_SEEDS ?? "11,12,13").split(",").map(Number);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("chaos on a shared PostgreSQL run", () => {
  it.each(SEEDS)("seed %i: 3 workers, a SIGKILL and a SIGSTOP past the lease; every item ends, none paid twice unexplained, the limits hold", async (seed) => {
    sim = await startSimulator({
      seed,
      latencyMs: { "flux-schnell": 400, "seedream3.0": 400, nanobanana: 400, "nanobanana-pro": 400 },
      jitterMs: 200,
      rate500: 0.03,
      rate503: 0.03,
      rateReset: 0.02,
      rateLostCreate: 0.04,
      rate429: 0.02,
    });
    const dir = tempDir();
    const lines = ["name: chaos", "provider: pictory", "defaults:", "  model: flux-schnell", "rows:"];
    for (let i = 0; i < ITEMS; i++) lines.push(`  - id: r${i}`, `    prompt: Poster ${i} of a windy harbour, seed ${seed}`);
    const manifest = join(dir, "chaos.yaml");
    writeFileSync(manifest, `${lines.join("\n")}\n`);
    const db = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const start = (name: string) =>
      runCli(["run", manifest, "--db", db, "--out", join(dir, "out"), "--worker", name, "--concurrency", String(CONCURRENCY), "--rpm", String(RPM), "--poll-interval", "100ms", "--lease", "2s", "--max-attempts", "8"], {
        cwd: dir,
        env: { PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url },
        timeoutMs: 120_000,
      });
    const w1 = start("w1");
    const w2 = start("w2");
    const w3 = start("w3");
    await sleep(1_500 + (seed % 5) * 200);
    w1.child.kill("SIGKILL");
    await sleep(500);
    w2.child.kill("SIGSTOP");
    await sleep(5_000); // past its 2 s lease: its items are taken over meanwhile
    w2.child.kill("SIGCONT");
    const ended = await Promise.all([w1, w2, w3]);
    expect(ended[0]!.signal).toBe("SIGKILL");
    for (const r of ended.slice(1)) expect([0, 2], r.stderr.slice(-1_500)).toContain(r.code);
    // Whatever is left (a worker may end while another still held items) is finished by one more.
    const last = await start("closer");
    expect([0, 2], last.stderr.slice(-1_500)).toContain(last.code);

    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const items = (await client.query("SELECT key, state, error_code, job_id FROM items WHERE superseded_at IS NULL")).rows as { key: string; state: string; error_code: string | null; job_id: string | null }[];
    const orphans = (await client.query("SELECT job_id FROM orphan_jobs")).rows.length;
    await client.end();
    expect(items).toHaveLength(ITEMS);
    for (const item of items) {
      expect(["done", "failed"], JSON.stringify(item)).toContain(item.state);
      if (item.state === "failed") expect(item.error_code, JSON.stringify(item)).toBeTruthy();
    }
    const ledger = sim.ledger();
    const twice = Object.values(ledger.jobsByRequestHash).filter((n) => n > 1).length;
    // Paid twice only where a submit answered after its worker had lost the claim (an orphan on record).
    expect(twice, `request hashes created twice: ${twice}, orphans on record: ${orphans}`).toBeLessThanOrEqual(orphans);
    expect(ledger.maxInFlight, `max in flight ${ledger.maxInFlight}`).toBeLessThanOrEqual(CONCURRENCY + orphans);
    console.log(`pg chaos seed ${seed}: max in flight ${ledger.maxInFlight}, most requests a minute ${ledger.requestsPerMinuteMax}, created twice ${twice}, orphans ${orphans}`);
    expect(ledger.requestsPerMinuteMax).toBeLessThanOrEqual(RPM);
  }, 180_000);
});
