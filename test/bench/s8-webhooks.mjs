// Scenario 7: scenario 1's run with `--listen` (issue 19): the simulator POSTs each finished
// job to the pipeline's receiver, which reads that job at once. Side by side with polling alone:
// completion→detection delay and requests per item when every webhook arrives, and the makespan
// when a fifth of them are lost (those items are found by the slower polling underneath).
import { createServer } from "node:net";
import { mean, round, startSim } from "./lib.mjs";
import { PARAMS as S1, pipelineRun, summarize } from "./s1-makespan.mjs";

export const PARAMS = {
  n: S1.n,
  concurrency: S1.concurrency,
  latencyMs: S1.latencyMs,
  pollIntervalMs: S1.pollIntervalMs,
  imagePx: S1.imagePx,
  tuning: S1.tuning,
  /** The share of webhooks the simulator drops in the third run of a round. */
  lostShare: 0.2,
  /** Rounds of (polling, --listen, --listen with losses), alternated so a slow minute of a shared machine hits all three. */
  rounds: 2,
};

/** A loopback port free a moment ago, for the child's receiver (the public URL must name it). */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The middle value, or the mean of the two middle ones. */
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)];
};

export async function run({ log }) {
  const p = PARAMS;
  const sim = await startSim({ latencyMs: { "flux-schnell": p.latencyMs } }, { imagePx: p.imagePx });
  const runs = { polling: [], listen: [], lost: [] };
  try {
    const ideal = Math.ceil(p.n / p.concurrency) * p.latencyMs;
    for (let round_ = 1; round_ <= p.rounds; round_++) {
      for (const kind of ["polling", "listen", "lost"]) {
        sim.configure({ rateWebhookDrop: kind === "lost" ? p.lostShare : 0 });
        const port = kind === "polling" ? null : await freePort();
        const listen = port === null ? {} : { listen: { host: "127.0.0.1", port }, publicUrl: `http://127.0.0.1:${port}/hooks` };
        log(`  round ${round_}: ${kind === "polling" ? "polling alone" : kind === "listen" ? "--listen, every webhook arrives" : `--listen, ${p.lostShare * 100} % of webhooks lost`}: N=${p.n} C=${p.concurrency} L=${p.latencyMs} ms --poll-interval ${p.pollIntervalMs}ms`);
        // The simulator's webhook counts run on across resets: this run's are the difference.
        const before = sim.ledger();
        const r = await pipelineRun(sim, { ...p, ...listen, name: `s7-${kind}-${round_}` });
        const reads = r.requests.polls / p.n;
        const webhooks = { sent: r.ledger.webhooksSent - before.webhooksSent, dropped: r.ledger.webhooksDropped - before.webhooksDropped, failed: r.ledger.webhooksFailed - before.webhooksFailed };
        log(`    ${(r.wallMs / 1000).toFixed(1)} s (${round(r.wallMs / ideal)} × ideal), exit ${r.exitCode}, ${round(r.requests.perItem)} requests/item (${round(reads)} reads), delay ${Math.round(r.meanDelayMs)} ms; webhooks sent ${webhooks.sent}, dropped ${webhooks.dropped}, failed ${webhooks.failed}`);
        runs[kind].push({ ...r, reads, webhooks });
      }
    }
    const mid = (kind, pick) => median(runs[kind].map(pick));
    const wall = (kind) => mid(kind, (r) => r.wallMs);
    const lostVsPolling = runs.lost.map((r, i) => r.wallMs / runs.polling[i].wallMs);
    const listenDelay = mean(runs.listen.map((r) => r.meanDelayMs));
    const listenReads = mean(runs.listen.map((r) => r.reads));
    const pollingDelay = mean(runs.polling.map((r) => r.meanDelayMs));
    const pollingReads = mean(runs.polling.map((r) => r.reads));
    const rows = [
      { figure: "--listen, every webhook arrives: mean completion→detection delay", value: Math.round(listenDelay), unit: "ms", target: "≤ 50 ms", pass: listenDelay <= 50, note: `polling alone: ${Math.round(pollingDelay)} ms` },
      { figure: "--listen, every webhook arrives: reads per item (GET /v1/jobs/{id} ÷ N)", value: round(listenReads), target: "≤ 1.2", pass: listenReads <= 1.2, note: `polling alone: ${round(pollingReads)}` },
      { figure: "--listen, every webhook arrives: requests per item (submits + reads, as in scenario 1)", value: round(mean(runs.listen.map((r) => r.requests.perItem))), note: `polling alone: ${round(mean(runs.polling.map((r) => r.requests.perItem)))}` },
      {
        figure: `--listen, ${p.lostShare * 100} % of webhooks lost: makespan ÷ polling alone's`,
        value: round(median(lostVsPolling)),
        unit: "×",
        target: "≤ 1.00",
        pass: median(lostVsPolling) <= 1,
        note: `median of ${p.rounds} side-by-side pairs: ${lostVsPolling.map((x) => round(x, 3)).join(", ")}; delay ${Math.round(mean(runs.lost.map((r) => r.meanDelayMs)))} ms, ${round(mean(runs.lost.map((r) => r.reads)))} reads per item`,
      },
      { figure: "makespan ÷ ideal: polling alone / --listen / --listen with losses", value: `${round(wall("polling") / ideal)} / ${round(wall("listen") / ideal)} / ${round(wall("lost") / ideal)}`, unit: "×", note: `medians of ${p.rounds}` },
    ];
    return {
      params: { ...p, idealMs: ideal },
      rows,
      notes: [
        `The run of scenario 1 three ways, alternated ${p.rounds} times: polling alone, with \`--listen 127.0.0.1:PORT --public-url http://127.0.0.1:PORT/hooks\` (the simulator POSTs each finished job's body there), and the same with ${p.lostShare * 100} % of webhooks dropped by the simulator. Reads per item = GET /v1/jobs/{id} ÷ N: every hint is confirmed by one such read, so requests per item (submits + reads) cannot fall below 2; the ≤ 1.2 target is read as reads per item. Delay as in scenario 1.`,
      ],
      details: Object.fromEntries(Object.entries(runs).map(([kind, list]) => [kind, list.map((r) => ({ ...summarize(r), reads: r.reads, webhooks: r.webhooks }))])),
    };
  } finally {
    await sim.stop();
  }
}
