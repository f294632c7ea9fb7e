// Child process: one run of the real pipeline (runCommand, in process) against the simulator
// that the parent hosts. Sends back wall time, CPU (whole process and per thread), peak RSS
// and the SQLite commit count, so runs never share a heap, a JIT or an RSS high-water mark.
import { join } from "node:path";
import { benchContext, childInput, childResult, countSqliteCommits, cpuByThread, diffThreads, DIST, peakRssMiB } from "./lib.mjs";

const input = await childInput();
const counter = input.countCommits ? await countSqliteCommits() : null;
const { runCommand } = await import(join(DIST, "commands/run.js"));
const { ctx } = await benchContext({ PICTORY_API_KEY: input.apiKey, PICTORY_BASE_URL: input.simUrl });

globalThis.gc?.();
const rssBefore = peakRssMiB();
const threadsBefore = cpuByThread();
const cpuBefore = process.cpuUsage();
const startedAt = Date.now();
let exitCode;
let error = null;
try {
  exitCode = await runCommand(
    input.manifest,
    {
      provider: "pictory",
      db: input.db,
      out: input.out,
      concurrency: input.concurrency,
      pollIntervalMs: input.pollIntervalMs,
      rpm: input.rpm,
      quiet: true,
      tuning: input.tuning,
    },
    ctx,
  );
} catch (e) {
  error = String(e?.message ?? e);
  exitCode = e?.exitCode ?? -1;
}
const endedAt = Date.now();
const cpu = process.cpuUsage(cpuBefore);
await childResult({
  exitCode,
  error,
  startedAt,
  endedAt,
  wallMs: endedAt - startedAt,
  cpuMs: (cpu.user + cpu.system) / 1000,
  cpuUserMs: cpu.user / 1000,
  cpuSystemMs: cpu.system / 1000,
  threadsMs: diffThreads(cpuByThread(), threadsBefore),
  rssBeforeMiB: rssBefore.vmHwmMiB,
  ...peakRssMiB(),
  sqlite: counter,
});
