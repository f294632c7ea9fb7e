// Local reference images end to end against the simulator (issue 17): each file uploaded once
// before its items are submitted, the creates carrying the uploaded URLs, reused by later runs;
// a changed file remakes only its rows; a file that cannot be uploaded fails only its rows; the
// local renderer sets the product in the placeholder; the sheet shows it beside the result.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { planCommand } from "../src/commands/plan.js";
import type { PlanReport } from "../src/commands/plan-print.js";
import { runCommand, type RunCommandOptions } from "../src/commands/run.js";
import { startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const FAST: SimOptionsPatch = { latencyMs: { "seedream3.0": 20, "flux-schnell": 20, nanobanana: 20, "nanobanana-pro": 20 }, jitterMs: 0 };
const FAST_TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };
const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/** A solid colour PNG: the product shot. */
async function shot(path: string, colour: string): Promise<Buffer> {
  const bytes = await sharp({ create: { width: 64, height: 48, channels: 3, background: colour } }).png().toBuffer();
  writeFileSync(path, bytes);
  return bytes;
}

/** Three rows sharing two files: hero and beach show the earbuds, case the charging case. */
async function project(): Promise<{ dir: string; manifest: string; earbuds: Buffer; chargingCase: Buffer }> {
  const dir = tempDir();
  mkdirSync(join(dir, "refs"));
  const earbuds = await shot(join(dir, "refs", "earbuds.png"), "#d81b1b");
  const chargingCase = await shot(join(dir, "refs", "case.png"), "#1b4dd8");
  const manifest = join(dir, "launch.yaml");
  writeFileSync(
    manifest,
    [
      "name: launch",
      "defaults: { model: flux-schnell }",
      "rows:",
      "  - id: hero",
      "    prompt: Aurora Pro earbuds on a marble table",
      "    referenceImage: ./refs/earbuds.png",
      "  - id: beach",
      "    prompt: Aurora Pro earbuds on a beach at dawn",
      "    referenceImage: refs/earbuds.png",
      "  - id: case",
      "    prompt: The Aurora Pro charging case on a desk",
      "    referenceImage: ./refs/case.png",
      "",
    ].join("\n"),
  );
  return { dir, manifest, earbuds, chargingCase };
}

