// Issue 13: the packed tarball installed with `npm install -g`, as a user gets imgbatch, finds
// one manifest's state from wherever it is run: one database beside the manifest, each image
// paid once. The install compiles better-sqlite3 from source (about 90 s) and needs the npm
// registry.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { sameLatencyForAllModels } from "./helpers/cleanup.js";
import { useTempDir } from "./helpers/tmp.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const tempDir = useTempDir("imgbatch-global-");
let sim: SimHandle | null = null;
afterEach(async () => {
  await sim?.stop();
  sim = null;
});

const CSV = "id,prompt,style\nmug,A ceramic mug on a wooden desk at dawn,photorealistic\nlamp,A brass desk lamp in a dark study,vintage\nplant,A small cactus in a terracotta pot,minimalist\n";
const ITEMS = 3;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with its output kept for a failure message, never printed. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every file under `dir` whose name ends with `suffix`, relative to `dir`. */
function filesEndingWith(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

beforeAll(async () => {
  // The tarball is packed with --ignore-scripts (no `prepare`): dist/ is built here instead.
  const built = await run("npm", ["run", "build"], { cwd: ROOT, env: process.env, timeoutMs: 120_000 });
  expect(built.code, built.stdout + built.stderr).toBe(0);
}, 120_000);

describe("a global install of the packed tarball", () => {
  it("runs one manifest from three working folders: one database, each item paid once", async () => {
    const install = tempDir();
    const packed = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", install], { cwd: ROOT, env: process.env, timeoutMs: 60_000 });
    expect(packed.code, packed.stderr).toBe(0);
    const [pack] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    expect(pack!.files.map((f) => f.path)).toEqual(expect.arrayContaining(["dist/cli.js", "dist/store/sqlite/sqlite-store.js", "package.json"]));

    const prefix = join(install, "prefix");
    const installed = await run("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", join(install, pack!.filename)], {
      cwd: install,
      env: process.env,
      timeoutMs: 270_000,
    });
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    const imgbatch = join(prefix, "bin", "imgbatch");
    expect(existsSync(imgbatch)).toBe(true);

    sim = await startSimulator({ ...sameLatencyForAllModels(20) });
    const root = tempDir();
    const campaign = join(root, "campaign");
    mkdirSync(campaign);
    const manifest = join(campaign, "summer.csv");
    writeFileSync(manifest, CSV);
    const unrelated = tempDir();
    // Only what a user's shell would give: node on the PATH for the bin's launcher, the key and the service.
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`, HOME: process.env.HOME, PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url };

    for (const [cwd, path] of [[campaign, "summer.csv"], [root, "campaign/summer.csv"], [unrelated, manifest]] as const) {
      const result = await run(imgbatch, ["run", path, "--provider", "pictory", "--poll-interval", "25ms"], { cwd, env, timeoutMs: 60_000 });
      expect(result.code, `from ${cwd}: ${result.stderr}`).toBe(0);
      expect(sim.ledger().jobsCreated, `from ${cwd}`).toBe(ITEMS);
    }

    expect(filesEndingWith(root, ".sqlite")).toEqual([join("campaign", "jobs", "summer.sqlite")]);
    expect(filesEndingWith(unrelated, ".sqlite")).toEqual([]);
    expect(existsSync(join(root, "jobs"))).toBe(false);
    expect(existsSync(join(unrelated, "jobs"))).toBe(false);
    expect(readdirSync(join(campaign, "output", "summer", "images")).filter((f) => f.endsWith(".png")).sort()).toEqual(["lamp.png", "mug.png", "plant.png"]);
  }, 300_000);
});
