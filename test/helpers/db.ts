// Reading a run's database from a test while the CLI (another process) writes it.
import { existsSync } from "node:fs";
import Database from "better-sqlite3";

/** Runs `read` on a read-only connection; undefined while the database does not exist yet. */
export function readDb<T>(path: string, read: (db: Database.Database) => T): T | undefined {
  if (!existsSync(path)) return undefined;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Polls `check` every 10 ms until it returns true; false if `gaveUp()` first (the process ended). */
export async function waitUntil(check: () => boolean, gaveUp: () => boolean = () => false, timeoutMs = 30_000): Promise<boolean> {
  const started = Date.now();
  while (!gaveUp()) {
    try {
      if (check()) return true;
    } catch {
      /* the database is being created or migrated */
    }
    if (Date.now() - started > timeoutMs) throw new Error(`waitUntil: gave up after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

/** Resolves true once the database's lock row names `pid`; false if the process ended first. */
export function waitForLock(dbPath: string, pid: number, exited: () => boolean = () => false): Promise<boolean> {
  return waitUntil(() => readDb(dbPath, (db) => (db.prepare("SELECT pid FROM run_lock WHERE id = 1").get() as { pid: number } | undefined)?.pid === pid) === true, exited);
}

/** Item counts by state (live items of the manifest). */
export function stateCounts(dbPath: string): Record<string, number> {
  return (
    readDb(dbPath, (db) =>
      Object.fromEntries(
        (db.prepare("SELECT state, COUNT(*) n FROM items WHERE superseded_at IS NULL AND in_manifest = 1 GROUP BY state").all() as { state: string; n: number }[]).map((r) => [r.state, r.n]),
      ),
    ) ?? {}
  );
}

/**
 * The SQLite adapter's own connection, for tests of what only SQLite has (pragmas, a rolled-back
 * group). The store port gives no handle out; this reaches past it on purpose.
 */
export function sqliteConnectionOf(store: object): Database.Database {
  return (store as { db: Database.Database }).db;
}
