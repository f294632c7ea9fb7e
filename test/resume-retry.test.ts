// Re-running failed rows through the built CLI against the simulator: `retry --rows`, `retry
// --code`, `run --retry-failed` each re-queue exactly the chosen failed items; `status` shows
// the last runs (start, end, outcome, counts, credits, failure reasons with counts), in text
// and in --json, and a run's reasons stay as they were after its items are retried.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { simRequestHash, startSimulator, type SimHandle } from "../src/sim/index.js";
import { jsonLines, runCli } from "./helpers/cli.js";
import { readDb, stateCounts } from "./helpers/db.js";
import { useCleanup } from "./helpers/cleanup.js";
import { useTempDir } from "./helpers/tmp.js";
import type { StatusReport } from "../src/commands/status.js";

const tempDir = useTempDir();
const track = useCleanup();
let sim: SimHandle | null = null;

// unr*: the job fails (REFERENCE_IMAGE_UNREACHABLE); flux*: the service refuses the submit (400).
const MANIFEST = `name: night
provider: pictory
defaults: { model: flux-schnell }
rows:
  - id: ok
    prompt: A quiet harbour town at dawn
  - id: unr1
    prompt: A lighthouse in the style of the reference
    model: seedream3.0
    referenceImageUrl: https://unreachable.invalid/lighthouse.png
    variants: 2
  - id: unr2
    prompt: A sailing boat in the style of the reference
    model: seedream3.0
    referenceImageUrl: https://unreachable.invalid/boat.png
  - id: flux1
    prompt: A red bicycle like the reference
    referenceImageUrl: https://example.com/bicycle.png
  - id: flux2
    prompt: A blue tram like the reference
    referenceImageUrl: https://example.com/tram.png
`;

/** The `status --json` shape, as status.ts builds it. */
type StatusJson = StatusReport;

function itemStates(db: string): Record<string, string> {
  return Object.fromEntries(readDb(db, (conn) => conn.prepare("SELECT key, state FROM items").all() as { key: string; state: string }[])!.map((r) => [r.key, r.state]));
}

