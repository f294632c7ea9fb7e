// A manifest of 10^7 items is refused by the built CLI's `validate` within bounds set against
// the same command on a one-item manifest (no wall-clock thresholds): the peak RSS of the YAML
// read on top (under 100 MB in all), and about the same CPU. Each child reports its own peak
// RSS and CPU through test/bench/peak-usage.mjs. `node test/bench/manifest-cap.mjs` prints the
// wall time as well. Needs `npm run build` first.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs helper shared with the benchmark
import { writeHugeManifest, writeTinyManifest } from "./bench/huge-manifest.mjs";
import { writeFileSync } from "node:fs";
import { CLI, runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const PRELOAD = fileURLToPath(new URL("./bench/peak-usage.mjs", import.meta.url));

interface Usage {
  code: number;
  peakRssKiB: number;
  cpuMs: number;
  stderr: string;
}

function validate(dir: string, file: string): Usage {
  const usageFile = join(dir, `${file}.usage.json`);
  const result = spawnSync(process.execPath, ["--import", PRELOAD, CLI, "validate", file, "--log-format", "text"], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, IMGBATCH_USAGE_FILE: usageFile },
    encoding: "utf8",
  });
  return { ...(JSON.parse(readFileSync(usageFile, "utf8")) as Omit<Usage, "stderr">), stderr: result.stderr };
}

describe("validate on a manifest of 10^7 items", () => {
  it("refuses it with the count per row, biggest first, in about the memory and CPU of a one-item manifest", () => {
    const dir = tempDir();
    writeHugeManifest(join(dir, "huge.yaml"));
    writeTinyManifest(join(dir, "tiny.yaml"));
    // Twice each, the lower figure kept: a shared machine's noise only ever adds.
    const tiny = [validate(dir, "tiny.yaml"), validate(dir, "tiny.yaml")];
    const huge = [validate(dir, "huge.yaml"), validate(dir, "huge.yaml")];
    expect(tiny[0]!.code, tiny[0]!.stderr).toBe(0);
    expect(huge[0]!.code).toBe(1);
    const rows = huge[0]!.stderr.split("\n").map((l) => l.trim());
    expect(rows.find((l) => l.includes("expands to"))).toMatch(/^huge\.yaml line 5, rows\[0\]: the manifest expands to 10,000,000 items, more than the 10,000 allowed/);
    expect(rows.filter((l) => /^rows\[\d\] "grid/.test(l))).toEqual([
      'rows[0] "grid-a" (line 5): 5,000,000 (colour 1,000 × surface 50 × variants 100)',
      'rows[1] "grid-b" (line 11): 4,000,000 (colour 1,000 × surface 40 × variants 100)',
      'rows[2] "grid-c" (line 17): 1,000,000 (colour 1,000 × surface 10 × variants 100)',
    ]);
    const least = (runs: Usage[], key: "peakRssKiB" | "cpuMs") => Math.min(...runs.map((r) => r[key]));
    const rssMiB = least(huge, "peakRssKiB") / 1024;
    const baselineMiB = least(tiny, "peakRssKiB") / 1024;
    expect(rssMiB).toBeLessThan(100);
    // Nothing is expanded (10^7 items would be gigabytes): reading the rows' 3,100 values as
    // YAML costs about 13 MB (measured), whatever the number of items they multiply to.
    expect(rssMiB - baselineMiB).toBeLessThan(32);
    // One multiplication per row, not 10^7 items (tens of seconds of CPU): the CPU of start-up
    // and one small file, plus the parse of the rows' values.
    expect(least(huge, "cpuMs")).toBeLessThan(least(tiny, "cpuMs") * 2 + 300);
  }, 60_000);
});

describe("--max-items", () => {
  it("raises the cap of validate and run, and is checked itself", async () => {
    const dir = tempDir();
    // 150 × 100 = 15,000 items in one row.
    const values = (p: string, n: number) => `[${Array.from({ length: n }, (_, i) => `${p}${i}`).join(", ")}]`;
    writeFileSync(join(dir, "wide.yaml"), ["rows:", "  - id: w", '    prompt: "Aurora Pro earbuds, {{a}} {{b}}"', "    matrix:", `      a: ${values("a", 150)}`, `      b: ${values("b", 100)}`, ""].join("\n"));
    const refused = await runCli(["validate", "wide.yaml", "--log-format", "text"], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the manifest expands to 15,000 items, more than the 10,000 allowed/);
    const raised = await runCli(["validate", "wide.yaml", "--max-items", "20000"], { cwd: dir });
    expect(raised.code, raised.stderr).toBe(0);
    expect(raised.stdout).toMatch(/15000 item\(s\)/);
    const run = await runCli(["run", "wide.yaml", "--max-items", "14999", "--log-format", "text"], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/more than the 14,999 allowed/);
    const bad = await runCli(["validate", "wide.yaml", "--max-items", "0", "--log-format", "text"], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--max-items: "0" must be a whole number from 1 to 1000000/);
  }, 60_000);
});
