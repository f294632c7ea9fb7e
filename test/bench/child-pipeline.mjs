// Child process: one run of the real pipeline (runCommand, in process) against the simulator
// that the parent hosts. Sends back wall time, CPU (whole process and per thread), peak RSS
// and the SQLite commit count, so runs never share a heap, a JIT or an RSS high-water mark.
import { join } from "node:path";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { applyWhatIf, benchContext, childInput, childResult, childrenCpuMs, countSqliteCommits, cpuByThread, diffThreads, DIST, peakRssMiB } from "./lib.mjs";

const input = await childInput();
const counter = input.countCommits ? await countSqliteCommits() : null;
if (input.whatIf?.length) await applyWhatIf(input.whatIf);
const { runCommand } = await import(join(DIST, "commands/run.js"));
const { ctx } = await benchContext({ PICTORY_API_KEY: input.apiKey, PICTORY_BASE_URL: input.simUrl, IMGBATCH_FSYNC_EACH_FILE: input.fsyncEachFile ? "1" : undefined });

const rssBefore = peakRssMiB();
// RSS every 50 ms when asked, to tell which phase holds the peak (load, sync, run, report).
const rssTrace = [];
const tracer = input.traceRss
  ? setInterval(() => { const m = process.memoryUsage(); rssTrace.push([Date.now(), Math.round(m.rss / 2 ** 20), Math.round(m.heapUsed / 2 ** 20), Math.round(m.heapTotal / 2 ** 20), Math.round(m.external / 2 ** 20), Math.round(m.arrayBuffers / 2 ** 20)]); }, 50)
  : null;
// When V8 ran a full (mark-compact) GC: RSS after the run's first one shows what the run
// holds, apart from garbage V8 had not yet collected.
const majorGcAt = [];
const gcWatch = input.traceRss
  ? new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcAt.push(Math.round(performance.timeOrigin + entry.startTime + entry.duration));
    })
  : null;
gcWatch?.observe({ entryTypes: ["gc"] });
const threadsBefore = cpuByThread();
const childrenBefore = childrenCpuMs();
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
      maxRuntimeMs: input.maxRuntimeMs,
      quiet: true,
      tuning: input.tuning,
      listen: input.listen,
      publicUrl: input.publicUrl,
    },
    ctx,
  );
} catch (e) {
  error = String(e?.message ?? e);
  exitCode = e?.exitCode ?? -1;
}
const endedAt = Date.now();
if (tracer) clearInterval(tracer);
// GC entries reach the observer on a later turn: let the last ones arrive before disconnecting.
if (gcWatch) await new Promise((resolve) => setImmediate(resolve));
gcWatch?.disconnect();
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
  childrenCpuMs: childrenCpuMs() - childrenBefore,
  threadsMs: diffThreads(cpuByThread(), threadsBefore),
  rssBeforeMiB: rssBefore.vmHwmMiB,
  ...peakRssMiB(),
  sqlite: counter,
  rssTrace: input.traceRss ? rssTrace : undefined,
  majorGcAt: input.traceRss ? majorGcAt : undefined,
});