describe("re-running failed rows", () => {
  it("retry --rows, retry --code and run --retry-failed re-queue exactly the chosen items; status tells each run", async () => {
    sim = track(await startSimulator({ latencyMs: { "flux-schnell": 20, "seedream3.0": 30 }, jitterMs: 5, rejectReferenceWithFlux: true }), (handle) => handle.stop());
    const cwd = tempDir();
    writeFileSync(join(cwd, "night.yaml"), MANIFEST);
    const db = join(cwd, "jobs", "night.sqlite");
    const cli = (...args: string[]) => runCli([...args, "--poll-interval", "30ms"], { cwd, env: { PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url } });
    const jobsFor = (prompt: string, model: string, referenceImageUrl: string) =>
      sim!.ledger().jobsByRequestHash[simRequestHash({ prompt, model, aspectRatio: "1:1", referenceImageUrl })] ?? 0;

    const first = await cli("run", "night.yaml");
    expect(first.code, first.stderr).toBe(2);
    expect(itemStates(db)).toEqual({ ok: "done", "unr1--v1": "failed", "unr1--v2": "failed", unr2: "failed", flux1: "failed", flux2: "failed" });

    // The morning after: what happened, in text and for machines.
    const text = await runCli(["status", "night.yaml"], { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/1\/6 done, 5 failed/);
    expect(text.stdout).toMatch(/#1 \d{4}-\d\d-\d\d \d\d:\d\d [+-]\d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d [+-]\d\d:\d\d \(\d+s\)\s+some-failed, exit 2 · 1 done, 5 failed, 0\.6 credits/);
    expect(text.stdout).toMatch(/failures: 3 × REFERENCE_IMAGE_UNREACHABLE, 2 × INVALID_REQUEST_BODY/);
    expect(text.stdout).toMatch(/ {3}3 × REFERENCE_IMAGE_UNREACHABLE: /);
    const afterFirst = JSON.parse((await runCli(["status", "night.yaml", "--json"], { cwd })).stdout) as StatusJson;
    expect(afterFirst.failureReasons.map(({ code, count }) => ({ code, count }))).toEqual([
      { code: "REFERENCE_IMAGE_UNREACHABLE", count: 3 },
      { code: "INVALID_REQUEST_BODY", count: 2 },
    ]);
    expect(afterFirst.runs).toHaveLength(1);
    expect(afterFirst.runs[0]).toMatchObject({ id: 1, outcome: "some-failed", exitCode: 2, itemsDone: 1, itemsFailed: 5, credits: 0.6 });
    expect(Date.parse(afterFirst.runs[0]!.endedAt!)).toBeGreaterThanOrEqual(Date.parse(afterFirst.runs[0]!.startedAt));

    // The causes are fixed at the service.
    sim.configure({ unreachableHosts: [], rejectReferenceWithFlux: false });

    const byRow = await cli("retry", "night.yaml", "--rows", "unr1");
    expect(byRow.code, byRow.stderr).toBe(2);
    expect(itemStates(db)).toEqual({ ok: "done", "unr1--v1": "done", "unr1--v2": "done", unr2: "failed", flux1: "failed", flux2: "failed" });
    expect(jsonLines(byRow.stderr).some((l) => l.msg === "re-queued 2 failed item(s)")).toBe(true);
    expect(jobsFor("A lighthouse in the style of the reference", "seedream3.0", "https://unreachable.invalid/lighthouse.png")).toBe(4); // 2 failed + 2 made now
    expect(jobsFor("A sailing boat in the style of the reference", "seedream3.0", "https://unreachable.invalid/boat.png")).toBe(1);

    const byCode = await cli("retry", "night.yaml", "--code", "INVALID_REQUEST_BODY");
    expect(byCode.code, byCode.stderr).toBe(2);
    expect(itemStates(db)).toEqual({ ok: "done", "unr1--v1": "done", "unr1--v2": "done", unr2: "failed", flux1: "done", flux2: "done" });
    expect(jobsFor("A sailing boat in the style of the reference", "seedream3.0", "https://unreachable.invalid/boat.png")).toBe(1);

    // A typo re-runs nothing, and says so.
    const typo = await cli("retry", "night.yaml", "--rows", "unr3");
    expect(typo.code, typo.stderr).toBe(2);
    expect(jsonLines(typo.stderr).some((l) => l.msg === "--rows: no failed item in row(s) unr3")).toBe(true);

    const all = await cli("run", "night.yaml", "--retry-failed");
    expect(all.code, all.stderr).toBe(0);
    expect(stateCounts(db)).toEqual({ done: 6 });
    expect(jobsFor("A sailing boat in the style of the reference", "seedream3.0", "https://unreachable.invalid/boat.png")).toBe(2);
    expect(sim.ledger().jobsCreated).toBe(1 + 3 + 3 + 2); // ok, unr* failed, unr* made, flux* made

    // Every retry is an event naming what the item failed with.
    const retries = readDb(db, (conn) => conn.prepare("SELECT i.key, e.run_id, e.detail FROM events e JOIN items i ON i.id = e.item_id WHERE e.detail LIKE 'retry requested%' ORDER BY e.id").all())!;
    expect(retries).toEqual([
      { key: "unr1--v1", run_id: 2, detail: "retry requested (was REFERENCE_IMAGE_UNREACHABLE)" },
      { key: "unr1--v2", run_id: 2, detail: "retry requested (was REFERENCE_IMAGE_UNREACHABLE)" },
      { key: "flux1", run_id: 3, detail: "retry requested (was INVALID_REQUEST_BODY)" },
      { key: "flux2", run_id: 3, detail: "retry requested (was INVALID_REQUEST_BODY)" },
      { key: "unr2", run_id: 5, detail: "retry requested (was REFERENCE_IMAGE_UNREACHABLE)" },
    ]);

    // Every run is listed, newest first; the first run's reasons are still what happened then.
    const final = JSON.parse((await runCli(["status", "night.yaml", "--json"], { cwd })).stdout) as StatusJson;
    expect(final.counts).toMatchObject({ done: 6, failed: 0 });
    expect(final.failed).toEqual([]);
    expect(final.runs.map((r) => [r.id, r.outcome, r.exitCode, r.itemsDone, r.itemsFailed])).toEqual([
      [5, "done", 0, 1, 0],
      [4, "some-failed", 2, 0, 0],
      [3, "some-failed", 2, 2, 0],
      [2, "some-failed", 2, 2, 0],
      [1, "some-failed", 2, 1, 5],
    ]);
    expect(final.runs[4]!.failureReasons).toEqual([
      { code: "REFERENCE_IMAGE_UNREACHABLE", count: 3 },
      { code: "INVALID_REQUEST_BODY", count: 2 },
    ]);
    expect(final.runs[3]!.credits).toBe(4); // two seedream3.0 pictures at 2 credits
    expect(final.credits).toBeCloseTo(0.6 + 3 * 2 + 2 * 0.6, 6);
  }, 60_000);
});
