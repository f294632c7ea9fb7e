// A throwaway PostgreSQL server for the tests and the benchmark: IMGBATCH_TEST_PG when set, else
// Debian's binaries (initdb + postgres) in a temporary folder on a free port, as the `postgres`
// user when run as root (initdb and postgres refuse root), stopped by its postmaster.pid and
// removed by `stop` (and on this process's exit). Plain JavaScript so that the benchmark, which
// runs under plain `node`, shares it; its types are in postgres-server.d.mts.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";

function binDir() {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error("PostgreSQL not found: install it (apt-get install -y postgresql) or set IMGBATCH_TEST_PG to a server's URL");
  return join(root, versions[0], "bin");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` user when this process is root. */
function asServerUser(command, args) {
  return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

async function waitForServer(url, server, log) {
  const started = Date.now();
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited (${server.exitCode}): ${log()}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
      if (Date.now() - started > 30_000) throw new Error(`postgres did not accept connections within 30 s: ${log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime (+ cutime + cstime: its reaped children) of a process, in ms; null if it is gone. */
function procCpuMs(pid, withChildren) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)) * TICK_MS;
  } catch {
    return null;
  }
}

/**
 * Starts (or names, with IMGBATCH_TEST_PG) a server. Returns { url, stop(), cpuMs() }: `cpuMs`
 * is the CPU the server has used so far (the postmaster, its live backends and those that have
 * ended), or null for a server this process did not start.
 */
export async function startPostgres(prefix = "imgbatch-pg") {
  const given = process.env.IMGBATCH_TEST_PG;
  if (given) return { url: given, external: true, stop: async () => {}, cpuMs: () => null };
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  if (userInfo().uid === 0) chownSync(dir, Number(spawnSync("id", ["-u", "postgres"]).stdout.toString().trim()), Number(spawnSync("id", ["-g", "postgres"]).stdout.toString().trim()));
  const data = join(dir, "data");
  const [initdb, initArgs] = asServerUser(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "imgbatch", "-E", "UTF8", "--locale=C", "--no-sync"]);
  const init = spawnSync(initdb, initArgs, { encoding: "utf8" });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  // Durability is the store's concern, not the throwaway server's: no fsync keeps it fast.
  const [postgres, args] = asServerUser(join(bin, "postgres"), ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]);
  const server = spawn(postgres, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (chunk) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const url = `postgres://imgbatch@127.0.0.1:${port}/postgres`;
  const postmasterPid = () => {
    try {
      return Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    } catch {
      return null;
    }
  };
  // If the benchmark dies before `stop`, the postmaster is not left running.
  const onExit = () => {
    const pid = postmasterPid();
    try {
      if (pid) process.kill(pid, "SIGQUIT");
    } catch {
      /* gone */
    }
  };
  process.once("exit", onExit);
  try {
    await waitForServer(url, server, () => stderr);
  } catch (error) {
    onExit();
    throw error;
  }
  let stopped = false;
  return {
    url,
    external: false,
    /** CPU of the server so far, in ms: the postmaster with its ended backends, plus the live ones. */
    cpuMs() {
      const master = postmasterPid();
      if (!master) return null;
      let total = procCpuMs(master, true) ?? 0;
      for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
          if (ppid === master) total += procCpuMs(pid, true) ?? 0;
        } catch {
          /* ended meanwhile */
        }
      }
      return total;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener("exit", onExit);
      // The postmaster itself, by its pid file: a signal to `runuser` is not passed on to it.
      const postmaster = postmasterPid();
      const exited = server.exitCode === null ? new Promise((resolve) => server.once("exit", resolve)) : Promise.resolve();
      try {
        process.kill(postmaster ?? server.pid, "SIGINT"); // fast shutdown
      } catch {
        /* gone already */
      }
      const timeout = new Promise((resolve) => setTimeout(resolve, 10_000).unref());
      await Promise.race([exited, timeout]);
      if (server.exitCode === null) {
        try {
          if (postmaster) process.kill(postmaster, "SIGKILL");
        } catch {
          /* gone */
        }
        server.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A connection string to a fresh, empty schema of the server (each test, or run of a scenario, gets its own). */
export async function freshSchema(url, prefix = "t") {
  const schema = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const withSchema = new URL(url);
  withSchema.searchParams.set("options", `-c search_path=${schema}`);
  return withSchema.toString();
}

/** Runs `sql` against `url` (a schema's URL) and returns its rows. */
export async function query(url, sql, params = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}
