// Shared helpers of the benchmark: scratch folders, manifests, the simulator with small
// images, child processes, and the measurements read from /proc.
import { execFileSync, fork } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, "..", "..");
export const TMP = join(BENCH_DIR, ".tmp");
// IMGBATCH_DIST: another build of imgbatch to measure (a before/after comparison in one run).
export const DIST = process.env.IMGBATCH_DIST ?? join(ROOT, "dist");

/**
 * The node flags the bin starts with (its launcher line, from src/heap.ts): every child that
 * runs the pipeline runs with them, as `imgbatch` and `npm start` do. None for a build from
 * before the launcher (`IMGBATCH_DIST`).
 */
export function binNodeFlags() {
  const launcher = readFileSync(join(DIST, "cli.js"), "utf8").split("\n", 2)[1] ?? "";
  const match = /^":" \/\/; exec \/usr\/bin\/env node (.*) "\$0" "\$@"$/.exec(launcher);
  return match ? match[1].split(/\s+/).filter(Boolean) : [];
}

// Scratch folders are never wiped before use: each call makes a new one under this bench run's
// folder, and earlier runs' folders are removed only once a run has finished measuring. On
// ext4 without a journal (this VM), creating a file within about five minutes of a mass
// delete nearby walks the freed inodes: perf put a third of scenario 3's CPU in ext4 inode
// allocation (recently_deleted, find_inode_bit) when its folder had just been wiped of the
// previous run's 30,000 files. A user's run does not start by deleting 30,000 files.
const RUNS_DIR = join(TMP, "runs");
const RUN_DIR = join(RUNS_DIR, `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
let scratchCount = 0;

/** A new, empty scratch folder under test/bench/.tmp/runs/<this run>/. */
export function scratch(name) {
  const dir = join(RUN_DIR, `${name}-${++scratchCount}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Removes the scratch folders of earlier bench runs whose process has ended (this run's stay,
 * to be looked at; another bench still measuring keeps its own). Call once measuring is over.
 */
export function removeEarlierScratch() {
  let removed = 0;
  for (const name of existsSync(RUNS_DIR) ? readdirSync(RUNS_DIR) : []) {
    if (name === LAST_DELETE || join(RUNS_DIR, name) === RUN_DIR || processAlive(Number(/-(\d+)$/.exec(name)?.[1]))) continue;
    rmSync(join(RUNS_DIR, name), { recursive: true, force: true });
    removed++;
  }
  if (removed > 0) writeFileSync(join(RUNS_DIR, LAST_DELETE), `${Date.now()}\n`);
}

const LAST_DELETE = "last-delete";
/** How long ago the benchmark last removed scratch folders, in seconds (null: never, as far as it knows). */
export function secondsSinceScratchRemoved() {
  try {
    return (Date.now() - Number(readFileSync(join(RUNS_DIR, LAST_DELETE), "utf8"))) / 1000;
  } catch {
    return null;
  }
}

function processAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/**
 * A CSV manifest of `n` rows, one item each, every prompt distinct (CSV is what a list of
 * this size is exported as; YAML is measured separately where the format matters). Past the
 * default cap on items (10,000) it raises its own with a `# maxItems:` line.
 */
export function writeCsvManifest(dir, n, { name = "bench", model = "flux-schnell" } = {}) {
  const lines = [...(n > 10_000 ? [`# maxItems: ${n}`] : []), "id,prompt,model,aspectRatio"];
  for (let i = 0; i < n; i++) lines.push(`r${i},Poster number ${i} of a quiet harbour town at dusk,${model},1:1`);
  const path = join(dir, `${name}.csv`);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

/**
 * Starts the simulator in this process. `imagePx` shrinks the 1:1 image the simulator
 * serves (RATIO_PIXELS is a plain object shared by the simulator and the job's reported
 * size), so the pipeline's image stage costs little when latencies are scaled down.
 */
const apiTimes = [];

export async function startSim(options, { imagePx = 64 } = {}) {
  const { RATIO_PIXELS } = await import(join(DIST, "providers/catalog.js"));
  RATIO_PIXELS["1:1"] = { width: imagePx, height: imagePx };
  const { startSimulator } = await import(join(DIST, "sim/index.js"));
  const { LedgerRecorder } = await import(join(DIST, "sim/ledger.js"));
  // The time of every API request the simulator counts, for windows shorter than its minute.
  if (!LedgerRecorder.prototype.benchTimes) {
    const apiRequest = LedgerRecorder.prototype.apiRequest;
    LedgerRecorder.prototype.benchTimes = true;
    LedgerRecorder.prototype.apiRequest = function (now) {
      apiTimes.push(now);
      return apiRequest.call(this, now);
    };
  }
  const sim = await startSimulator({ creditsLimit: 1e9, jitterMs: 0, ...options });
  apiTimes.length = 0;
  sim.apiTimes = apiTimes;
  // When each job was created: the first submit of a run, and creations per second.
  const created = [];
  const createJob = sim.state.createJob.bind(sim.state);
  sim.state.createJob = (key, request) => {
    created.push(Date.now());
    return createJob(key, request);
  };
  sim.created = created;
  const reset = sim.reset.bind(sim);
  sim.reset = () => {
    created.length = 0;
    apiTimes.length = 0;
    reset();
  };
  return sim;
}

/**
 * Writes back every dirty page of the machine (`sync`) before a measured run, so that a run
 * that syncs its files (the pipeline) does not pay for the writeback of the run before it
 * (a bare loop that left hundreds of MB unwritten).
 */
export function settleWriteback() {
  execFileSync("sync");
}

/** Runs `script` in a child Node process with `input`; resolves with what it sends back. */
export function runChild(script, input, { execArgv = [], env = {}, onMessage } = {}) {
  settleWriteback();
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = fork(join(BENCH_DIR, script), [], {
      execArgv,
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    let result = null;
    child.on("message", (message) => {
      if (message?.type === "result") result = message.value;
      else onMessage?.(message, child);
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (result) resolve({ ...result, spawnedAt: startedAt });
      else reject(new Error(`${script} exited ${code ?? signal} without a result`));
    });
    child.send({ type: "input", value: input });
  });
}

/** In a child: waits for the input sent by runChild. */
export function childInput() {
  return new Promise((resolve) => process.once("message", (message) => resolve(message.value)));
}

/** In a child: sends the result back and lets the process end. */
export function childResult(value) {
  return new Promise((resolve) => process.send({ type: "result", value }, () => resolve()));
}

/** Peak resident set of this process, in MiB, from /proc (VmHWM) and from getrusage. */
export function peakRssMiB() {
  const status = readFileSync("/proc/self/status", "utf8");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return { vmHwmMiB: hwm / 1024, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time of each thread of this process so far, in ms, summed by thread name. */
export function cpuByThread() {
  const out = {};
  for (const tid of readdirSync("/proc/self/task")) {
    let stat;
    let comm;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      comm = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    const name = String(process.pid) === tid ? "main" : comm.replace(/[0-9]+$/, "");
    out[name] = (out[name] ?? 0) + ms;
  }
  return out;
}

/** CPU of this process's ended, waited-for children (the pipeline's `sync -f`), in ms. */
export function childrenCpuMs() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

/**
 * CPU time of the whole machine so far (every process and kernel thread, /proc/stat: all
 * but idle and iowait), in ms: to tell work saved from work moved to the kernel's threads.
 */
export function machineCpuMs() {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

export function diffThreads(after, before) {
  const out = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}

/**
 * Counts SQLite commits made through better-sqlite3 in this process: every outermost
 * `db.transaction(...)` call that returns, and every write statement run outside a
 * transaction (autocommit). Must run before the store opens its database.
 */
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

export async function countSqliteCommits() {
  const { default: Database } = await import("better-sqlite3");
  // `fsynced`: commits made while PRAGMA synchronous was FULL (the store switches it per write).
  const counter = { commits: 0, transactions: 0, autocommits: 0, groups: 0, fsynced: 0 };
  const fullSync = new WeakMap(); // connection → synchronous is FULL (the store opens it so)
  const commit = (db) => {
    counter.commits++;
    if (fullSync.get(db) !== false) counter.fsynced++;
  };
  const probe = new Database(":memory:");
  const Statement = Object.getPrototypeOf(probe.prepare("SELECT 1"));
  probe.close();
  const run = Statement.run;
  // What each statement is, worked out once per statement: the counter must not add CPU of
  // its own to the run whose CPU it is counted in.
  const kinds = new WeakMap(); // statement → "full" | "normal" (a synchronous PRAGMA), "commit", "write", "other"
  const kindOf = (statement) => {
    let kind = kinds.get(statement);
    if (kind === undefined) {
      const pragma = /^\s*PRAGMA\s+synchronous\s*=\s*(\w+)/i.exec(statement.source);
      // better-sqlite3 runs its own BEGIN/COMMIT internally: those are counted by the
      // transaction wrapper below. A COMMIT prepared by the store ends its group of a turn.
      kind = pragma
        ? /^(FULL|2|EXTRA|3)$/i.test(pragma[1]) ? "full" : "normal"
        : /^\s*(COMMIT|END)\b/i.test(statement.source) ? "commit" : !statement.reader && !TRANSACTION_CONTROL.test(statement.source) ? "write" : "other";
      kinds.set(statement, kind);
    }
    return kind;
  };
  Statement.run = function (...args) {
    const outside = !this.database.inTransaction;
    const result = run.apply(this, args);
    const kind = kindOf(this);
    if (kind === "full" || kind === "normal") {
      fullSync.set(this.database, kind === "full");
      return result;
    }
    if (outside && kind === "write") {
      commit(this.database);
      counter.autocommits++;
    } else if (kind === "commit" && !outside && !this.database.inTransaction) {
      commit(this.database);
      counter.groups++;
    }
    return result;
  };
  const transaction = Database.prototype.transaction;
  Database.prototype.transaction = function (fn) {
    const db = this;
    const wrapped = transaction.call(this, fn);
    const wrap = (variant) =>
      function (...args) {
        const outer = !db.inTransaction;
        const result = variant.apply(this, args);
        if (outer) {
          commit(db);
          counter.transactions++;
        }
        return result;
      };
    const main = wrap(wrapped);
    for (const name of ["deferred", "immediate", "exclusive"]) main[name] = wrap(wrapped[name]);
    main.default = main;
    return main;
  };
  return counter;
}

/**
 * Diagnosis only (test/bench/what-if.mjs, never the figures of `npm run bench`): patches that
 * approximate a proposed change to src/ from outside, to estimate its effect before it is made.
 * - "sqlite-normal": WAL with synchronous = NORMAL for every commit (no fsync at all)
 * - "no-file-fsync": node's fsyncSync does nothing: no fsync of written files nor of their folders
 */
export async function applyWhatIf(names) {
  const { default: Database } = await import("better-sqlite3");
  for (const name of names) {
    if (name === "sqlite-normal") {
      const pragma = Database.prototype.pragma;
      Database.prototype.pragma = function (source, options) {
        return pragma.call(this, /^\s*synchronous\s*=\s*FULL\s*$/i.test(source) ? "synchronous = NORMAL" : source, options);
      };
      // The store switches per write with a prepared PRAGMA statement.
      const prepare = Database.prototype.prepare;
      Database.prototype.prepare = function (source) {
        return prepare.call(this, /^\s*PRAGMA\s+synchronous\s*=\s*FULL\s*$/i.test(source) ? "PRAGMA synchronous = NORMAL" : source);
      };
    } else if (name === "no-file-fsync") {
      const fs = await import("node:fs");
      const { syncBuiltinESMExports } = await import("node:module");
      fs.default.fsyncSync = () => {};
      syncBuiltinESMExports();
    } else {
      throw new Error(`unknown what-if ${name}`);
    }
  }
}

/** A CommandContext for runCommand whose logs go nowhere (as `2>/dev/null` would). */
export async function benchContext(env, level = "info") {
  const { createWriteStream } = await import("node:fs");
  const { createLogger } = await import(join(DIST, "log.js"));
  const { readEnvironment } = await import(join(DIST, "env.js"));
  const stopListeners = new Set();
  const ctx = {
    logger: createLogger({ level, destination: createWriteStream("/dev/null") }),
    env: readEnvironment(env),
    stdout: createWriteStream("/dev/null"),
    terminal: null,
    now: Date.now,
    onStopSignal(listener) {
      stopListeners.add(listener);
      return () => stopListeners.delete(listener);
    },
  };
  return { ctx, signal: (name = "SIGINT") => [...stopListeners].forEach((l) => l(name)) };
}

/** Most events in any window of `windowMs` over sorted times. */
export function maxInWindow(times, windowMs) {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round = (x, digits = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);
