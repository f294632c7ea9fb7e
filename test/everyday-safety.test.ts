// Issue 13: a user's ordinary moves (a forgotten flag, another working folder, a moved or
// deleted folder, a lost database) never pay twice and never lose a paid image. Each test
// runs the built CLI against the simulator and reads its ledger where money is involved.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { sameLatencyForAllModels } from "./helpers/cleanup.js";
import { readDb } from "./helpers/db.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const CSV = "id,prompt,style\nmug,A ceramic mug on a wooden desk at dawn,photorealistic\nlamp,A brass desk lamp in a dark study,vintage\nplant,A small cactus in a terracotta pot,minimalist\n";

async function startSim(): Promise<SimHandle> {
  sim = await startSimulator({ ...sameLatencyForAllModels(20) });
  return sim;
}

function pictoryEnv(s: SimHandle): NodeJS.ProcessEnv {
  return { PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url };
}

/** A project folder with summer.csv, run once with pictory against a fresh simulator. */
async function paidProject(): Promise<{ s: SimHandle; project: string }> {
  const s = await startSim();
  const project = tempDir();
  writeFileSync(join(project, "summer.csv"), CSV);
  const first = await cli(["run", "summer.csv", "--provider", "pictory"], project, pictoryEnv(s));
  expect(first.code, first.stderr).toBe(0);
  return { s, project };
}

