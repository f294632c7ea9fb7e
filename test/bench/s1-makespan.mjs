// Scenario 1: makespan vs the ideal ceil(N/C)·L, with fixed job latency, side by side with
// the sequential loop of Pictory's guide and a plain p-limit loop.
import { join } from "node:path";
import Database from "better-sqlite3";
import { binNodeFlags, mean, round, runChild, scratch, startSim, writeCsvManifest } from "./lib.mjs";

export const PARAMS = {
  n: 2_000,
  concurrency: 50,
  latencyMs: 1_000,
  pollIntervalMs: 1_000,
  /** Items of the sequential baseline actually run; its makespan is extrapolated to N. */
  sequentialSample: 10,
  /** Shorter pipeline runs with the interval far from the latency: 4× shorter, and 5× longer (like the 10 s default for a 2 s model). */
  otherIntervals: [
    { n: 500, pollIntervalMs: 250 },
    { n: 500, pollIntervalMs: 5_000 },
  ],
  imagePx: 64,
  /** Backoffs and the 429 fallback scaled down like the latency (defaults 1 s, 60 s, 5 s). */
  tuning: { backoffBaseMs: 100, backoffCapMs: 6_000, throttleFallbackMs: 500 },
};

/** Detection delay of each job: when the client saw it completed minus when the service completed it. */
function delays(sim, seen) {
  return seen.map(({ jobId, detectedAt }) => detectedAt - sim.state.job(sim.apiKey, jobId).completesAt);
}

