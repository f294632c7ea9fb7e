// The bin as a user starts it (`imgbatch`, `npm start`, `./dist/cli.js`, cron): through its
// sh launcher, so node runs with heap.ts's flags.
import { spawn } from "node:child_process";
import { accessSync, constants, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { NODE_FLAGS } from "../src/heap.js";
import { CLI } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const EXAMPLE = fileURLToPath(new URL("../manifests/example.yaml", import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string; scripts: Record<string, string> };

function runBin(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, bin = CLI): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // No `node` in front: the kernel reads the first line. The launcher finds `node` on PATH:
    // this one, not whichever another PATH entry holds.
    const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;
    const child = spawn(bin, args, { cwd, env: { PATH, HOME: process.env.HOME, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the imgbatch bin", () => {
  it("is an executable sh launcher that starts node with heap.ts's flags", () => {
    const [first, second] = readFileSync(CLI, "utf8").split("\n", 2);
    expect(first).toBe("#!/bin/sh");
    expect(second).toBe(`":" //; exec /usr/bin/env node ${NODE_FLAGS.join(" ")} "$0" "$@"`);
    expect(() => accessSync(CLI, constants.X_OK)).not.toThrow();
  });

  it("runs the example with those flags in force, collecting once the manifest is synced", async () => {
    const cwd = tempDir();
    copyFileSync(EXAMPLE, join(cwd, "example.yaml"));
    // A preloaded probe (NODE_OPTIONS reaches the node the launcher starts) records what that
    // process was started with, and counts the run's calls of gc (releaseManifestMemory).
    const probe = join(cwd, "probe.cjs");
    const seen = join(cwd, "seen.json");
    writeFileSync(
      probe,
      `const real = globalThis.gc; let calls = 0;
if (real) globalThis.gc = () => { calls++; return real(); };
process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ execArgv: process.execArgv, gc: typeof real, calls })));\n`,
    );
    const run = await runBin(["--quiet", "run", "example.yaml", "--provider", "local"], cwd, { NODE_OPTIONS: `--require "${probe}"` });
    // A flag node does not know ends the process with code 9 before imgbatch starts.
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(readFileSync(seen, "utf8"))).toEqual({ execArgv: [...NODE_FLAGS], gc: "function", calls: 1 });
  }, 60_000);

  it("runs through a symlink in a folder whose name has a space, and passes on imgbatch's exit code", async () => {
    const cwd = tempDir();
    const binDir = join(cwd, "my bin");
    mkdirSync(binDir);
    symlinkSync(CLI, join(binDir, "imgbatch"));
    writeFileSync(join(cwd, "bad.csv"), "id,prompt\nr1,\n");
    const result = await runBin(["validate", "bad.csv"], cwd, {}, join(binDir, "imgbatch"));
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain("bad.csv");
  });

  it("prints the package's version", async () => {
    const result = await runBin(["--version"], tempDir());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(PACKAGE.version);
  });

  it("is what `npm start` runs, so the example gets the same settings", () => {
    expect(PACKAGE.scripts.start?.startsWith("./dist/cli.js ")).toBe(true);
  });
});
