// `npm run bench [-- 1 3 …]`: runs the benchmark scenarios (all, or those named), each side
// by side with its baselines in this process tree, prints figures next to their targets,
// writes test/bench/results.json and rewrites the "Performance" section of the README.
// Never part of `npm test` (vitest only collects *.test.ts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, relative } from "node:path";
import { BENCH_DIR, removeEarlierScratch, ROOT, secondsSinceScratchRemoved, TMP } from "./lib.mjs";

const SCENARIOS = [
  { id: "1", title: "Makespan vs the ideal", module: "./s1-makespan.mjs" },
  { id: "2", title: "Under faults", module: "./s2-faults.mjs" },
  { id: "3", title: "Overhead per item", module: "./s3-overhead.mjs" },
  { id: "4", title: "Memory flat in N", module: "./s4-memory.mjs" },
  { id: "5", title: "Thumbnails and renditions", module: "./s5-images.mjs" },
  { id: "6", title: "Resume start-up", module: "./s6-resume.mjs" },
  { id: "7", title: "Workers on PostgreSQL", module: "./s7-workers.mjs" },
  { id: "8", title: "Webhooks (--listen) against polling", module: "./s8-webhooks.mjs" },
];

const RESULTS = join(BENCH_DIR, "results.json");
const README = join(ROOT, "README.md");
const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

const wanted = process.argv.slice(2).filter((a) => /^\d$/.test(a));
const chosen = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.id)) : SCENARIOS;
const log = (line) => process.stderr.write(`${line}\n`);

function machine() {
  const cpus = os.cpus();
  return {
    cores: os.availableParallelism(),
    cpu: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** Which code was measured: the commit, and a hash of src/ as it is on disk (edits included). */
function codeVersion() {
  const hash = createHash("sha256");
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(relative(ROOT, path)).update(readFileSync(path));
    }
  };
  walk(join(ROOT, "src"));
  let commit = "unknown";
  let dirty = false;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
  } catch {
    /* not a git checkout */
  }
  return { commit, dirty, src: hash.digest("hex").slice(0, 10) };
}

function loadResults() {
  if (!existsSync(RESULTS)) return { scenarios: {}, history: [] };
  try {
    const old = JSON.parse(readFileSync(RESULTS, "utf8"));
    return { scenarios: old.scenarios ?? {}, history: old.history ?? [] };
  } catch {
    return { scenarios: {}, history: [] };
  }
}

function show(row) {
  if (row.value === undefined || row.value === null) return "—";
  // Ratios keep two decimals, so 1.10 reads as what it is next to a target of 1.10.
  const value = typeof row.value === "number" && row.unit === "×" && Math.abs(row.value) < 100 ? row.value.toFixed(2) : String(row.value);
  return `${value}${row.unit ? ` ${row.unit}` : ""}`;
}
const verdict = (row) => (row.pass === true ? "pass" : row.pass === false ? "MISS" : "");

/** The first figure recorded with other code than the current, for a before/after column. */
function beforeOf(history, id, figure, src) {
  const earlier = history.find((h) => h.scenario === id && h.code.src !== src && h.rows.some((r) => r.figure === figure));
  if (!earlier) return null;
  const row = earlier.rows.find((r) => r.figure === figure);
  return { text: show(row), code: earlier.code };
}