async function run(dir: string, manifest: string, options: Partial<RunCommandOptions> = {}) {
  const t = testContext({ PICTORY_API_KEY: sim!.apiKey, PICTORY_BASE_URL: sim!.url });
  const code = await runCommand(manifest, { provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out"), concurrency: 4, pollIntervalMs: 15, maxAttempts: 3, tuning: FAST_TUNING, ...options }, t.ctx);
  return { code, logs: t.logs() };
}

function items(dir: string): Record<string, { state: string; error_code: string | null; error_message: string | null; id: number }> {
  const db = new Database(join(dir, "db.sqlite"), { readonly: true });
  try {
    const rows = db.prepare("SELECT id, key, state, error_code, error_message FROM items WHERE superseded_at IS NULL").all() as { key: string; state: string; error_code: string | null; error_message: string | null; id: number }[];
    return Object.fromEntries(rows.map((r) => [r.key, r]));
  } finally {
    db.close();
  }
}

/** The reference URL each created job carried, by its prompt's first word after "Aurora Pro" or "The". */
function createdReferences(): Record<string, string | undefined> {
  return Object.fromEntries(sim!.state.listJobs(sim!.apiKey).reverse().map((job) => [job.request.prompt, job.request.referenceImageUrl]));
}

describe("local reference images against the simulator", () => {
  it("uploads each of 2 files once for 3 rows, sends the uploaded URLs, reuses them next run, and remakes only the rows of a changed file", async () => {
    sim = await startSimulator(FAST);
    const { dir, manifest, earbuds, chargingCase } = await project();
    const first = await run(dir, manifest);
    expect(first.code, first.logs).toBe(0);
    let ledger = sim.ledger();
    expect(ledger.uploads).toBe(2);
    expect(ledger.uploadsBySha256).toEqual({ [sha(earbuds)]: 1, [sha(chargingCase)]: 1 });
    expect(ledger.uploadUrlsIssued).toBe(2);
    expect(ledger.jobsCreated).toBe(3);
    // The store keeps each file's permanent URL; every create carried its file's.
    const db = new Database(join(dir, "db.sqlite"), { readonly: true });
    const uploads = Object.fromEntries((db.prepare("SELECT sha256, url FROM uploads").all() as { sha256: string; url: string }[]).map((u) => [u.sha256, u.url]));
    db.close();
    expect(Object.keys(uploads).sort()).toEqual([sha(earbuds), sha(chargingCase)].sort());
    expect(createdReferences()).toEqual({
      "Aurora Pro earbuds on a marble table": uploads[sha(earbuds)],
      "Aurora Pro earbuds on a beach at dawn": uploads[sha(earbuds)],
      "The Aurora Pro charging case on a desk": uploads[sha(chargingCase)],
    });
    // The output folder holds each reference once with its thumbnail; the sheet links them.
    for (const bytes of [earbuds, chargingCase]) {
      expect(readFileSync(join(dir, "out", "references", `${sha(bytes)}.png`)).equals(bytes)).toBe(true);
      expect(existsSync(join(dir, "out", "references", "thumbs", `${sha(bytes)}.webp`))).toBe(true);
    }
    const sheet = readFileSync(join(dir, "out", "index.html"), "utf8");
    expect(sheet.match(new RegExp(`<a class="ref" href="references/${sha(earbuds)}\\.png"`, "g"))).toHaveLength(2);
    expect(sheet).toContain(`src="references/thumbs/${sha(chargingCase)}.webp"`);
    expect(readFileSync(join(dir, "out", "results.csv"), "utf8")).toContain(`references/${sha(chargingCase)}.png`);

    // A second run: nothing to upload, nothing to make.
    const second = await run(dir, manifest);
    expect(second.code, second.logs).toBe(0);
    ledger = sim.ledger();
    expect([ledger.uploads, ledger.uploadUrlsIssued, ledger.jobsCreated]).toEqual([2, 2, 3]);

    // The case file changes: its row is remade with the new file's upload, the other two are left
    // alone; a new row with the earbuds uses their upload of the first run (recorded in the store).
    const before = items(dir);
    const newCase = await shot(join(dir, "refs", "case.png"), "#1bd86a");
    writeFileSync(manifest, `${readFileSync(manifest, "utf8")}  - id: desk\n    prompt: Aurora Pro earbuds beside a laptop\n    referenceImage: refs/earbuds.png\n`);
    // plan sees it first: the case row changed, the desk row new, one of their two files to upload.
    const planned = testContext({ PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url });
    expect(await planCommand(manifest, { provider: "pictory", db: join(dir, "db.sqlite"), out: join(dir, "out"), json: true }, planned.ctx)).toBe(0);
    const plan = JSON.parse(planned.stdout()) as PlanReport;
    expect(plan.counts).toMatchObject({ items: 4, done: 2, changed: 1, new: 1, toSubmit: 2 });
    expect(plan.references).toEqual({ files: 2, toUpload: 1 });
    expect(sim.ledger().uploads).toBe(2);
    const third = await run(dir, manifest);
    expect(third.code, third.logs).toBe(0);
    ledger = sim.ledger();
    expect([ledger.uploads, ledger.jobsCreated]).toEqual([3, 5]);
    expect(ledger.uploadsBySha256).toEqual({ [sha(earbuds)]: 1, [sha(chargingCase)]: 1, [sha(newCase)]: 1 });
    expect(createdReferences()["Aurora Pro earbuds beside a laptop"]).toBe(uploads[sha(earbuds)]);
    const after = items(dir);
    expect(after.hero!.id).toBe(before.hero!.id);
    expect(after.beach!.id).toBe(before.beach!.id);
    expect(after.case!.id).not.toBe(before.case!.id);
    expect(Object.values(after).map((i) => i.state)).toEqual(["done", "done", "done", "done"]);
    const db3 = new Database(join(dir, "db.sqlite"), { readonly: true });
    const newUrl = (db3.prepare("SELECT url FROM uploads WHERE sha256 = ?").get(sha(newCase)) as { url: string }).url;
    db3.close();
    expect(createdReferences()["The Aurora Pro charging case on a desk"]).toBe(newUrl);
  }, 60_000);

  it("a file whose PUT keeps failing fails only its rows (REFERENCE_UPLOAD_FAILED, no job made); retry uploads it once the storage is back", async () => {
    sim = await startSimulator({ ...FAST, failUploadsNamed: ["case"] });
    const { dir, manifest, chargingCase } = await project();
    const first = await run(dir, manifest);
    expect(first.code, first.logs).toBe(2);
    const states = items(dir);
    expect(states.hero!.state).toBe("done");
    expect(states.beach!.state).toBe("done");
    expect(states.case).toMatchObject({ state: "failed", error_code: "REFERENCE_UPLOAD_FAILED" });
    expect(states.case!.error_message).toMatch(/^the reference case\.png could not be uploaded \(UPLOAD_HTTP_500: PUT of the reference case\.png: HTTP 500 InternalError .*; 3 attempts\); `imgbatch retry --code REFERENCE_UPLOAD_FAILED` tries again$/);
    let ledger = sim.ledger();
    // Retried as data: three attempts (--max-attempts 3), each a fresh generateurl and PUT; the earbuds went up once.
    expect(ledger.uploadsRefused).toEqual({ fault: 3 });
    expect([ledger.uploads, ledger.uploadUrlsIssued, ledger.jobsCreated]).toEqual([1, 4, 2]);
    expect(createdReferences()["The Aurora Pro charging case on a desk"]).toBeUndefined();

    sim.configure({ failUploadsNamed: [] });
    const retried = await run(dir, manifest, { retryFilter: { codes: ["REFERENCE_UPLOAD_FAILED"] }, command: "retry" });
    expect(retried.code, retried.logs).toBe(0);
    ledger = sim.ledger();
    expect([ledger.uploads, ledger.jobsCreated]).toEqual([2, 3]);
    expect(ledger.uploadsBySha256[sha(chargingCase)]).toBe(1);
  }, 60_000);

  it("rides out flaky uploads (503s and resets on generateurl and the PUT), retried as data", async () => {
    sim = await startSimulator({ ...FAST, seed: 3, rate503: 0.2, rateReset: 0.1, faultRoutes: ["generateurl", "upload"] });
    const { dir, manifest } = await project();
    const result = await run(dir, manifest, { maxAttempts: 10 });
    expect(result.code, result.logs).toBe(0);
    const ledger = sim.ledger();
    expect(ledger.uploads).toBe(2);
    expect((ledger.faultsInjected["503"] ?? 0) + (ledger.faultsInjected.reset ?? 0)).toBeGreaterThan(0);
    expect(ledger.jobsCreated).toBe(3);
  }, 60_000);

  it("the local renderer sets each row's product in the placeholder's corner", async () => {
    const { dir, manifest } = await project();
    const t = testContext();
    const code = await runCommand(manifest, { provider: "local", db: join(dir, "db.sqlite"), out: join(dir, "out") }, t.ctx);
    expect(code, t.logs()).toBe(0);
    /** The colour in the middle of the top right inset (1024 × 1024: a 307 px box 41 px from the edges). */
    const inset = async (key: string) => {
      const { data } = await sharp(join(dir, "out", "images", `${key}.png`)).extract({ left: 1024 - 41 - 160, top: 41 + 150, width: 4, height: 4 }).raw().toBuffer({ resolveWithObject: true });
      return [data[0], data[1], data[2]];
    };
    expect(await inset("hero")).toEqual([0xd8, 0x1b, 0x1b]);
    expect(await inset("beach")).toEqual([0xd8, 0x1b, 0x1b]);
    expect(await inset("case")).toEqual([0x1b, 0x4d, 0xd8]);
  }, 60_000);
});