/** Every file under `dir` (relative path → sha256), superseded/ and reports left out unless asked. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[relative(dir, path)] = createHash("sha256").update(readFileSync(path)).digest("hex");
  }
  return files;
}

function imagesOf(files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).filter(([path]) => /^images\/[^/]+\.(png|jpg|webp)$/.test(path)));
}

async function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  // Commands that poll read the simulator's jobs every 25 ms; the others take no such flag.
  const polling = args[0] === "run" || args[0] === "retry" ? ["--poll-interval", "25ms"] : [];
  return runCli([...args, ...polling], { cwd, env });
}

describe("a forgotten flag never replaces a paid image", () => {
  it("after a pictory run, run/retry without --provider (or npm start's --provider local) exit 1 and touch nothing; with it, nothing to do", async () => {
    const s = await startSim();
    const project = tempDir();
    writeFileSync(join(project, "products.csv"), CSV);
    const first = await cli(["run", "products.csv", "--provider", "pictory"], project, pictoryEnv(s));
    expect(first.code, first.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
    const out = join(project, "output", "products");
    const before = snapshot(out);

    // The key is not in the environment: the remembered provider still needs it.
    for (const args of [["run", "products.csv"], ["retry", "products.csv"]]) {
      const again = await cli(args, project);
      expect(again.code, again.stderr).toBe(1);
      expect(again.stderr).toMatch(/remembered|PICTORY_API_KEY/);
    }
    // An explicit other provider (as `npm start` passes) is refused with the flag that makes it so.
    for (const command of ["run", "retry"]) {
      const local = await cli([command, "products.csv", "--provider", "local"], project);
      expect(local.code, local.stderr).toBe(1);
      expect(local.stderr).toContain("pictory made and charged for (3 done)");
      expect(local.stderr).toContain("--switch-provider");
    }
    expect(s.ledger().jobsCreated).toBe(3);
    expect(snapshot(out)).toEqual(before);

    const remembered = await cli(["run", "products.csv"], project, pictoryEnv(s));
    expect(remembered.code, remembered.stderr).toBe(0);
    expect(remembered.stderr).toContain("pictory (remembered");
    const explicit = await cli(["run", "products.csv", "--provider", "pictory"], project, pictoryEnv(s));
    expect(explicit.code, explicit.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
    expect(imagesOf(snapshot(out))).toEqual(imagesOf(before));
  }, 60_000);

  it("a CSV names its provider with a `# provider:` line; --switch-provider remakes and keeps the paid images aside", async () => {
    const s = await startSim();
    const project = tempDir();
    writeFileSync(join(project, "products.csv"), `# provider: pictory\n${CSV}`);
    expect((await cli(["run", "products.csv"], project, pictoryEnv(s))).code).toBe(0);
    const out = join(project, "output", "products");
    const paid = imagesOf(snapshot(out));
    const switched = await cli(["run", "products.csv", "--provider", "local", "--switch-provider"], project);
    expect(switched.code, switched.stderr).toBe(0);
    expect(switched.stderr).toContain("3 item(s) made by pictory will be made anew by local");
    expect(s.ledger().jobsCreated).toBe(3);
    // Each paid image is still on disk, byte for byte, where the README says.
    for (const [path, sha] of Object.entries(paid)) {
      const key = path.slice("images/".length).replace(/\.\w+$/, "");
      const kept = join(out, "superseded", key, "1", path);
      expect(createHash("sha256").update(readFileSync(kept)).digest("hex")).toBe(sha);
    }
  }, 60_000);

  it("going from local previews to pictory is one flag, and the first lines say how many are made anew by whom", async () => {
    const s = await startSim();
    const project = tempDir();
    writeFileSync(join(project, "products.csv"), CSV);
    expect((await cli(["run", "products.csv"], project)).code).toBe(0);
    const paid = await cli(["run", "products.csv", "--provider", "pictory"], project, pictoryEnv(s));
    expect(paid.code, paid.stderr).toBe(0);
    expect(paid.stderr).toContain("3 item(s) made by local will be made anew by pictory");
    expect(s.ledger().jobsCreated).toBe(3);
    expect(existsSync(join(project, "output", "products", "superseded", "mug", "1", "images", "mug.json"))).toBe(true);
  }, 60_000);
});

describe("one manifest, one state, wherever it is run from", () => {
  it("three working folders share one database and pay once", async () => {
    const s = await startSim();
    const root = tempDir();
    const campaign = join(root, "campaign");
    mkdirSync(campaign);
    writeFileSync(join(campaign, "summer.csv"), CSV);
    mkdirSync(join(root, "elsewhere", "deep"), { recursive: true });
    for (const [cwd, path] of [[campaign, "summer.csv"], [root, "campaign/summer.csv"], [join(root, "elsewhere", "deep"), "../../campaign/summer.csv"]] as const) {
      const result = await cli(["run", path, "--provider", "pictory"], cwd, pictoryEnv(s));
      expect(result.code, result.stderr).toBe(0);
    }
    expect(s.ledger().jobsCreated).toBe(3);
    expect(existsSync(join(campaign, "jobs", "summer.sqlite"))).toBe(true);
    expect(existsSync(join(root, "jobs"))).toBe(false);
    expect(existsSync(join(root, "elsewhere", "deep", "jobs"))).toBe(false);
  }, 60_000);

  it("finds the project folder above the manifest by its jobs/ folder, and a deleted output/ does not move the state", async () => {
    const s = await startSim();
    const project = tempDir();
    mkdirSync(join(project, "jobs"));
    mkdirSync(join(project, "manifests"));
    writeFileSync(join(project, "manifests", "summer.csv"), CSV);
    const manifest = join(project, "manifests", "summer.csv");
    const result = await cli(["run", manifest, "--provider", "pictory"], tempDir(), pictoryEnv(s));
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(project, "jobs", "summer.sqlite"))).toBe(true);
    expect(existsSync(join(project, "output", "summer", "index.html"))).toBe(true);
    const before = imagesOf(snapshot(join(project, "output", "summer")));
    rmSync(join(project, "output"), { recursive: true });
    const again = await cli(["run", manifest], tempDir(), pictoryEnv(s));
    expect(again.code, again.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
    expect(existsSync(join(project, "manifests", "jobs"))).toBe(false);
    expect(imagesOf(snapshot(join(project, "output", "summer")))).toEqual(before);
  }, 60_000);
});

describe("moved, deleted and altered files", () => {
  it("a moved project folder: run does nothing, report's sheet has every image", async () => {
    const s = await startSim();
    const root = tempDir();
    const project = join(root, "old-place");
    mkdirSync(project);
    writeFileSync(join(project, "summer.csv"), CSV);
    expect((await cli(["run", "summer.csv", "--provider", "pictory"], project, pictoryEnv(s))).code).toBe(0);
    const moved = join(root, "new-place");
    renameSync(project, moved);
    const again = await cli(["run", "summer.csv"], moved, pictoryEnv(s));
    expect(again.code, again.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
    expect((await cli(["report", "summer.csv"], moved)).code).toBe(0);
    const out = join(moved, "output", "summer");
    const html = readFileSync(join(out, "index.html"), "utf8");
    const sources = [...html.matchAll(/<img[^>]* src="([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!));
    expect(sources).toHaveLength(3);
    for (const src of sources) expect(existsSync(join(out, src)), src).toBe(true);
    const csv = readFileSync(join(out, "results.csv"), "utf8");
    expect(csv).not.toContain("old-place");
    expect(csv).toMatch(/images\/mug\.png/);
  }, 60_000);

  it("a deleted output folder comes back from the service without a new submit; past retention the items are missing (exit 2)", async () => {
    const { s, project } = await paidProject();
    const out = join(project, "output", "summer");
    const before = imagesOf(snapshot(out));
    rmSync(out, { recursive: true });
    const back = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toContain("delivering them again from their jobs");
    expect(s.ledger().jobsCreated).toBe(3);
    expect(imagesOf(snapshot(out))).toEqual(before);

    rmSync(join(out, "images"), { recursive: true });
    s.advance(s.options().jobRetentionMs + 60_000);
    const gone = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(gone.code, gone.stderr).toBe(2);
    expect(s.ledger().jobsCreated).toBe(3);
    const status = await runCli(["status", "summer.csv"], { cwd: project });
    expect(status.stdout).toMatch(/missing 3/);
    const results = readFileSync(join(out, "results.csv"), "utf8");
    expect(results.split("\n").filter((l) => l.includes(",missing,"))).toHaveLength(3);
    // Only the explicit retry pays for them again.
    expect((await cli(["retry", "summer.csv"], project, pictoryEnv(s))).code).toBe(2);
    expect(s.ledger().jobsCreated).toBe(3);
    const paid = await cli(["retry", "summer.csv", "--missing"], project, pictoryEnv(s));
    expect(paid.code, paid.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(6);
  }, 60_000);

  it("verify names a changed image; the next run delivers it again and keeps the changed file aside", async () => {
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const out = join(project, "output", "summer");
    expect((await runCli(["verify", "summer.csv"], { cwd: project })).code).toBe(0);
    const original = readFileSync(join(out, "images", "lamp.png"));
    writeFileSync(join(out, "images", "lamp.png"), Buffer.concat([original, Buffer.from("retouched")]));
    const verify = await runCli(["verify", "summer.csv"], { cwd: project });
    expect(verify.code).toBe(2);
    expect(verify.stdout).toMatch(/lamp: image images\/lamp\.png has sha256/);
    const run = await cli(["run", "summer.csv"], project);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(out, "images", "lamp.png")).equals(original)).toBe(true);
    expect(readFileSync(join(out, "superseded", "lamp", "1", "images", "lamp.png")).subarray(-9).toString()).toBe("retouched");
    expect((await runCli(["verify", "summer.csv"], { cwd: project })).code).toBe(0);
  }, 60_000);

  it("an item made anew keeps its earlier image in superseded/<key>/<n>/", async () => {
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const out = join(project, "output", "summer");
    const first = readFileSync(join(out, "images", "mug.png"));
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at dusk"));
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at noon"));
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    expect(readFileSync(join(out, "superseded", "mug", "1", "images", "mug.png")).equals(first)).toBe(true);
    expect(existsSync(join(out, "superseded", "mug", "2", "images", "mug.json"))).toBe(true);
    expect(existsSync(join(out, "superseded", "mug", "2", "thumbs", "mug.webp"))).toBe(true);
    const status = await runCli(["status", "summer.csv"], { cwd: project });
    expect(status.stdout).toMatch(/Superseded/);
    expect(status.stdout).toMatch(/mug/);
    expect(readFileSync(join(out, "index.html"), "utf8")).toMatch(/superseded\/mug\/1\/thumbs\/mug\.webp/);
  }, 60_000);
});

describe("the output folder is a backup of the state", () => {
  it("a deleted database: the next run adopts every image from its sidecar, paying nothing", async () => {
    const { s, project } = await paidProject();
    const out = join(project, "output", "summer");
    const before = imagesOf(snapshot(out));
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(project, "jobs", `summer.sqlite${suffix}`), { force: true });
    // No --provider: the sidecars name pictory.
    const again = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("adopted 3 image(s) from their sidecars");
    expect(s.ledger().jobsCreated).toBe(3);
    expect(imagesOf(snapshot(out))).toEqual(before);
    const providers = readDb(join(project, "jobs", "summer.sqlite"), (db) => db.prepare("SELECT DISTINCT provider FROM items").pluck().all());
    expect(providers).toEqual(["pictory"]);
  }, 60_000);

  it("a garbage database: exit 1 naming rebuild, which restores it and keeps the damaged file", async () => {
    const { s, project } = await paidProject();
    const db = join(project, "jobs", "summer.sqlite");
    for (const suffix of ["-wal", "-shm"]) rmSync(db + suffix, { force: true });
    writeFileSync(db, "this is not a database, it is a shopping list\n".repeat(200));
    const refused = await cli(["run", "summer.csv", "--provider", "pictory"], project, pictoryEnv(s));
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain("imgbatch rebuild summer.csv");
    const rebuilt = await runCli(["rebuild", "summer.csv"], { cwd: project });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/3 image\(s\) adopted as done/);
    expect(readdirSync(join(project, "jobs")).some((name) => name.startsWith("summer.sqlite.damaged-"))).toBe(true);
    const after = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(after.code, after.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
  }, 60_000);

  it("a copy of the images in a new project is adopted only where the sha256 matches", async () => {
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const copy = tempDir();
    writeFileSync(join(copy, "summer.csv"), CSV);
    mkdirSync(join(copy, "output"));
    cpSync(join(project, "output", "summer"), join(copy, "output", "summer"), { recursive: true });
    const lamp = join(copy, "output", "summer", "images", "lamp.png");
    writeFileSync(lamp, Buffer.concat([readFileSync(lamp), Buffer.from("x")]));
    const result = await cli(["run", "summer.csv"], copy);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("adopted 2 image(s)");
    expect(result.stderr).toMatch(/lamp: its image lamp\.png is not the one the sidecar describes/);
  }, 60_000);
});

describe("earlier requests, interrupted adoptions and moves, retry by key", () => {
  it("a request asked for again (A → B → A) brings its paid image back instead of paying again", async () => {
    const { s, project } = await paidProject();
    const out = join(project, "output", "summer");
    const first = readFileSync(join(out, "images", "mug.png"));
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at dusk"));
    expect((await cli(["run", "summer.csv"], project, pictoryEnv(s))).code).toBe(0);
    expect(s.ledger().jobsCreated).toBe(4);
    writeFileSync(join(project, "summer.csv"), CSV);
    const back = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toContain("brought back");
    expect(s.ledger().jobsCreated).toBe(4);
    expect(readFileSync(join(out, "images", "mug.png")).equals(first)).toBe(true);
    // The dusk image is kept in its turn.
    expect(readdirSync(join(out, "superseded", "mug")).length).toBeGreaterThanOrEqual(1);
    expect((await runCli(["verify", "summer.csv"], { cwd: project })).code).toBe(0);
  }, 60_000);

  it("items planned but never adopted (a run killed after its sync) adopt their sidecars on the next run", async () => {
    const { s, project } = await paidProject();
    const db = join(project, "jobs", "summer.sqlite");
    for (const suffix of ["", "-wal", "-shm"]) rmSync(db + suffix, { force: true });
    // What a run killed between its sync and its adoption leaves: the items planned, queued, untried.
    const { SqliteStore: Store } = await import("../src/store/sqlite/sqlite-store.js");
    const { loadManifest, requestHash } = await import("../src/manifest/index.js");
    const manifest = await loadManifest(join(project, "summer.csv"));
    const store = Store.open(db);
    await store.syncManifest(manifest.items.map((item) => ({ item, requestHash: requestHash(item.request, "pictory") })), "pictory", { hashWith: requestHash });
    await store.close();
    const again = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("adopted 3 image(s)");
    expect(s.ledger().jobsCreated).toBe(3);
  }, 60_000);

  it("a move to superseded/ cut short is numbered on its own; a later move never lands on its files", async () => {
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const out = join(project, "output", "summer");
    const first = readFileSync(join(out, "images", "mug.png"));
    // As a kill half-way through a move leaves it: the image in .moving/, the rest still live.
    mkdirSync(join(out, "superseded", "mug", ".moving", "images"), { recursive: true });
    renameSync(join(out, "images", "mug.png"), join(out, "superseded", "mug", ".moving", "images", "mug.png"));
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at dusk"));
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at noon"));
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const sets = readdirSync(join(out, "superseded", "mug")).sort();
    expect(sets).not.toContain(".moving");
    const kept = sets.map((n) => join(out, "superseded", "mug", n, "images", "mug.png")).filter((p) => existsSync(p)).map((p) => readFileSync(p));
    expect(kept.some((bytes) => bytes.equals(first))).toBe(true);
    expect(kept.length).toBe(2); // the first image and the dusk one, each whole
  }, 60_000);

  it("retry --rows takes the item keys status shows, and --items names them", async () => {
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), "id,prompt,style,variants\nmug,A ceramic mug on a wooden desk at dawn,photorealistic,2\n");
    expect((await cli(["run", "summer.csv"], project)).code).toBe(0);
    const db = join(project, "jobs", "summer.sqlite");
    const Database = (await import("better-sqlite3")).default;
    const write = new Database(db);
    write.prepare("UPDATE items SET state = 'failed', error_code = 'X', error_message = 'x'").run();
    write.close();
    const byRows = await cli(["retry", "summer.csv", "--rows", "mug--v1"], project);
    expect(byRows.code, byRows.stderr).toBe(2);
    expect(byRows.stderr).toContain("re-queued 1 failed item(s)");
    const byItems = await cli(["retry", "summer.csv", "--items", "mug--v2,nope"], project);
    expect(byItems.code, byItems.stderr).toBe(0);
    expect(byItems.stderr).toContain("--items: no failed item with key(s) nope");
  }, 60_000);

  it("a request changed while its paid job is still at the service is refused (exit 1), so that job's image is not lost", async () => {
    const s = await startSim();
    s.configure(sameLatencyForAllModels(60_000));
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    const stopped = await cli(["run", "summer.csv", "--provider", "pictory", "--max-runtime", "300ms"], project, pictoryEnv(s));
    expect(stopped.code, stopped.stderr).toBe(3);
    const created = s.ledger().jobsCreated;
    expect(created).toBeGreaterThan(0);
    writeFileSync(join(project, "summer.csv"), CSV.replace("at dawn", "at dusk").replace("dark study", "bright study").replace("terracotta", "blue"));
    const refused = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/changed in the manifest while their paid jobs are still at the service/);
    expect(refused.stderr).toContain("--abandon-in-flight");
    expect(s.ledger().jobsCreated).toBe(created);
    // Put back, the jobs are delivered.
    writeFileSync(join(project, "summer.csv"), CSV);
    s.configure(sameLatencyForAllModels(20));
    s.advance(120_000);
    const delivered = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(delivered.code, delivered.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
  }, 60_000);

  it("retry of an item whose charged job's image never arrived reads that job again: no new job", async () => {
    const s = await startSim();
    s.configure({ rateTruncatedDownload: 1 });
    const project = tempDir();
    writeFileSync(join(project, "summer.csv"), CSV);
    const failed = await cli(["run", "summer.csv", "--provider", "pictory", "--max-attempts", "2"], project, pictoryEnv(s));
    expect(failed.code, failed.stderr).toBe(2);
    expect(s.ledger().jobsCreated).toBe(3);
    s.configure({ rateTruncatedDownload: 0 });
    const retried = await cli(["retry", "summer.csv"], project, pictoryEnv(s));
    expect(retried.code, retried.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
  }, 60_000);

  it("a missing image is asked of its job again on the next run, for free: a service that was only down gives it back", async () => {
    const { s, project } = await paidProject();
    const out = join(project, "output", "summer");
    const before = imagesOf(snapshot(out));
    rmSync(join(out, "images", "mug.png"));
    const down = await cli(["run", "summer.csv"], project, { ...pictoryEnv(s), PICTORY_BASE_URL: "http://127.0.0.1:9/pictoryapis" });
    expect(down.code, down.stderr).toBe(2);
    expect((await runCli(["status", "summer.csv"], { cwd: project })).stdout).toMatch(/missing 1/);
    const back = await cli(["run", "summer.csv"], project, pictoryEnv(s));
    expect(back.code, back.stderr).toBe(0);
    expect(s.ledger().jobsCreated).toBe(3);
    expect(imagesOf(snapshot(out))).toEqual(before);
  }, 60_000);
});
