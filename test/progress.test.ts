// What a person sees while a run works: the live line in a terminal, JSON lines elsewhere.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDuration, formatProgress } from "../src/commands/progress.js";
import { Terminal, prettyLogLine } from "../src/report/terminal.js";
import { CLI } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

describe("formatProgress", () => {
  it("shows done/total, states, rate, ETA, credits and the last failure", () => {
    const line = formatProgress({
      counts: { queued: 10, submitting: 1, running: 3, downloading: 1, done: 20, failed: 2 },
      total: 37,
      doneThisRun: 20,
      elapsedMs: 120_000,
      credits: 12.6,
      lastFailure: "hero--v2: CONTENT_POLICY_VIOLATION rejected",
    });
    expect(line).toBe(
      "20/37 done · 10 queued · 1 submitting · 3 running · 1 downloading · 2 failed · 10.0/min · ETA 1m30s · 12.6 credits · last failure: hero--v2: CONTENT_POLICY_VIOLATION rejected",
    );
  });

  it.each([
    [4_000, "4s"],
    [61_000, "1m01s"],
    [3_725_000, "1h02m"],
  ])("formats %i ms as %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe("Terminal", () => {
  it("prints log lines above the status line, never inside it", () => {
    const writes: string[] = [];
    const fake = { columns: 60, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const terminal = new Terminal(fake);
    terminal.setStatus("3/10 done");
    terminal.printLine("a log line");
    expect(writes).toEqual(["\r\x1b[2K3/10 done", "\r\x1b[2Ka log line\n3/10 done"]);
    terminal.setStatus("x".repeat(100));
    expect(writes.at(-1)!.length).toBeLessThanOrEqual("\r\x1b[2K".length + 59);
  });

  it("turns pino JSON into a short human line", () => {
    const line = prettyLogLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 5), msg: "provider throttled" }));
    expect(line).toMatch(/\d\d:\d\d:\d\d.*warn.*provider throttled/);
  });
});

describe("in a real terminal", () => {
  it("redraws one status line in place and prints no JSON", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "m.yaml"), "name: m\nprovider: local\nrows:\n  - id: a\n    prompt: A calm lake at dawn\n    variants: 6\n");
    // `script` gives the CLI a pseudo-terminal, as a person's shell would.
    const result = spawnSync("script", ["-qefc", `${process.execPath} ${CLI} run m.yaml`, "/dev/null"], { cwd, encoding: "utf8", timeout: 60_000 });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    const screen = result.stdout;
    expect(screen).toContain("\r\x1b[2K");
    expect(screen).toMatch(/\d+\/6 done/);
    expect(screen).toMatch(/finished: 6\/6 done/);
    expect(screen).not.toMatch(/^\{"level"/m);
  }, 60_000);
});
