// The bin as a user starts it: through its shebang, so the V8 settings of heap.ts apply.
import { spawn } from "node:child_process";
import { accessSync, constants, copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE_FLAGS } from "../src/heap.js";
import { CLI } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const EXAMPLE = new URL("../manifests/example.yaml", import.meta.url).pathname;

function runBin(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // No `node` in front: the kernel reads the shebang, as for `imgbatch` or `npm start`.
    const child = spawn(CLI, args, { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the imgbatch bin", () => {
  it("starts node with heap.ts's flags, and is executable", () => {
    const firstLine = readFileSync(CLI, "utf8").split("\n", 1)[0];
    expect(firstLine).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(" ")}`);
    expect(() => accessSync(CLI, constants.X_OK)).not.toThrow();
  });

  it("runs the example through its shebang (node accepts every flag; gc is there to call)", async () => {
    const cwd = tempDir();
    copyFileSync(EXAMPLE, join(cwd, "example.yaml"));
    const run = await runBin(["--quiet", "run", "example.yaml", "--provider", "local"], cwd);
    // A flag node does not know ends the process with code 9 before imgbatch starts.
    expect(run.code, run.stderr).toBe(0);
  });

  it("prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    const result = await runBin(["--version"], tempDir());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it("is what `npm start` runs, so the example gets the same settings", () => {
    const scripts = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start?.startsWith("./dist/cli.js ")).toBe(true);
  });
});
