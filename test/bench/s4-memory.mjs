// Scenario 4: peak RSS of a whole run at N = 100 and N = 20,000, same concurrency, each in
// a fresh process (VmHWM from /proc/self/status at the end of the run).
import Database from "better-sqlite3";
import { round, startSim } from "./lib.mjs";
import { pipelineChild } from "./s3-overhead.mjs";

export const PARAMS = { sizes: [100, 2_000, 20_000], plainNodeSizes: [100, 20_000], concurrency: 50, latencyMs: 0, pollIntervalMs: 0, imagePx: 64 };

/**
 * Highest RSS sampled (every 50 ms) in each phase of the run: start-up (manifest, sync,
 * preflight: up to the first submit), the run (to the last item done) and the end (report).
 */
function lastDoneAtOf(r) {
  const db = new Database(r.dbPath, { readonly: true });
  const lastDoneAt = db.prepare(`SELECT MAX(at) AS at FROM events WHERE to_state = 'done'`).get().at ?? r.endedAt;
  db.close();
  return lastDoneAt;
}

function rssByPhase(r, firstSubmitAt) {
  const lastDoneAt = lastDoneAtOf(r);
  const phases = {};
  for (const [at, rssMiB, heapMiB] of r.rssTrace) {
    const phase = at < (firstSubmitAt ?? Infinity) ? "startUp" : at <= lastDoneAt ? "run" : "end";
    if (!phases[phase] || rssMiB > phases[phase].rssMiB) phases[phase] = { rssMiB, heapUsedMiB: heapMiB };
  }
  return phases;
}

/** RSS sampled just after each of V8's full GCs between the first submit and the last item done: what the run holds, without uncollected garbage. */
function rssAfterFullGcs(r, firstSubmitAt) {
  const lastDoneAt = lastDoneAtOf(r);
  return (r.majorGcAt ?? [])
    .filter((at) => at > (firstSubmitAt ?? Infinity) && at <= lastDoneAt)
    .map((gcAt) => r.rssTrace.find(([at]) => at > gcAt)?.[1])
    .filter((rssMiB) => rssMiB !== undefined);
}

function afterGcsNote(rss) {
  if (rss.length === 0) return "no full GC in the run";
  const [first, second, ...rest] = rss;
  const later = rest.length ? `, then ${Math.min(...rest)}–${Math.max(...rest)}` : "";
  return `just after the run's ${rss.length} full GCs (first submit to last item done): ${[first, second].filter((v) => v !== undefined).join(", ")}${later}`;
}

function phaseNote(phases) {
  const part = (name, label) => (phases[name] ? `${label} ${phases[name].rssMiB}` : null);
  return `highest sample by phase, MiB: ${[part("startUp", "start-up"), part("run", "run"), part("end", "report")].filter(Boolean).join(", ")}`;
}

export async function run({ log }) {
  const p = PARAMS;
  const sim = await startSim({ latencyMs: { "flux-schnell": p.latencyMs } }, { imagePx: p.imagePx });
  try {
    const runs = [];
    for (const n of p.sizes) {
      log(`  pipeline: N=${n} C=${p.concurrency}, zero latency, CSV manifest`);
      const r = await pipelineChild(sim, { n, concurrency: p.concurrency, pollIntervalMs: p.pollIntervalMs, name: `s4-n${n}`, traceRss: true });
      const phases = rssByPhase(r, sim.created[0]);
      log(`    ${(r.wallMs / 1000).toFixed(1)} s, exit ${r.exitCode}, peak RSS ${r.vmHwmMiB.toFixed(1)} MiB; by phase ${JSON.stringify(phases)}`);
      runs.push({ n, exitCode: r.exitCode, wallMs: r.wallMs, peakRssMiB: r.vmHwmMiB, maxRssMiB: r.maxRssMiB, rssAfterImportsMiB: r.rssBeforeMiB, phases, rssAfterFullGcsMiB: rssAfterFullGcs(r, sim.created[0]), majorGcAt: r.majorGcAt });
    }
    // The same without the bin's node flags (src/heap.ts): `node dist/cli.js`, and before them.
    const plain = [];
    for (const n of p.plainNodeSizes) {
      log(`  the same under plain node: N=${n}`);
      const r = await pipelineChild(sim, { n, concurrency: p.concurrency, pollIntervalMs: p.pollIntervalMs, name: `s4-plain-n${n}`, traceRss: true, plainNode: true });
      if (r.exitCode !== 0) throw new Error(`scenario 4, plain node N=${n}: exit ${r.exitCode}: ${r.error ?? ""}`);
      log(`    ${(r.wallMs / 1000).toFixed(1)} s, exit ${r.exitCode}, peak RSS ${r.vmHwmMiB.toFixed(1)} MiB`);
      plain.push({ n, wallMs: r.wallMs, peakRssMiB: r.vmHwmMiB, phases: rssByPhase(r, sim.created[0]) });
    }
    const [small, middle, large] = runs;
    const ratio = large.peakRssMiB / small.peakRssMiB;
    const plainRatio = plain[1].peakRssMiB / plain[0].peakRssMiB;
    const rows = [
      { figure: `peak RSS at N=${small.n}`, value: round(small.peakRssMiB, 0), unit: "MiB", note: `a run of ${(small.wallMs / 1000).toFixed(1)} s` },
      { figure: `peak RSS at N=${middle.n}`, value: round(middle.peakRssMiB, 0), unit: "MiB", note: `a run of ${(middle.wallMs / 1000).toFixed(1)} s` },
      { figure: `peak RSS at N=${large.n}`, value: round(large.peakRssMiB, 0), unit: "MiB", note: `a run of ${(large.wallMs / 1000).toFixed(1)} s; ${phaseNote(large.phases)}; ${afterGcsNote(large.rssAfterFullGcsMiB)}` },
      { figure: `peak RSS N=${large.n} ÷ N=${small.n}`, value: round(ratio), unit: "×", target: "≤ 1.2", pass: ratio <= 1.2 },
      { figure: "  the same under plain `node` (no heap flags)", value: round(plainRatio), unit: "×", note: `${round(plain[1].peakRssMiB, 0)} ÷ ${round(plain[0].peakRssMiB, 0)} MiB; ${phaseNote(plain[1].phases)}` },
    ];
    return {
      params: p,
      rows,
      notes: [
        "Peak RSS is VmHWM of the pipeline's own process at the end of `runCommand`; RSS is also sampled every 50 ms to tell start-up (up to the first submit), run and end (report) apart.",
        "The pipeline runs with the node flags of the bin's launcher (src/heap.ts), as `imgbatch` and `npm start` start it; the plain-`node` runs show the same without them. Under plain `node`, the young generation grows to 16 MiB a half during the manifest's load, and after the full GC that clears start-up's garbage V8 lets the old space grow to about four times what was live (`--trace-gc`: 13.5 → 54 MB) before the next one; a run long enough to get there (N=20,000 at zero latency: about a minute) peaks with that uncollected garbage, a short one (N=100: under a second) never does.",
        "Both kinds of run have a short peak (~30 MiB, under 100 ms) as the first requests arrive: V8 compiling undici's HTTP parser (WebAssembly) with TurboFan on a worker thread (`perf record -e syscalls:sys_enter_mprotect --call-graph dwarf`: `wasm::BackgroundCompileJob` → `Zone::Expand` → malloc).",
      ],
      details: { runs, plainNode: plain },
    };
  } finally {
    await sim.stop();
  }
}
