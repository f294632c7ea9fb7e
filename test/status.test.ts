// `imgbatch status`, the morning answer: each run with its own failures, credits as the service
// charges them, times in this machine's zone with the offset (ISO UTC in --json), and hints
// that are the real commands, with the manifest's path as it was typed.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildStatus, formatStatus, type StatusReport } from "../src/commands/status.js";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";
import { move } from "./helpers/store.js";

const tempDir = useTempDir();

const tzBefore = process.env.TZ;
afterEach(() => {
  if (tzBefore === undefined) delete process.env.TZ;
  else process.env.TZ = tzBefore;
});

function planned(key: string, rowId = key.split("--")[0]!): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId, source: "summer.yaml line 1", variant: null, matrix: {}, request: { prompt: `a picture of ${key}`, model: "flux-schnell", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "pictory") };
}

const RUN = { pid: 4242, host: "here", provider: "pictory", manifestFile: "summer.yaml" };
const T0 = Date.parse("2026-12-07T03:36:00Z");

/** Makes `key` done at 0.6 credits, as a run would. */
async function deliver(store: Store, key: string): Promise<void> {
  let item = await move(store, (await store.byKey(key))!, "submitting", { attempts: 1 });
  item = await move(store, item, "running", { jobId: `job-${key}` });
  item = await move(store, item, "downloading", { credits: 0.6 });
  await move(store, item, "done");
}

async function fail(store: Store, key: string, code: string): Promise<void> {
  await move(store, await move(store, (await store.byKey(key))!, "submitting"), "failed", { errorCode: code, errorMessage: `${code.toLowerCase()} message` }, code);
}

/**
 * Run 1 (closed): 13 images at 0.6, two failures for content policy. Run 2 (closed): retries
 * them, one fails again for another reason. Run 3: its process died after one failure, and no
 * run has closed it yet.
 */
async function nightOf(dbPath: string): Promise<Store> {
  const clock = { t: T0 };
  const store = Store.open(dbPath, { now: () => clock.t });
  const made = Array.from({ length: 13 }, (_, i) => `made--v${i + 1}`);
  await store.syncManifest([...made, "hero--a", "hero--b", "lifestyle", "banner"].map((k) => planned(k)), "pictory");

  const first = await store.beginRun(RUN, () => false);
  if (!first.acquired) throw new Error("lock refused");
  for (const key of made) await deliver(store, key);
  await fail(store, "hero--a", "CONTENT_POLICY_VIOLATION");
  await fail(store, "lifestyle", "CONTENT_POLICY_VIOLATION");
  clock.t = T0 + 90_000;
  await store.endRun(first.run.id, { outcome: "some-failed", exitCode: 2, stopReason: null, itemsDone: 13, itemsFailed: 2, credits: made.reduce((sum) => sum + 0.6, 0) });
  await store.releaseLock(first.run.id);

  clock.t = T0 + 3_600_000;
  const second = await store.beginRun(RUN, () => false);
  if (!second.acquired) throw new Error("lock refused");
  await store.requeue({});
  await deliver(store, "hero--a");
  await fail(store, "lifestyle", "IMAGE_GENERATION_FAILED");
  clock.t = T0 + 3_630_000;
  await store.endRun(second.run.id, { outcome: "some-failed", exitCode: 2, stopReason: null, itemsDone: 1, itemsFailed: 1, credits: 0.6 });
  await store.releaseLock(second.run.id);

  clock.t = T0 + 7_200_000;
  const third = await store.beginRun({ ...RUN, pid: 4343 }, () => false);
  if (!third.acquired) throw new Error("lock refused");
  await fail(store, "hero--b", "IMAGE_GENERATION_FAILED");
  return store;
}

async function report(): Promise<StatusReport> {
  const store = await nightOf(join(tempDir(), "summer.sqlite"));
  try {
    // Long after run 3's heartbeat: its process is gone.
    return await buildStatus(store, "summer", "jobs/summer.sqlite", 5, T0 + 86_400_000);
  } finally {
    await store.close();
  }
}

