// Scenario 6: time from `imgbatch run` starting (the process spawned) to its first submit
// reaching the simulator, resuming a 100,000-item database that is 99% done, vs a fresh
// 1,000-item run. The CLI runs as a child and is killed once the first submit arrives.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { binNodeFlags, DIST, percentile, round, runChild, scratch, sleep, startSim, TMP, writeCsvManifest } from "./lib.mjs";

export const PARAMS = { n: 100_000, queued: 1_000, freshN: 1_000, repeats: 3, concurrency: 50, pollInterval: "1s" };

/** The files a delivered item leaves (image, sidecar, thumbnail), empty, kept between bench runs. */
function outputFixture(n, queued) {
  const out = join(TMP, "s6-output");
  const marker = join(out, `.bench-fixture-${n}-${queued}`);
  if (existsSync(marker)) return out;
  mkdirSync(join(out, "images"), { recursive: true });
  mkdirSync(join(out, "thumbs"), { recursive: true });
  for (let i = 0; i < n - queued; i++) {
    writeFileSync(join(out, "images", `r${i}.png`), "");
    writeFileSync(join(out, "images", `r${i}.json`), "");
    writeFileSync(join(out, "thumbs", `r${i}.webp`), "");
  }
  writeFileSync(marker, "");
  return out;
}

async function timeToFirstSubmit(sim, { manifest, db, out, plainNode = false }) {
  // The previous run was killed with its first wave of submits in flight: the simulator may
  // still be creating their jobs. Counting one of them would time this run at ~0 ms.
  for (let seen = -1; seen !== sim.created.length; ) {
    seen = sim.created.length;
    await sleep(200);
  }
  sim.reset();
  // With the bin's node flags, as `imgbatch run …` starts, unless `plainNode`.
  const args = [...(plainNode ? [] : binNodeFlags()), join(DIST, "cli.js"), "--quiet", "run", manifest, "--provider", "pictory", "--db", db, "--out", out, "--concurrency", String(PARAMS.concurrency), "--poll-interval", PARAMS.pollInterval];
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, PICTORY_API_KEY: sim.apiKey, PICTORY_BASE_URL: sim.url }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  let exited = null;
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exited = code ?? signal))));
  while (sim.created.length === 0 && exited === null && Date.now() - spawnedAt < 120_000) await sleep(2);
  const firstSubmitAt = sim.created[0];
  if (exited === null) child.kill("SIGKILL");
  await exit;
  if (firstSubmitAt === undefined) throw new Error(`no submit within the time allowed (exit ${exited}): ${stderr.slice(0, 500)}`);
  return firstSubmitAt - spawnedAt;
}

export async function run({ log }) {
  const p = PARAMS;
  const sim = await startSim({ latencyMs: { "flux-schnell": 1_000 } });
  try {
    const dir = scratch("s6-resume");
    const manifest = writeCsvManifest(dir, p.n);
    log(`  building the ${p.n}-item database (${p.n - p.queued} done, ${p.queued} queued) and its output folder`);
    const template = join(dir, "template.sqlite");
    const out = outputFixture(p.n, p.queued);
    const built = await runChild("child-build-db.mjs", { manifest, db: template, out, queued: p.queued });
    log(`    built in ${(built.buildMs / 1000).toFixed(1)} s: ${JSON.stringify(built.counts)}`);
    // Each resume with the bin's node flags is followed by one under plain `node`.
    const resumed = [];
    const resumedPlain = [];
    for (let i = 0; i < p.repeats; i++) {
      for (const plainNode of [false, true]) {
        const db = join(dir, `run-${i}${plainNode ? "-plain" : ""}.sqlite`);
        copyFileSync(template, db);
        (plainNode ? resumedPlain : resumed).push(await timeToFirstSubmit(sim, { manifest, db, out, plainNode }));
      }
    }
    log(`    resume: ${resumed.map((ms) => `${ms} ms`).join(", ")}; under plain node: ${resumedPlain.map((ms) => `${ms} ms`).join(", ")}`);
    const fresh = [];
    for (let i = 0; i < p.repeats; i++) {
      const freshDir = scratch(`s6-fresh-${i}`);
      const freshManifest = writeCsvManifest(freshDir, p.freshN);
      fresh.push(await timeToFirstSubmit(sim, { manifest: freshManifest, db: join(freshDir, "state.sqlite"), out: join(freshDir, "out") }));
    }
    log(`    fresh ${p.freshN}: ${fresh.map((ms) => `${ms} ms`).join(", ")}`);
    const resumeMs = percentile(resumed, 50);
    const freshMs = percentile(fresh, 50);
    const rows = [
      { figure: `start → first submit, resuming ${p.n.toLocaleString("en")} items (99% done)`, value: round(resumeMs / 1000), unit: "s", target: "≤ 2", pass: resumeMs <= 2000, note: `median of ${p.repeats}` },
      { figure: "  the same under plain `node` (no heap flags)", value: round(percentile(resumedPlain, 50) / 1000), unit: "s", note: `median of ${p.repeats}` },
      { figure: `start → first submit, fresh ${p.freshN.toLocaleString("en")}-item run`, value: round(freshMs / 1000), unit: "s", note: `median of ${p.repeats}` },
      { figure: "resume ÷ fresh", value: round(resumeMs / freshMs, 1), unit: "×" },
    ];
    return {
      params: p,
      rows,
      notes: [
        "The database is built through `Store.syncManifest`, then SQL marks 99,000 items done with the four events each; the output folder holds the 297,000 files they left (empty). Timed: spawn of `dist/cli.js run … --provider pictory` (with the bin's node flags) to the first POST /v1/aistudio/images at the simulator, median of 3; the process is then killed.",
      ],
      details: { resumedMs: resumed, resumedPlainNodeMs: resumedPlain, freshMs: fresh, build: built },
    };
  } finally {
    await sim.stop();
  }
}
