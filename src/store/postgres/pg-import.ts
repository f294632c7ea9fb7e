// Moving a SQLite run to PostgreSQL: every table's rows copied with their ids, in one
// transaction, into an empty PostgreSQL database (then several machines can go on with it).
import Database from "better-sqlite3";
import type pg from "pg";
import { MIGRATIONS } from "../migrations.js";
import type { Connection } from "./connection.js";

/** Copied in this order (references first); run_lock is not: the PostgreSQL run has workers instead. */
const TABLES = ["runs", "items", "events", "renditions", "settings", "decisions", "orphan_jobs"] as const;
const WITH_IDS = new Set(["runs", "items", "events", "decisions", "orphan_jobs"]);
const ROWS_PER_INSERT = 500;

export interface ImportSummary {
  rows: Record<string, number>;
}

async function copyTable(connection: Connection, client: pg.PoolClient, sqlite: Database.Database, table: string): Promise<number> {
  const columnsHere = new Set(((await connection.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()", [table], client)).map((r) => r.column_name)));
  const columns = (sqlite.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name).filter((name) => columnsHere.has(name));
  let copied = 0;
  let batch: unknown[][] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const values = batch.map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(", ")})`).join(", ");
    await connection.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${values}`, batch.flat(), client);
    copied += batch.length;
    batch = [];
  };
  for (const row of sqlite.prepare(`SELECT ${columns.join(", ")} FROM ${table}${WITH_IDS.has(table) ? " ORDER BY id" : ""}`).raw().iterate() as Iterable<unknown[]>) {
    batch.push(row);
    if (batch.length >= ROWS_PER_INSERT) await flush();
  }
  await flush();
  if (WITH_IDS.has(table)) await connection.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT MAX(id) FROM ${table}), 1))`, [], client);
  return copied;
}

/**
 * Copies a SQLite database (at the latest schema: opening it with the store migrates it) into
 * an empty PostgreSQL one. Refuses a PostgreSQL database that already holds items.
 */
export async function importSqlite(connection: Connection, sqlitePath: string): Promise<ImportSummary> {
  const sqlite = new Database(sqlitePath, { readonly: true, fileMustExist: true });
  try {
    const version = sqlite.pragma("user_version", { simple: true }) as number;
    if (version !== MIGRATIONS.length) throw new Error(`${sqlitePath} is at schema ${version}, not ${MIGRATIONS.length}: open it with this imgbatch first (imgbatch status)`);
    return await connection.transaction(async (client) => {
      const [held] = await connection.query<{ n: number }>("SELECT COUNT(*)::int AS n FROM items", [], client);
      if ((held?.n ?? 0) > 0) throw new Error("the PostgreSQL database already holds items: migrate into an empty one");
      const rows: Record<string, number> = {};
      for (const table of TABLES) rows[table] = await copyTable(connection, client, sqlite, table);
      return { rows };
    });
  } finally {
    sqlite.close();
  }
}
