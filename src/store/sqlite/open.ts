// Opening a SQLite database for the store: creating it, switching it to WAL, migrating it, and
// telling a file that is no database (or one of a newer imgbatch) from any other failure.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { errorMessage } from "../../errors.js";
import { DatabaseUnusableError } from "../database-unusable.js";
import { MIGRATIONS } from "../migrations.js";

/** Opens (and creates or migrates) a database; DatabaseUnusableError for a file this imgbatch cannot use. */
export function openDatabase(path: string, options: { readonly?: boolean }): Database.Database {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  let db: Database.Database | null = null;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    db.pragma("busy_timeout = 5000");
    // SQLite's own default page cache (2 MiB) instead of better-sqlite3's 16 MiB, which
    // made memory grow with the manifest; the OS page cache keeps reads cheap.
    db.pragma("cache_size = -2000");
    // A file of a newer imgbatch is refused before anything here changes it (WAL mode included).
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > MIGRATIONS.length) throw newerSchema(version);
    if (!options.readonly) {
      switchToWal(db);
      // FULL: a committed transition survives power loss, which is what "never pay twice" rests on.
      db.pragma("synchronous = FULL");
      // Off while a migration rebuilds a table that others reference (SQLite's own recipe).
      db.pragma("foreign_keys = OFF");
      migrate(db);
      db.pragma("foreign_keys = ON");
    } else {
      // A read of the schema: a file that is no database fails here, not at the first query.
      db.prepare("SELECT COUNT(*) FROM sqlite_master").get();
    }
  } catch (error) {
    db?.close();
    if (error instanceof DatabaseUnusableError) throw error;
    if (isSqliteCorruption(error)) throw new DatabaseUnusableError(`${path} is not a readable imgbatch database (${errorMessage(error)})`, { cause: error });
    throw error;
  }
  return db;
}

function newerSchema(version: number): DatabaseUnusableError {
  return new DatabaseUnusableError(`its schema (${version}) is newer than this imgbatch's (${MIGRATIONS.length}); upgrade imgbatch`);
}

const CORRUPTION_CODES = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_INDEX"]);

function isSqliteCorruption(error: unknown): boolean {
  return typeof (error as { code?: unknown })?.code === "string" && CORRUPTION_CODES.has((error as { code: string }).code);
}

/**
 * WAL mode needs the database to itself for a moment: two processes opening a new database at
 * once may be told "busy" at once (SQLite does not wait out busy_timeout there), so it retries.
 */
function switchToWal(db: Database.Database, timeoutMs = 5_000): void {
  const started = Date.now();
  for (;;) {
    try {
      db.pragma("journal_mode = WAL");
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "SQLITE_BUSY" || Date.now() - started > timeoutMs) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

/**
 * Applies the migrations not yet applied, each in its own immediate transaction that reads the
 * version again: two processes opening a new database at once take turns instead of both
 * creating the schema.
 */
function migrate(db: Database.Database): void {
  for (;;) {
    const applied = db.transaction(() => {
      const current = db.pragma("user_version", { simple: true }) as number;
      if (current > MIGRATIONS.length) throw newerSchema(current);
      if (current === MIGRATIONS.length) return false;
      const migration = MIGRATIONS[current]!;
      if (typeof migration === "string") db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${current + 1}`);
      return true;
    }).immediate();
    if (!applied) return;
  }
}