function pipelineSeen(dbPath) {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT i.job_id AS jobId, e.at AS detectedAt FROM events e JOIN items i ON i.id = e.item_id
         WHERE e.from_state = 'running' AND e.to_state = 'downloading'`,
      )
      .all();
  } finally {
    db.close();
  }
}

function requestsPerItem(sim, n) {
  const routes = sim.ledger().requestsByRoute;
  const submits = routes["POST /v1/aistudio/images"] ?? 0;
  const polls = routes["GET /v1/jobs/:id"] ?? 0;
  const api = Object.entries(routes).filter(([route]) => !route.includes("/files")).reduce((sum, [, count]) => sum + count, 0);
  return { submits, polls, perItem: (submits + polls) / n, apiPerItem: api / n, routes };
}

function stateCounts(dbPath) {
  const db = new Database(dbPath, { readonly: true });
  try {
    return Object.fromEntries(db.prepare(`SELECT state, COUNT(*) AS n FROM items GROUP BY state`).all().map((r) => [r.state, r.n]));
  } finally {
    db.close();
  }
}

export async function pipelineRun(sim, { n, concurrency, latencyMs, pollIntervalMs, rpm, tuning, maxRuntimeMs, whatIf, name, listen, publicUrl }) {
  const dir = scratch(name);
  const manifest = writeCsvManifest(dir, n);
  const dbPath = join(dir, "state.sqlite");
  sim.reset();
  const result = await runChild("child-pipeline.mjs", {
    manifest,
    db: dbPath,
    out: join(dir, "out"),
    concurrency,
    pollIntervalMs,
    rpm,
    tuning,
    maxRuntimeMs,
    whatIf,
    listen,
    publicUrl,
    apiKey: sim.apiKey,
    simUrl: sim.url,
    countCommits: true,
  }, { execArgv: binNodeFlags() });
  const ideal = Math.ceil(n / concurrency) * latencyMs;
  const d = delays(sim, pipelineSeen(dbPath));
  return { ...result, ideal, ratio: result.wallMs / ideal, requests: requestsPerItem(sim, n), meanDelayMs: mean(d), ledger: sim.ledger(), states: stateCounts(dbPath) };
}

async function baselineRun(sim, { mode, n, concurrency, pollIntervalMs, name }) {
  const dir = scratch(name);
  sim.reset();
  const items = Array.from({ length: n }, (_, i) => ({ key: `r${i}`, prompt: `Poster number ${i} of a quiet harbour town at dusk`, model: "flux-schnell" }));
  const result = await runChild("child-baseline.mjs", { mode, items, concurrency, pollIntervalMs, out: join(dir, "out"), apiKey: sim.apiKey, simUrl: sim.url });
  return { ...result, requests: requestsPerItem(sim, n), meanDelayMs: mean(delays(sim, result.seen)), seen: undefined };
}

export async function run({ log }) {
  const p = PARAMS;
  const sim = await startSim({ latencyMs: { "flux-schnell": p.latencyMs } }, { imagePx: p.imagePx });
  try {
    const ideal = Math.ceil(p.n / p.concurrency) * p.latencyMs;
    log(`  pipeline: N=${p.n} C=${p.concurrency} L=${p.latencyMs} ms --poll-interval ${p.pollIntervalMs}ms (ideal ${ideal / 1000} s)`);
    const pipeline = await pipelineRun(sim, { ...p, name: "s1-pipeline" });
    log(`    ${(pipeline.wallMs / 1000).toFixed(1)} s, exit ${pipeline.exitCode}`);
    log(`  baseline p-limit(${p.concurrency}), fixed ${p.pollIntervalMs} ms polling, no checkpoints`);
    const plimit = await baselineRun(sim, { mode: "p-limit", n: p.n, concurrency: p.concurrency, pollIntervalMs: p.pollIntervalMs, name: "s1-plimit" });
    log(`    ${(plimit.wallMs / 1000).toFixed(1)} s`);
    log(`  baseline sequential (Pictory guide loop), ${p.sequentialSample} items, extrapolated to ${p.n}`);
    const sequential = await baselineRun(sim, { mode: "sequential", n: p.sequentialSample, concurrency: 1, pollIntervalMs: p.pollIntervalMs, name: "s1-sequential" });
    const sequentialMakespan = (sequential.wallMs / p.sequentialSample) * p.n;
    log(`    ${(sequential.wallMs / 1000).toFixed(1)} s for ${p.sequentialSample} → ~${Math.round(sequentialMakespan / 1000)} s for ${p.n}`);
    const others = [];
    for (const o of p.otherIntervals) {
      log(`  pipeline: N=${o.n} --poll-interval ${o.pollIntervalMs}ms (${o.pollIntervalMs / p.latencyMs}× L)`);
      const r = await pipelineRun(sim, { ...p, n: o.n, pollIntervalMs: o.pollIntervalMs, name: `s1-pipeline-p${o.pollIntervalMs}` });
      log(`    ${(r.wallMs / 1000).toFixed(1)} s, exit ${r.exitCode}`);
      others.push({ ...o, r });
    }
    const L = p.latencyMs;
    const rows = [
      { figure: "pipeline makespan ÷ ideal", value: round(pipeline.ratio), unit: "×", target: "≤ 1.10", pass: pipeline.ratio <= 1.1 },
      { figure: "pipeline requests per item (submits + polls)", value: round(pipeline.requests.perItem), target: "≤ 3", pass: pipeline.requests.perItem <= 3 },
      { figure: "pipeline mean completion→detection delay", value: round(pipeline.meanDelayMs / L), unit: "× L", note: `${Math.round(pipeline.meanDelayMs)} ms` },
      { figure: "p-limit loop makespan ÷ ideal", value: round(plimit.wallMs / ideal), unit: "×", note: `${round(plimit.requests.perItem)} req/item, delay ${Math.round(plimit.meanDelayMs)} ms` },
      {
        figure: "sequential guide loop makespan ÷ ideal",
        value: round(sequentialMakespan / ideal, 1),
        unit: "×",
        note: `extrapolated from ${p.sequentialSample} items; ${round(sequential.requests.perItem)} req/item, delay ${Math.round(sequential.meanDelayMs)} ms`,
      },
      { figure: "pipeline makespan ÷ p-limit loop makespan", value: round(pipeline.wallMs / plimit.wallMs), unit: "×" },
      ...others.map(({ n, pollIntervalMs, r }) => ({
        figure: `pipeline at --poll-interval ${pollIntervalMs}ms (N=${n}) makespan ÷ ideal`,
        value: round(r.ratio),
        unit: "×",
        note: `${round(r.requests.perItem)} req/item, delay ${Math.round(r.meanDelayMs)} ms`,
      })),
    ];
    return {
      params: { ...p, idealMs: ideal },
      rows,
      notes: [
        "Ideal = ceil(N/C)·L. Requests per item = (POST /v1/aistudio/images + GET /v1/jobs/{id}) seen by the simulator ÷ N. Detection delay = the running→downloading event in the database (baselines: when the read that saw `completed` returned) minus the job's completion time in the simulator.",
        "Baselines use fetch and write the image as downloaded; the sequential loop runs 10 items and is extrapolated to N.",
      ],
      details: {
        pipeline: summarize(pipeline),
        plimit: { wallMs: plimit.wallMs, cpuMs: plimit.cpuMs, requests: plimit.requests, meanDelayMs: plimit.meanDelayMs },
        sequential: { sampleWallMs: sequential.wallMs, extrapolatedMs: sequentialMakespan, requests: sequential.requests, meanDelayMs: sequential.meanDelayMs },
        otherIntervals: others.map(({ n, pollIntervalMs, r }) => ({ n, pollIntervalMs, ...summarize(r) })),
      },
    };
  } finally {
    await sim.stop();
  }
}

export function summarize(r) {
  return {
    exitCode: r.exitCode,
    error: r.error,
    wallMs: r.wallMs,
    idealMs: r.ideal,
    ratio: r.ratio,
    cpuMs: r.cpuMs,
    threadsMs: r.threadsMs,
    sqlite: r.sqlite,
    requests: r.requests,
    meanDelayMs: r.meanDelayMs,
    maxInFlight: r.ledger.maxInFlight,
    requestsPerMinuteMax: r.ledger.requestsPerMinuteMax,
    faultsInjected: r.ledger.faultsInjected,
    jobsCreated: r.ledger.jobsCreated,
    states: r.states,
  };
}
