// What a person sees while a run works: the live line in a terminal, JSON lines elsewhere.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDuration, formatProgress, startProgress } from "../src/commands/progress.js";
import type { Logger } from "../src/log.js";
import type { TransitionEvent } from "../src/runner/runner.js";
import { Terminal, prettyLogLine } from "../src/report/terminal.js";
import { ITEM_STATES } from "../src/store/states.js";
import type { StateCounts, Store } from "../src/store/port.js";
import type { ItemRecord } from "../src/store/types.js";
import { CLI } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

describe("formatProgress", () => {
  it("shows done/total, states, rate, ETA, credits and the last failure", async () => {
    const line = formatProgress({
      counts: { queued: 10, submitting: 1, running: 3, downloading: 1, done: 20, failed: 2, missing: 0 },
      total: 37,
      doneThisRun: 20,
      elapsedMs: 120_000,
      credits: 12.6,
      lastFailure: "hero--v2: CONTENT_POLICY_VIOLATION rejected",
      ended: false,
    });
    expect(line).toBe(
      "20/37 done · 10 queued · 1 submitting · 3 running · 1 downloading · 2 failed · 10.0/min · ETA 1m30s · 12.6 credits · last failure: hero--v2: CONTENT_POLICY_VIOLATION rejected",
    );
  });

  const counts = (some: Partial<StateCounts>): StateCounts => ({ ...(Object.fromEntries(ITEM_STATES.map((s) => [s, 0])) as StateCounts), ...some });
  const figures = { total: 13, elapsedMs: 60_000, credits: 0, lastFailure: null, ended: false };

  it("a stopped run's summary has its rate but no ETA", async () => {
    const stopped = { ...figures, counts: counts({ queued: 8, done: 5 }), doneThisRun: 5, credits: 3, ended: true };
    expect(formatProgress(stopped)).toBe("5/13 done · 8 queued · 5.0/min · 3 credits");
    expect(formatProgress({ ...stopped, ended: false })).toBe("5/13 done · 8 queued · 5.0/min · ETA 1m36s · 3 credits");
  });

  it("a run that made nothing shows no rate (no 0.0/min) and no ETA", async () => {
    expect(formatProgress({ ...figures, counts: counts({ queued: 13 }), doneThisRun: 0, ended: true })).toBe("0/13 done · 13 queued · 0 credits");
    expect(formatProgress({ ...figures, counts: counts({ queued: 9, running: 4 }), doneThisRun: 0 })).toBe("0/13 done · 9 queued · 4 running · 0 credits");
  });

  it("rounds credits to the hundredth", async () => {
    const sum = Array.from({ length: 13 }, () => 0.6).reduce((a, b) => a + b, 0);
    expect(formatProgress({ ...figures, counts: counts({ done: 13 }), doneThisRun: 13, credits: sum, ended: true })).toBe("13/13 done · 13.0/min · 7.8 credits");
  });

  it("a stopped run's last log line: no ETA, credits rounded in the text and in the JSON", async () => {
    let stateCounts = counts({ queued: 13 });
    const logged: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = { info: (obj: Record<string, unknown>, msg: string) => logged.push({ obj, msg }) } as unknown as Logger;
    const clock = { t: 0 };
    const progress = await startProgress({ store: { counts: async () => stateCounts } as unknown as Store, logger, terminal: null, quiet: false, now: () => clock.t });
    for (let i = 0; i < 3; i++) {
      const item = { key: `k${i}`, credits: 0.6 } as ItemRecord;
      for (const [from, to] of [["queued", "submitting"], ["submitting", "running"], ["running", "downloading"], ["downloading", "done"]] as const) progress.onTransition({ item, from, to, detail: null } as TransitionEvent);
    }
    clock.t = 60_000;
    stateCounts = counts({ queued: 10, done: 3 });
    await progress.finalLine({ stopReason: "signal", fatal: null, creditsThisRun: 0.6 + 0.6 + 0.6, doneThisRun: 3, failedThisRun: 0 });
    progress.stop();
    expect(logged.at(-1)!.msg).toBe("stopped (signal): 3/13 done · 10 queued · 3.0/min · 1.8 credits");
    expect(logged.at(-1)!.obj.summary).toMatchObject({ credits: 1.8, doneThisRun: 3, ended: true });
  });

  it.each([
    [4_000, "4s"],
    [61_000, "1m01s"],
    [3_725_000, "1h02m"],
  ])("formats %i ms as %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe("Terminal", () => {
  it("prints log lines above the status line, never inside it", async () => {
    const writes: string[] = [];
    const fake = { columns: 60, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const terminal = new Terminal(fake);
    terminal.setStatus("3/10 done");
    terminal.printLine("a log line");
    expect(writes).toEqual(["\r\x1b[2K3/10 done", "\r\x1b[2Ka log line\n3/10 done"]);
    terminal.setStatus("x".repeat(100));
    expect(writes.at(-1)!.length).toBeLessThanOrEqual("\r\x1b[2K".length + 59);
  });

  it("turns pino JSON into a short human line", async () => {
    const line = prettyLogLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 5), msg: "provider throttled" }));
    expect(line).toMatch(/\d\d:\d\d:\d\d.*warn.*provider throttled/);
  });
});

describe("in a real terminal", () => {
  it("redraws one status line in place and prints no JSON", async () => {
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
