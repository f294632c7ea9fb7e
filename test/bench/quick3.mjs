// Diagnosis: scenario 3's pipeline at a smaller N, for several builds side by side, alternated.
//   node test/bench/quick3.mjs N ROUNDS distA [distB …]   (IMGBATCH_PROFILE_DIR: a --cpu-prof per run)
import { join } from "node:path";
import { binNodeFlags, round, runChild, scratch, startSim, writeCsvManifest } from "./lib.mjs";

const [nArg, roundsArg, ...dists] = process.argv.slice(2);
const n = Number(nArg);
const sim = await startSim({ latencyMs: { "flux-schnell": 0 } }, { imagePx: 64 });
const profDir = process.env.IMGBATCH_PROFILE_DIR;
try {
  const by = new Map();
  for (let r = 0; r < Number(roundsArg); r++) {
    for (const dist of dists) {
      const dir = scratch("quick3");
      const manifest = writeCsvManifest(dir, n);
      sim.reset();
      const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${dist.replace(/\W+/g, "_")}-${r}.cpuprofile`] : [];
      const res = await runChild("child-pipeline.mjs", { manifest, db: join(dir, "state.sqlite"), out: join(dir, "out"), concurrency: 50, pollIntervalMs: 0, apiKey: sim.apiKey, simUrl: sim.url }, { execArgv: [...binNodeFlags(), ...prof], env: { ...process.env, IMGBATCH_DIST: dist } });
      const ms = (res.cpuMs + (res.childrenCpuMs ?? 0)) / n;
      (by.get(dist) ?? by.set(dist, []).get(dist)).push(ms);
      console.log(`${dist.padEnd(24)} ${round(ms)} ms CPU/item, main ${round((res.threadsMs.main ?? 0) / n)}, ${round(n / (res.wallMs / 1000), 0)} items/s exit ${res.exitCode}`);
    }
  }
  for (const [dist, v] of by) { v.sort((a, b) => a - b); console.log(`median ${dist}: ${round(v[Math.floor(v.length / 2)])}`); }
} finally {
  await sim.stop();
}
