// Diagnosis, not part of `npm run bench`: re-runs a scenario's pipeline with patches that
// approximate a proposed change to src/ from outside (lib.mjs applyWhatIf), to estimate its
// effect before anyone changes the code. Each line is one fresh child process.
//   node test/bench/what-if.mjs overhead [N]   scenario 3's run without SQLite fsyncs, without file fsyncs, without both
import { join } from "node:path";
import { binNodeFlags, removeEarlierScratch, round, runChild, scratch, startSim, writeCsvManifest } from "./lib.mjs";

const [mode = "overhead", nArg] = process.argv.slice(2);

async function overhead(n) {
  const variants = [[], ["sqlite-normal"], ["no-file-fsync"], ["sqlite-normal", "no-file-fsync"], []];
  const sim = await startSim({ latencyMs: { "flux-schnell": 0 } });
  try {
    console.log(`scenario 3 at N=${n}, C=50, zero latency, 64×64 PNG`);
    for (const whatIf of variants) {
      const dir = scratch("what-if");
      const manifest = writeCsvManifest(dir, n);
      sim.reset();
      const r = await runChild("child-pipeline.mjs", { manifest, db: join(dir, "state.sqlite"), out: join(dir, "out"), concurrency: 50, pollIntervalMs: 0, apiKey: sim.apiKey, simUrl: sim.url, whatIf }, { execArgv: binNodeFlags() });
      console.log(`${(whatIf.join(" + ") || "as is").padEnd(50)} ${round(r.cpuMs / n)} ms CPU/item (main thread ${round((r.threadsMs.main ?? 0) / n)}), ${round(n / (r.wallMs / 1000), 0)} items/s`);
    }
  } finally {
    await sim.stop();
  }
}

const runs = { overhead: [overhead, 3_000] };
if (!runs[mode]) throw new Error(`usage: node test/bench/what-if.mjs overhead [N]`);
const [fn, n] = runs[mode];
await fn(Number(nArg ?? n));
removeEarlierScratch();