function printTable(results) {
  const lines = [];
  for (const s of SCENARIOS) {
    const r = results.scenarios[s.id];
    if (!r) continue;
    for (const row of r.rows) lines.push([`${s.id} ${s.title}`, row.figure, show(row), row.target ?? "", verdict(row), row.note ?? ""]);
  }
  const head = ["scenario", "figure", "result", "target", "", "note"];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(fmt(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  let last = "";
  for (const l of lines) {
    console.log(fmt([l[0] === last ? "" : l[0], ...l.slice(1)]));
    last = l[0];
  }
}

const escapeCell = (text) => String(text).replace(/\|/g, "\\|");

function readmeSection(results) {
  const m = results.machine;
  const code = results.code;
  const out = [];
  out.push("## Performance", "", START);
  out.push(
    "<!-- Written by `npm run bench` (test/bench/run.mjs): edit the benchmark, not this section. -->",
    "",
    `Measured with \`npm run bench\` (about twelve minutes; \`npm run bench -- 1 3\` runs only scenarios 1 and 3) on ` +
      `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node.replace(/^v/, "")}, ${m.platform}; ` +
      `code ${code.commit}${code.dirty ? " with uncommitted changes" : ""} (src ${code.src}), ${results.updatedAt.slice(0, 10)}. ` +
      "Figures are ratios where a ratio is the point; `results.json` beside the benchmark holds every raw number.",
    "",
    "How: each scenario runs the pipeline in a child process of its own against the simulator on loopback, with " +
      "latencies (and backoffs) scaled down about tenfold and, in scenarios 1–4 and 7, 64×64 images; a ratio compares runs " +
      "made side by side on the same machine. Each scenario's method and caveats are in `test/bench/METHOD.md`, every " +
      "raw number in `test/bench/results.json`.",
    "",
  );
  const history = results.history ?? [];
  const srcOf = (id) => results.scenarios[id]?.code?.src ?? code.src;
  const anyBefore = SCENARIOS.some((s) => results.scenarios[s.id]?.rows.some((row) => beforeOf(history, s.id, row.figure, srcOf(s.id))));
  out.push(`| # | figure | result | target | |${anyBefore ? " before |" : ""}`);
  out.push(`|---|---|---|---|---|${anyBefore ? "---|" : ""}`);
  for (const s of SCENARIOS) {
    const r = results.scenarios[s.id];
    if (!r) continue;
    r.rows.forEach((row, i) => {
      const figure = row.note ? `${row.figure} (${row.note})` : row.figure;
      const before = anyBefore ? ` ${beforeOf(history, s.id, row.figure, srcOf(s.id))?.text ?? ""} |` : "";
      out.push(`| ${i === 0 ? `${s.id}. ${s.title}` : ""} | ${escapeCell(figure.trim())} | ${escapeCell(show(row))} | ${escapeCell(row.target ?? "")} | ${verdict(row)} |${before}`);
    });
  }
  out.push("");
  const others = SCENARIOS.filter((s) => results.scenarios[s.id] && results.scenarios[s.id].code?.src !== code.src);
  for (const s of others) {
    const c = results.scenarios[s.id].code;
    out.push(`Scenario ${s.id} was last measured with code ${c.commit}${c.dirty ? " with uncommitted changes" : ""} (src ${c.src}), ${results.scenarios[s.id].at.slice(0, 10)}.`);
  }
  if (others.length) out.push("");
  if (anyBefore) {
    out.push("\"before\" is the first figure the benchmark recorded for an earlier version of `src/` (see `history` in results.json).", "");
  }
  out.push(END);
  return out.join("\n");
}

/** The method in full, and each scenario's notes: test/bench/METHOD.md (the README keeps the table). */
function methodText(results) {
  const out = ["# How the benchmark measures", "", "<!-- Written by `npm run bench` (test/bench/run.mjs): edit the benchmark, not this file. -->", ""];
  out.push(
      "The pipeline runs through `runCommand` (scenarios 1–4 and 7) or the CLI (scenario 6) in a child " +
      "process of its own, against the simulator on loopback in the benchmark's process, so runs never share a heap " +
      "and the simulator's CPU is not the pipeline's. Those children start node with the bin's flags (`src/heap.ts`), " +
      "as `imgbatch` and `npm start` do, and so do the bare sharp loops that scenarios 3 and 5 set the pipeline against; " +
      "the loops a user might write instead (scenario 1's baselines, scenario 3's p-limit loop) run under plain `node`, " +
      "and scenarios 3, 4 and 6 also run the pipeline under plain `node`, side by side. Latencies are scaled down about tenfold (a 10 s job polled every " +
      "10 s becomes L = 1 s polled every 1 s), and so are the backoffs (`tuning`: 100 ms base, 6 s cap, 500 ms " +
      "429 fallback); the simulator's images are shrunk to 64×64 for scenarios 1–4 and 7 so that sharp does not stand in " +
      "for the scheduler on a small machine (scenario 5 measures the image stage on full-size images). Every run " +
      "writes into a new folder and the benchmark deletes nothing until it has finished measuring: on ext4 without a " +
      "journal (this machine), files created within minutes of a mass delete nearby cost extra kernel CPU each " +
      "(inode allocation walks the freed inodes; a third of scenario 3's CPU when its folder had just been wiped). " +
      "Give the machine six minutes after deleting many files before a run whose CPU figures matter (`npm run bench` warns when its own clean-up was more recent). " +
      "Each child starts after a `sync`, so that no run pays for the writeback of the one before it.",
    "",
  );
  for (const s of SCENARIOS) {
    const notes = results.scenarios[s.id]?.notes ?? [];
    if (notes.length) out.push(`## ${s.id}. ${s.title}`, "", ...notes.map((n) => `- ${n}`), "");
  }
  return `${out.join("\n").trimEnd()}\n`;
}

function updateReadme(results) {
  writeFileSync(join(ROOT, "test", "bench", "METHOD.md"), methodText(results));
  const text = readFileSync(README, "utf8");
  const section = readmeSection(results);
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  let next;
  if (start !== -1 && end > start) {
    // Replace from the section's heading (just above the start marker) to the end marker.
    const heading = text.lastIndexOf("## Performance", start);
    const from = heading !== -1 && text.slice(heading, start).split("\n## ").length === 1 ? heading : start;
    next = text.slice(0, from) + section + text.slice(end + END.length);
  } else {
    const dev = text.indexOf("\n## Development");
    next = dev === -1 ? `${text.trimEnd()}\n\n${section}\n` : `${text.slice(0, dev)}\n${section}\n${text.slice(dev)}`;
  }
  writeFileSync(README, next);
}

mkdirSync(TMP, { recursive: true });
const results = loadResults();
if (process.argv.includes("--readme-only")) {
  // Rewrites the README's section and METHOD.md from results.json, measuring nothing.
  const saved = JSON.parse(readFileSync(RESULTS, "utf8"));
  updateReadme({ ...results, machine: saved.machine, code: saved.code, updatedAt: saved.updatedAt });
  process.exit(0);
}
results.machine = machine();
results.command = `npm run bench${wanted.length ? ` -- ${wanted.join(" ")}` : ""}`;
results.code = codeVersion();
log(`imgbatch benchmark: ${results.machine.cores} cores, Node ${results.machine.node}, src ${results.code.src} (${results.code.commit}${results.code.dirty ? ", uncommitted changes" : ""})`);
const sinceDelete = secondsSinceScratchRemoved();
if (sinceDelete !== null && sinceDelete < 360) {
  log(`note: the previous bench run deleted its predecessor's scratch ${Math.round(sinceDelete)} s ago; on ext4 without a journal, file creations in the next ${Math.round(360 - sinceDelete)} s cost extra kernel CPU (scenario 3 reads high)`);
}
const benchStarted = Date.now();
for (const s of chosen) {
  log(`\n[${s.id}] ${s.title}`);
  const started = Date.now();
  const { run } = await import(s.module);
  const outcome = await run({ log });
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  log(`    (${seconds} s)`);
  results.scenarios[s.id] = { title: s.title, ...outcome, seconds, at: new Date().toISOString(), code: results.code };
  results.history.push({ at: new Date().toISOString(), scenario: s.id, code: results.code, rows: outcome.rows.map(({ figure, value, unit }) => ({ figure, value, unit })) });
}
results.updatedAt = new Date().toISOString();
log(`\nbenchmark took ${Math.round((Date.now() - benchStarted) / 1000)} s\n`);
printTable(results);
writeFileSync(RESULTS, `${JSON.stringify({ machine: results.machine, command: results.command, code: results.code, updatedAt: results.updatedAt, scenarios: results.scenarios, history: results.history }, null, 2)}\n`);
updateReadme(results);
log(`\nwrote ${relative(ROOT, RESULTS)} and the Performance section of README.md`);
// Only now: deleting files just before a measured run slows the file creations it makes.
removeEarlierScratch();
