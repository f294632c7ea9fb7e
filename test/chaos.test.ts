// Chaos: the real CLI against the simulator with latency and faults, killed with SIGKILL at
// seeded random moments, then run to the end. Whatever the kills hit, every item ends done or
// failed with a reason, no image is paid for twice without an "unreconcilable" decision to
// explain it, every file on disk is whole, and the database is intact.
// Replay a failure with CHAOS_SEED=<seed printed in the failure message> (kill moments and the
// simulator's faults follow the seed; request timing still varies); CHAOS_KEEP=<dir> keeps the
// folder (database, output, a debug log of every run) for a look afterwards.
import { createHash } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { DEFAULTS } from "../src/defaults.js";
import { mulberry32 } from "../src/sim/faults.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { waitForLock } from "./helpers/db.js";
import { useCleanup } from "./helpers/cleanup.js";
import { filesUnder, useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir("imgbatch-chaos-");
const track = useCleanup();
let sim: SimHandle | null = null;

const SEED = Number(process.env.CHAOS_SEED ?? 20240611);
const ITEMS = 300;
const KILLS = 20;
/**
 * How long a run to the end may take: a lost submit's look at the listings (several pages, each
 * faulted here) that fails again and again waits its backoff, capped at backoffCapMs, before
 * the next; twice that cap plus the work is enough, and a run that hangs still fails.
 */
const FINAL_RUN_BOUND_MS = 2 * DEFAULTS.backoffCapMs + 30_000;
const STYLES = ["photorealistic", "artistic", "cartoon", "minimalist", "vintage", "futuristic"];
const RATIOS = ["1:1", "16:9", "9:16"];

function writeManifest(dir: string): void {
  const lines = ["name: chaos", "provider: pictory", "defaults:", "  model: flux-schnell", "rows:"];
  for (let i = 0; i < ITEMS; i++) {
    // Distinct prompts: each request hash belongs to exactly one item.
    lines.push(`  - id: c${i}`, `    prompt: Poster ${i} of a lighthouse keeper's ${i % 7 === 0 ? "red" : "blue"} boat`);
    lines.push(`    style: ${STYLES[i % STYLES.length]}`, `    aspectRatio: "${RATIOS[i % RATIOS.length]}"`);
  }
  writeFileSync(join(dir, "chaos.yaml"), `${lines.join("\n")}\n`);
}

type ItemRow = Record<string, string | number | null>;

describe("chaos: SIGKILL at random moments", () => {
  it(`${ITEMS} items, ${KILLS} kills, then to the end: nothing lost, nothing paid twice, every file whole`, async () => {
    const started = Date.now();
    const random = mulberry32(SEED);
    sim = track(await startSimulator({
      seed: SEED,
      latencyMs: { "flux-schnell": 20 },
      jitterMs: 60,
      retryAfterSeconds: 1,
      rate429: 0.01,
      rate500: 0.01,
      rate502: 0.01,
      rate503: 0.01,
      rateReset: 0.01,
      rateLostCreate: 0.04,
      rateJobFailTransient: 0.02,
      rateJobFailPermanent: 0.01,
      rateTruncatedDownload: 0.02,
      rateSlowDownload: 0.03,
      slowDownloadChunkDelayMs: 10,
      rateWrongContentType: 0.01,
      urlTtlMs: 3_000,
    }), (handle) => handle.stop());
    const cwd = tempDir();
    writeManifest(cwd);
    const env = { PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };
    // More attempts than the default: kills during a submit use some up (each is reconciled first).
    const args = ["run", "chaos.yaml", "--provider", "pictory", "--poll-interval", "30ms", "--concurrency", "16", "--max-attempts", "12"];
    if (process.env.CHAOS_KEEP) args.push("--log-level", "debug", "--log-file", "run.log");
    const runs: (CliResult & { killedAfterMs: number | null })[] = [];
    const context = () =>
      `seed ${SEED}; runs: ${runs.map((r) => `${r.signal ?? r.code}${r.killedAfterMs === null ? "" : `@${r.killedAfterMs}ms`}`).join(" ")}\n` +
      `last stderr:\n${runs.at(-1)?.stderr.split("\n").slice(-15).join("\n") ?? ""}`;

    // A run that ends before its kill moment (little left to do) does not count as a kill.
    for (let attempt = 0; attempt < 2 * KILLS && runs.filter((r) => r.signal === "SIGKILL").length < KILLS; attempt++) {
      // Measured from the moment the run holds the lock, not from spawn: start-up time varies a
      // lot on a loaded machine, and a kill before the lock only tests process start.
      const delayMs = Math.floor(random() * 1000);
      const run = runCli(args, { cwd, env, timeoutMs: 60_000 });
      let exited = false;
      void run.then(() => (exited = true));
      let timer: NodeJS.Timeout | undefined;
      void waitForLock(join(cwd, "jobs", "chaos.sqlite"), run.child.pid!, () => exited).then(() => {
        if (!exited) timer = setTimeout(() => run.child.kill("SIGKILL"), delayMs);
      });
      const result = await run;
      clearTimeout(timer);
      runs.push({ ...result, killedAfterMs: result.signal === "SIGKILL" ? delayMs : null });
      // A run that ends on its own before its kill is fine: it must still end cleanly.
      if (result.signal === null) expect([0, 2, 3], context()).toContain(result.code);
    }
    const kills = runs.filter((r) => r.signal === "SIGKILL").length;
    expect(kills, context()).toBe(KILLS);

    let final: CliResult | null = null;
    for (let extra = 0; extra < 4; extra++) {
      final = await runCli(args, { cwd, env, timeoutMs: FINAL_RUN_BOUND_MS });
      runs.push({ ...final, killedAfterMs: null });
      if (final.code !== 3) break;
    }
    expect([0, 2], context()).toContain(final!.code);

    if (process.env.CHAOS_KEEP) cpSync(cwd, process.env.CHAOS_KEEP, { recursive: true });
    const db = new Database(join(cwd, "jobs", "chaos.sqlite"), { readonly: true });
    try {
      // A run killed after it took the lock left it behind with a dead pid: the next run took
      // it over, and its log says so. (A kill during start-up, before the lock, leaves none.)
      const takeovers = runs.slice(1).filter((r) => /took over a stale lock of pid \d+/.test(r.stderr)).length;
      const died = (db.prepare("SELECT COUNT(*) n FROM runs WHERE outcome = 'died'").get() as { n: number }).n;
      expect(takeovers, context()).toBe(died);
      expect(died, context()).toBe(kills);
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      const items = db.prepare("SELECT * FROM items WHERE superseded_at IS NULL").all() as ItemRow[];
      expect(items.length).toBe(ITEMS);
      const out = join(cwd, "output", "chaos");
      for (const item of items) {
        expect(["done", "failed"], `${item.key}: ${item.state}`).toContain(item.state);
        if (item.state === "failed") {
          expect(item.error_code, String(item.key)).toBeTruthy();
          expect(item.error_message, String(item.key)).toBeTruthy();
          continue;
        }
        const sidecar = JSON.parse(readFileSync(join(out, "images", `${item.key}.json`), "utf8")) as { sha256: string; image: string };
        const bytes = readFileSync(join(out, "images", sidecar.image));
        expect(createHash("sha256").update(bytes).digest("hex"), String(item.key)).toBe(sidecar.sha256);
        expect(sidecar.sha256).toBe(item.sha256);
      }
      expect(filesUnder(cwd).filter((f) => f.endsWith(".imgbatch-tmp"))).toEqual([]);

      // Nothing paid twice. Each request hash is one item's (distinct prompts), so a second paid
      // (completed) job for a hash, or a paid job that no item owns, must be explained by an
      // "unreconcilable" decision or by an item that failed after its image was paid for.
      const unreconcilable = (db.prepare("SELECT COUNT(*) n FROM events WHERE detail LIKE '%unreconcilable%'").get() as { n: number }).n;
      const failedAfterPayment = items.filter((i) => i.state === "failed" && i.credits !== null).length;
      const paid = sim.state.listJobs(sim.apiKey).filter((j) => sim!.state.status(j) === "completed");
      const paidPerHash = new Map<string, number>();
      for (const job of paid) paidPerHash.set(job.requestHash, (paidPerHash.get(job.requestHash) ?? 0) + 1);
      const paidTwice = [...paidPerHash.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
      const owners = new Set<string>();
      for (const item of items) {
        if (item.job_id) owners.add(String(item.job_id));
        if (item.image_ref) owners.add(String(item.image_ref));
      }
      const wasted = paid.filter((j) => !owners.has(j.id) && !owners.has(j.imageId));
      const explained = unreconcilable + failedAfterPayment;
      const figures = {
        seed: SEED,
        kills,
        runs: runs.length,
        takeovers,
        finalRunMs: final!.stderr.match(/"elapsedMs":(\d+)/g)?.at(-1),
        done: items.filter((i) => i.state === "done").length,
        failed: items.filter((i) => i.state === "failed").length,
        unreconcilable,
        failedAfterPayment,
        paidTwice,
        wasted: wasted.length,
        adopted: (db.prepare("SELECT COUNT(*) n FROM events WHERE detail LIKE 'reconciled: adopted%'").get() as { n: number }).n,
        resumedSubmits: (db.prepare("SELECT COUNT(*) n FROM events WHERE detail LIKE 'reconcile:%'").get() as { n: number }).n,
        runtimeMs: Date.now() - started,
        faults: sim.ledger().faultsInjected,
        requests: sim.ledger().requestsByRoute,
        wastedJobs: wasted.map((j) => ({ id: j.id, prompt: j.request.prompt, createdAt: j.createdAt, completesAt: j.completesAt })),
        paidTwiceHashes: paid.filter((j) => (paidPerHash.get(j.requestHash) ?? 0) > 1).map((j) => ({ id: j.id, prompt: j.request.prompt, createdAt: j.createdAt })),
      };
      console.log(`chaos figures: ${JSON.stringify(figures)}`);
      expect(paidTwice, `${context()}\n${JSON.stringify(figures)}`).toBeLessThanOrEqual(explained);
      expect(wasted.length, `${context()}\n${JSON.stringify(figures)}`).toBeLessThanOrEqual(explained);
      // Most items are made: faults are a few percent, and kills must not turn into failures.
      expect(figures.done, JSON.stringify(figures)).toBeGreaterThan(ITEMS * 0.9);
    } finally {
      db.close();
    }
  }, 120_000 + 2 * FINAL_RUN_BOUND_MS);
});
