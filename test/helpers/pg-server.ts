// A throwaway PostgreSQL server for the tests: IMGBATCH_TEST_PG when set, else Debian's binaries
// started in a temporary folder on a free port (as the `postgres` user when run as root: initdb
// and postgres refuse root), stopped and removed again by `stop`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface TestPostgres {
  /** A connection string to a database the tests may create schemas in. */
  url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error("PostgreSQL not found: install it (apt-get install -y postgresql) or set IMGBATCH_TEST_PG to a server's URL");
  return join(root, versions[0]!, "bin");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` user when this process is root. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

async function waitForServer(url: string, server: ChildProcess, log: () => string): Promise<void> {
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

export async function startTestPostgres(): Promise<TestPostgres> {
  const given = process.env.IMGBATCH_TEST_PG;
  if (given) return { url: given, stop: async () => {} };
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "imgbatch-pg-"));
  if (userInfo().uid === 0) chownSync(dir, Number(spawnSync("id", ["-u", "postgres"]).stdout.toString().trim()), Number(spawnSync("id", ["-g", "postgres"]).stdout.toString().trim()));
  const data = join(dir, "data");
  const [initdb, initArgs] = asServerUser(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "imgbatch", "-E", "UTF8", "--locale=C", "--no-sync"]);
  const init = spawnSync(initdb, initArgs, { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  // Durability is the store's concern, not the test server's: no fsync keeps the tests fast.
  const [postgres, args] = asServerUser(join(bin, "postgres"), ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]);
  const server = spawn(postgres, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  server.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const url = `postgres://imgbatch@127.0.0.1:${port}/postgres`;
  await waitForServer(url, server, () => stderr);
  return {
    url,
    async stop() {
      // The postmaster itself, by its pid file: a signal to `runuser` is not passed on to it.
      const postmaster = (() => {
        try {
          return Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
        } catch {
          return null;
        }
      })();
      const exited = server.exitCode === null ? new Promise((resolve) => server.once("exit", resolve)) : Promise.resolve();
      try {
        process.kill(postmaster ?? server.pid!, "SIGINT"); // fast shutdown
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

/** A connection string to a fresh, empty schema of the test server (each store test gets its own). */
export async function freshSchema(url: string): Promise<string> {
  const schema = `t_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const withSchema = new URL(url);
  withSchema.searchParams.set("options", `-c search_path=${schema}`);
  return withSchema.toString();
}
