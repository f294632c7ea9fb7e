// Diagnosis, not part of `npm run bench`: re-runs a scenario's pipeline with patches that
// approximate a proposed change to src/ from outside (lib.mjs applyWhatIf), to estimate its
// effect before anyone changes the code. Each line is one fresh child process.
//   node test/bench/what-if.mjs overhead [N]   scenario 3's run without any fsync (SQLite, folders)
//   node test/bench/what-if.mjs faults [N]     scenario 2: listing walks capped at 60 items
import { join } from "node:path";
import { maxInWindow, round, runChild, scratch, startSim, writeCsvManifest } from "./lib.mjs";
import { pipelineRun } from "./s1-makespan.mjs";
import { PARAMS as S2 } from "./s2-faults.mjs";

const [mode = "overhead", nArg] = process.argv.slice(2);

async function overhead(n) {
  const variants = [[], ["sqlite-normal"], ["no-dir-fsync"], ["sqlite-normal", "no-dir-fsync"], []];
  const sim = await startSim({ latencyMs: { "flux-schnell": 0 } });
  try {
    console.log(`scenario 3 at N=${n}, C=50, zero latency, 64×64 PNG`);
    for (const whatIf of variants) {
      const dir = scratch("what-if");
      const manifest = writeCsvManifest(dir, n);
      sim.reset();
      const r = await runChild("child-pipeline.mjs", { manifest, db: join(dir, "state.sqlite"), out: join(dir, "out"), concurrency: 50, pollIntervalMs: 0, apiKey: sim.apiKey, simUrl: sim.url, whatIf });
      console.log(`${(whatIf.join(" + ") || "as is").padEnd(50)} ${round(r.cpuMs / n)} ms CPU/item (main thread ${round((r.threadsMs.main ?? 0) / n)}), ${round(n / (r.wallMs / 1000), 0)} items/s`);
    }
  } finally {
    await sim.stop();
  }
}

async function faults(n) {
  const sim = await startSim({ latencyMs: { "flux-schnell": S2.latencyMs }, ...S2.faults });
  try {
    const ideal = Math.ceil(n / S2.concurrency) * S2.latencyMs;
    for (const whatIf of [[], ["short-listings"]]) {
      const r = await pipelineRun(sim, { ...S2, n, maxRuntimeMs: Math.round(S2.capTimesIdeal * ideal), whatIf, name: "what-if" });
      const times = [...sim.apiTimes].sort((a, b) => a - b);
      const listings = (r.requests.routes["GET /v1/jobs"] ?? 0) + (r.requests.routes["GET /v1/aistudio/images"] ?? 0);
      console.log(
        `${(whatIf.join(" + ") || "as is").padEnd(52)} N=${n}: ${r.states.done ?? 0} done in ${round(r.wallMs / 1000, 1)} s (${round(r.ratio)}× ideal), ` +
          `${listings} listing requests, busiest second ${maxInWindow(times, 1_000)} (--rpm ${S2.rpm} = ${S2.rpm / 60}/s)`,
      );
    }
  } finally {
    await sim.stop();
  }
}

const runs = { overhead: [overhead, 3_000], faults: [faults, 2_000] };
if (!runs[mode]) throw new Error(`usage: node test/bench/what-if.mjs overhead|faults [N]`);
const [fn, n] = runs[mode];
await fn(Number(nArg ?? n));
