// The quality gates in a run against the simulator: a blank frame remade within qc.maxRetries
// (each remake paid and counted), flagged once the remakes are used up; near-duplicate variants
// flagged, not remade; the earlier image kept in superseded/.
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { runCommand } from "../src/commands/run.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const FAST = { latencyMs: { "seedream3.0": 20, "flux-schnell": 20, nanobanana: 20, "nanobanana-pro": 20 }, jitterMs: 5 };
const TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };

interface Row {
  key: string;
  state: string;
  qc_flags: string | null;
  qc_retries: number;
  superseded_at: number | null;
  credits: number | null;
}

function write(dir: string, qc: string[], rows: string[]): string {
  const path = join(dir, "qc.yaml");
  writeFileSync(path, ["name: qc", "provider: pictory", "defaults:", "  model: flux-schnell", ...(qc.length ? ["qc:", ...qc] : []), "rows:", ...rows, ""].join("\n"));
  return path;
}

async function run(dir: string, manifestPath: string, maxCredits?: number): Promise<{ code: number; rows: Row[]; logs: string }> {
  const t = testContext({ PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url });
  const code = await runCommand(manifestPath, { db: join(dir, "db.sqlite"), out: join(dir, "out"), pollIntervalMs: 20, tuning: TUNING, ...(maxCredits === undefined ? {} : { maxCredits }) }, t.ctx);
  const db = new Database(join(dir, "db.sqlite"), { readonly: true });
  const rows = db.prepare("SELECT key, state, qc_flags, qc_retries, superseded_at, credits FROM items ORDER BY id").all() as Row[];
  db.close();
  return { code, rows, logs: t.logs() };
}

const flagsOf = (row: Row | undefined) => (row?.qc_flags ? (JSON.parse(row.qc_flags) as { gate: string; mode: string; message: string }[]) : []);

describe("quality gates in a run", () => {
  it("remakes a blank frame once (paid, counted), keeps the blank one superseded, and delivers the good one unflagged", async () => {
    sim = await startSimulator({ ...FAST, blankImages: [{ promptContains: "[flat]", first: 1 }] });
    const dir = tempDir();
    const path = write(dir, [], ["  - id: hero", "    prompt: A hero shot [flat]", "  - id: other", "    prompt: Another picture"]);
    const { code, rows, logs } = await run(dir, path);
    expect(code, logs).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(3);
    const hero = rows.filter((r) => r.key === "hero");
    expect(hero.map((r) => [r.state, r.superseded_at === null, r.qc_retries])).toEqual([["done", false, 0], ["done", true, 1]]);
    expect(flagsOf(hero[0])).toEqual([expect.objectContaining({ gate: "blank", mode: "retry" })]);
    expect(flagsOf(hero[1])).toEqual([]);
    // Both images of hero were paid for: the superseded record keeps its credits.
    expect(rows.reduce((sum, r) => sum + (r.credits ?? 0), 0)).toBeCloseTo(3 * 0.6);
    expect(readdirSync(join(dir, "out", "superseded", "hero"))).toHaveLength(1);
  }, 60_000);

  it("flags a frame still blank once qc.maxRetries remakes are used, and pays no more", async () => {
    sim = await startSimulator({ ...FAST, blankImages: [{ promptContains: "[flat]", first: 10 }] });
    const dir = tempDir();
    const path = write(dir, ["  maxRetries: 2"], ["  - id: hero", "    prompt: A hero shot [flat]"]);
    const { code, rows } = await run(dir, path);
    expect(code).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(3);
    const live = rows.find((r) => r.superseded_at === null)!;
    expect(live).toMatchObject({ state: "done", qc_retries: 2 });
    expect(flagsOf(live)).toEqual([expect.objectContaining({ gate: "blank", mode: "flag", message: expect.stringContaining("after 2 remake(s)") })]);
  }, 60_000);

  it("with blank: flag, a blank frame is only flagged; with blank: off, not even that", async () => {
    sim = await startSimulator({ ...FAST, blankImages: [{ promptContains: "[flat]", first: 10 }] });
    const flagged = tempDir();
    const one = await run(flagged, write(flagged, ["  blank: flag"], ["  - id: hero", "    prompt: A hero shot [flat]"]));
    expect(flagsOf(one.rows[0])).toEqual([expect.objectContaining({ gate: "blank", mode: "flag" })]);
    const off = tempDir();
    const two = await run(off, write(off, ["  blank: off"], ["  - id: hero", "    prompt: A hero shot [flat]"]));
    expect(flagsOf(two.rows[0])).toEqual([]);
    expect(sim.ledger().jobsCreated).toBe(2);
  }, 60_000);

  it("flags the second of two near-identical variants as a duplicate of the first, and remakes nothing", async () => {
    sim = await startSimulator({ ...FAST, plainImagePrompts: ["[same]"] });
    const dir = tempDir();
    const path = write(dir, [], ["  - id: twins", "    prompt: Two of a kind [same]", "    variants: 2"]);
    const { code, rows } = await run(dir, path);
    expect(code).toBe(0);
    expect(sim.ledger().jobsCreated).toBe(2);
    const flags = rows.map((r) => flagsOf(r));
    expect(flags.filter((f) => f.length === 1)).toEqual([[expect.objectContaining({ gate: "duplicate", mode: "flag", message: expect.stringMatching(/near-duplicate of twins--v[12]/) })]]);
  }, 60_000);

  it("counts a remake against --max-credits: the run stops before paying past it", async () => {
    sim = await startSimulator({ ...FAST, blankImages: [{ promptContains: "[flat]", first: 10 }] });
    const dir = tempDir();
    const path = write(dir, ["  maxRetries: 3"], ["  - id: hero", "    prompt: A hero shot [flat]"]);
    const { code, rows } = await run(dir, path, 1.2);
    expect(code).toBe(3);
    expect(sim.ledger().jobsCreated).toBe(2);
    expect(rows.filter((r) => r.superseded_at === null).map((r) => r.state)).toEqual(["queued"]);
    expect(existsSync(join(dir, "out", "superseded", "hero"))).toBe(true);
  }, 60_000);
});
