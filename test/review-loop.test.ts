// The morning's loop against the simulator: decisions in the store, `retry --rejected` remakes
// exactly the rejected item (one new create, the rejected image kept in superseded/, the new one
// undecided), status and results show the decisions, and `export --approved` hands on exactly the
// approved images, the same bytes twice.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterEach, describe, expect, it } from "vitest";
import { exportCommand } from "../src/commands/export.js";
import { runCommand } from "../src/commands/run.js";
import { statusCommand } from "../src/commands/status.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";
import { readZip } from "./helpers/zip.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const FAST = { latencyMs: { "seedream3.0": 20, "flux-schnell": 20, nanobanana: 20, "nanobanana-pro": 20 }, jitterMs: 5 };
const TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };
const MANIFEST = [
  "name: morning",
  "provider: pictory",
  "defaults:",
  "  model: flux-schnell",
  "renditions:",
  "  - { name: square, width: 64, height: 64 }",
  "rows:",
  "  - id: hero",
  "    prompt: Wireless earbuds on a marble table",
  "    variants: 2",
  "  - id: banner",
  "    prompt: A launch banner with open sky",
  "",
].join("\n");

async function setUp() {
  sim = await startSimulator(FAST);
  const dir = tempDir();
  const manifest = join(dir, "morning.yaml");
  writeFileSync(manifest, MANIFEST);
  const t = testContext({ PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url });
  const options = { db: join(dir, "db.sqlite"), out: join(dir, "out"), pollIntervalMs: 20, tuning: TUNING };
  expect(await runCommand(manifest, options, t.ctx), t.logs()).toBe(0);
  return { dir, manifest, t, options };
}

/** Decides as a reviewer would: approve both hero variants, reject the banner. */
async function review(db: string): Promise<Record<string, string>> {
  const store = SqliteStore.open(db);
  const sha = Object.fromEntries((await store.inStates(["done"])).map((i) => [i.key, i.sha256!]));
  await store.recordDecision({ key: "hero--v1", sha256: sha["hero--v1"]!, decision: "approved", note: null, reviewer: "ana" });
  await store.recordDecision({ key: "hero--v2", sha256: sha["hero--v2"]!, decision: "approved", note: "the best one", reviewer: "ana" });
  await store.recordDecision({ key: "banner", sha256: sha.banner!, decision: "rejected", note: "sky too dark", reviewer: "ana" });
  await store.close();
  return sha;
}

describe("the morning's review loop", () => {
  it("retry --rejected remakes exactly the rejected item: one create, the rejected image kept, the new one undecided", async () => {
    const { dir, manifest, t, options } = await setUp();
    const sha = await review(options.db);
    expect(sim!.ledger().jobsCreated).toBe(3);

    const status = testContext();
    await statusCommand(manifest, { db: options.db, out: options.out }, status.ctx);
    expect(status.stdout()).toContain("Review: 2 approved · 1 rejected · 0 undecided");
    expect(status.stdout()).toContain("--rejected");

    expect(await runCommand(manifest, { ...options, command: "retry", retryFilter: { rejected: true } }, t.ctx), t.logs()).toBe(0);
    expect(sim!.ledger().jobsCreated).toBe(4);
    const kept = readdirSync(join(dir, "out", "superseded", "banner"), { recursive: true }).map(String);
    const keptImage = kept.find((f) => f.endsWith(".png"))!;
    expect(createHash("sha256").update(readFileSync(join(dir, "out", "superseded", "banner", keptImage))).digest("hex")).toBe(sha.banner);

    const store = SqliteStore.open(options.db);
    const banner = (await store.byKey("banner"))!;
    expect(banner.state).toBe("done");
    expect(banner.sha256).not.toBe(sha.banner);
    const decisions = await store.currentDecisions();
    expect(decisions.has("banner")).toBe(false);
    expect([...decisions.keys()].sort()).toEqual(["hero--v1", "hero--v2"]);
    expect((await store.decisionHistory("banner")).map((d) => [d.decision, d.sha256])).toEqual([["rejected", sha.banner]]);
    await store.close();

    // A second retry --rejected has nothing to remake.
    expect(await runCommand(manifest, { ...options, command: "retry", retryFilter: { rejected: true } }, t.ctx)).toBe(0);
    expect(sim!.ledger().jobsCreated).toBe(4);

    const csv = parse(readFileSync(join(options.out, "results.csv")), { columns: true, bom: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.key, r.review, r.reviewNote, r.reviewer])).toEqual([
      ["hero--v1", "approved", "", "ana"],
      ["hero--v2", "approved", "the best one", "ana"],
      ["banner", "", "", ""],
    ]);
    const sheet = readFileSync(join(options.out, "index.html"), "utf8");
    expect(sheet).toContain('data-review="approved"');
    expect(sheet).toContain('<select data-filter="review">');
  }, 60_000);

  it("export --approved --zip lists exactly the approved images, their sidecars, the chosen renditions and export.csv; the same bytes twice", async () => {
    const { dir, manifest, options } = await setUp();
    await review(options.db);
    const zips = [join(dir, "a.zip"), join(dir, "b.zip")];
    for (const zip of zips) {
      const t = testContext();
      expect(await exportCommand(manifest, { db: options.db, out: options.out, approved: true, zip, renditions: ["square"] }, t.ctx)).toBe(0);
      expect(t.stdout()).toContain("exported 2 approved image(s)");
    }
    const entries = readZip(zips[0]!);
    expect(entries.map((e) => e.name).sort()).toEqual(
      ["export.csv", "images/hero--v1.json", "images/hero--v1.png", "images/hero--v2.json", "images/hero--v2.png", "renditions/square/hero--v1.jpg", "renditions/square/hero--v2.jpg"].sort(),
    );
    const csv = parse(entries.find((e) => e.name === "export.csv")!.data, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.key, r.reviewer, r.reviewNote])).toEqual([["hero--v1", "ana", ""], ["hero--v2", "ana", "the best one"]]);
    expect(readFileSync(zips[0]!).equals(readFileSync(zips[1]!))).toBe(true);

    const folder = join(dir, "handoff");
    expect(await exportCommand(manifest, { db: options.db, out: options.out, approved: true, to: folder }, testContext().ctx)).toBe(0);
    expect(existsSync(join(folder, "images", "hero--v1.png"))).toBe(true);
    expect(existsSync(join(folder, "images", "banner.png"))).toBe(false);
  }, 60_000);

  it("export refuses without --approved, with both --to and --zip, and with an unknown rendition; with nothing approved it says so", async () => {
    const { dir, manifest, options } = await setUp();
    const attempt = (extra: Record<string, unknown>) => exportCommand(manifest, { db: options.db, out: options.out, ...extra }, testContext().ctx).catch((error: Error) => error);
    expect(await attempt({ zip: join(dir, "x.zip") })).toMatchObject({ exitCode: 1, message: expect.stringContaining("--approved") });
    expect(await attempt({ approved: true, zip: join(dir, "x.zip"), to: join(dir, "x") })).toMatchObject({ exitCode: 1 });
    expect(await attempt({ approved: true, zip: join(dir, "x.zip"), renditions: ["story"] })).toMatchObject({ exitCode: 1, message: expect.stringContaining("story") });
    expect(await attempt({ approved: true, zip: join(dir, "x.zip") })).toMatchObject({ exitCode: 1, message: expect.stringContaining("no approved image") });
    expect(existsSync(join(dir, "x.zip"))).toBe(false);
  }, 60_000);
});