describe("status: runs", () => {
  it("shows each run's failures under that run only, and an open run's failures as its figures so far", async () => {
    const r = (await report());
    expect(r.runs.map((run) => [run.id, run.outcome, run.itemsFailed, run.failureReasons])).toEqual([
      [3, "died", 1, [{ code: "IMAGE_GENERATION_FAILED", count: 1 }]],
      [2, "some-failed", 1, [{ code: "IMAGE_GENERATION_FAILED", count: 1 }]],
      [1, "some-failed", 2, [{ code: "CONTENT_POLICY_VIOLATION", count: 2 }]],
    ]);
    // Done and credits of a run are written when it ends: unknown for an open one, not 0.
    expect(r.runs[0]).toMatchObject({ itemsDone: null, credits: null, endedAt: null });
    const text = formatStatus(r, { manifest: "summer.yaml" });
    expect(text).toMatch(/#3 .* died \(no clean exit: killed or crashed\) · 1 failed so far\n {6}failures: 1 × IMAGE_GENERATION_FAILED\n {2}#2 /);
    expect(text).toMatch(/#2 .* some-failed, exit 2 · 1 done, 1 failed, 0\.6 credits\n {6}failures: 1 × IMAGE_GENERATION_FAILED\n {2}#1 /);
    expect(text).toMatch(/#1 .* some-failed, exit 2 · 13 done, 2 failed, 7\.8 credits\n {6}failures: 2 × CONTENT_POLICY_VIOLATION\n\n/);
    // What is failed now, whichever run failed it, is a section of its own.
    expect(text).toContain("Items failed now, by reason:\n     2 × IMAGE_GENERATION_FAILED: image_generation_failed message\n");
  });

  it("rounds credits to the hundredth, in text and in --json", async () => {
    const r = (await report());
    expect(r.credits).toBe(8.4);
    expect(r.runs.find((run) => run.id === 1)!.credits).toBe(7.8);
    const text = formatStatus(r, { manifest: "summer.yaml" });
    expect(text).toContain("summer: 14/17 done, 2 failed · 8.4 credits spent\n");
    expect(text).not.toMatch(/\d\.\d{4,}/);
    expect(JSON.stringify(r)).not.toMatch(/\d\.\d{4,}/);
  });

  it("rounds the database's total too (a float sum in SQLite: 0.1 + 0.2)", async () => {
    const store = Store.open(join(tempDir(), "t.sqlite"));
    await store.syncManifest(["a", "b"].map((k) => planned(k)), "pictory");
    for (const [key, credits] of [["a", 0.1], ["b", 0.2]] as const) {
      let item = await move(store, (await store.byKey(key))!, "submitting", { attempts: 1 });
      item = await move(store, item, "running", { jobId: `job-${key}` });
      await move(store, await move(store, item, "downloading", { credits }), "done");
    }
    expect(await store.totalCredits()).toBe(0.30000000000000004);
    const r = await buildStatus(store, "t", "t.sqlite");
    await store.close();
    expect(r.credits).toBe(0.3);
    expect(formatStatus(r)).toContain("0.3 credits spent");
  });

  it("shows times in this machine's zone with the offset; --json keeps ISO UTC", async () => {
    process.env.TZ = "Asia/Kolkata";
    const r = (await report());
    expect(r.runs.at(-1)).toMatchObject({ startedAt: "2026-12-07T03:36:00.000Z", endedAt: "2026-12-07T03:37:30.000Z" });
    const text = formatStatus(r, { manifest: "summer.yaml" });
    expect(text).toContain("  #1 2026-12-07 09:06 +05:30 → 2026-12-07 09:07 +05:30 (1m30s)  some-failed");
    expect(text).toContain("  #3 2026-12-07 11:06 +05:30 → —  died");
    expect(text).not.toMatch(/\d\dT\d\d:/);
  });
});

describe("status: hints", () => {
  it("prints the retry command with the manifest's path as typed and the failed rows", async () => {
    const text = formatStatus((await report()), { manifest: "../campaign/summer.yaml", manifestProvider: "pictory" });
    expect(text).toContain("\nRe-run them:\n  imgbatch retry ../campaign/summer.yaml --rows hero,lifestyle");
    expect(text).toMatch(/--rows hero,lifestyle +# all 2 failed items \(rows hero, lifestyle\)\n/);
    expect(text).not.toContain("<manifest>");
    expect(text).not.toContain("--code");
  });

  it("quotes a path the shell would split, repeats --db, and names the provider a bare retry would not use", async () => {
    const text = formatStatus((await report()), { manifest: "my campaign/it's.yaml", db: "state/summer.sqlite", manifestProvider: null });
    expect(text).toContain(`  imgbatch retry 'my campaign/it'\\''s.yaml' --db state/summer.sqlite --provider pictory --rows hero,lifestyle`);
  });

  it("re-runs every failed item without listing rows when more than ten rows failed", async () => {
    const store = Store.open(join(tempDir(), "many.sqlite"));
    const keys = Array.from({ length: 11 }, (_, i) => `row${i + 1}`);
    await store.syncManifest(keys.map((k) => planned(k)), "pictory");
    for (const key of keys) await fail(store, key, "CONTENT_POLICY_VIOLATION");
    const many = formatStatus(await buildStatus(store, "many", "many.sqlite"), { manifest: "many.yaml" });
    expect(many).toMatch(/\n {2}imgbatch retry many\.yaml +# all 11 failed items\n/);
    await store.requeue({ rowIds: keys.slice(1) });
    const one = formatStatus(await buildStatus(store, "many", "many.sqlite"), { manifest: "many.yaml" });
    await store.close();
    expect(one).toMatch(/\n {2}imgbatch retry many\.yaml --rows row1 +# the failed item \(row row1\)\n/);
  });

  it("offers one command per reason when the failures have several", async () => {
    const store = await nightOf(join(tempDir(), "summer.sqlite"));
    await fail(store, "banner", "CONTENT_POLICY_VIOLATION");
    const r = await buildStatus(store, "summer", "jobs/summer.sqlite", 5, T0 + 86_400_000);
    await store.close();
    const lines = formatStatus(r, { manifest: "summer.yaml", manifestProvider: "pictory" }).split("\n");
    const hints = lines.slice(lines.indexOf("Re-run them:") + 1).filter((l) => l.startsWith("  imgbatch"));
    expect(hints.map((l) => l.replace(/ +#/, " #").trim())).toEqual([
      "imgbatch retry summer.yaml --rows hero,lifestyle,banner # all 3 failed items (rows hero, lifestyle, banner)",
      "imgbatch retry summer.yaml --code IMAGE_GENERATION_FAILED # only IMAGE_GENERATION_FAILED (2)",
      "imgbatch retry summer.yaml --code CONTENT_POLICY_VIOLATION # only CONTENT_POLICY_VIOLATION (1)",
    ]);
  });
});

describe("status through the CLI", () => {
  const MANIFEST = "name: summer\nprovider: pictory\nrows:\n  - id: hero\n    prompt: A red bicycle at dawn\n";

  it("hints with the path as typed, from another working folder", async () => {
    const root = tempDir();
    const campaign = join(root, "campaign");
    mkdirSync(join(campaign, "jobs"), { recursive: true });
    writeFileSync(join(campaign, "summer.yaml"), MANIFEST);
    await (await nightOf(join(campaign, "jobs", "summer.sqlite"))).close();
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    const result = await runCli(["status", "../campaign/summer.yaml", "--db", "../campaign/jobs/summer.sqlite"], { cwd: elsewhere });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("  imgbatch retry ../campaign/summer.yaml --db ../campaign/jobs/summer.sqlite --rows hero,lifestyle");
    const json = JSON.parse((await runCli(["status", "../campaign/summer.yaml", "--db", "../campaign/jobs/summer.sqlite", "--json"], { cwd: elsewhere })).stdout) as StatusReport;
    expect(json.runs.at(-1)!.startedAt).toBe("2026-12-07T03:36:00.000Z");
    expect(json.credits).toBe(8.4);
  });

  it("hints with the path as typed from the project folder (default database)", async () => {
    const project = tempDir();
    mkdirSync(join(project, "jobs"));
    mkdirSync(join(project, "output"));
    mkdirSync(join(project, "manifests"));
    writeFileSync(join(project, "manifests", "summer.yaml"), MANIFEST);
    await (await nightOf(join(project, "jobs", "summer.sqlite"))).close();
    const result = await runCli(["status", "./manifests/summer.yaml"], { cwd: project });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("  imgbatch retry ./manifests/summer.yaml --rows hero,lifestyle");
  });
});
