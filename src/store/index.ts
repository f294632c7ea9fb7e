// Opening the store a command asks for: a PostgreSQL URL opens the shared backend (several
// machines on one run), anything else is a SQLite file. Each adapter (and its driver) is loaded
// only when asked for: a SQLite run starts without the PostgreSQL driver, and the other way round.
import type { Store } from "./port.js";

export type { Store } from "./port.js";
export { DatabaseUnusableError } from "./database-unusable.js";
export { redactUrl } from "./postgres/redact-url.js";

/** Whether `--db` names a PostgreSQL server rather than a SQLite file. */
export function isDatabaseUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Moves a SQLite run to PostgreSQL: the file is opened (and migrated) first, then every table is
 * copied into the empty PostgreSQL database. Returns the rows copied per table.
 */
export async function moveSqliteToPostgres(sqlitePath: string, url: string): Promise<Record<string, number>> {
  const [{ SqliteStore }, { PgStore }] = await Promise.all([import("./sqlite/sqlite-store.js"), import("./postgres/pg-store.js")]);
  await SqliteStore.open(sqlitePath).close();
  const target = await PgStore.open(url);
  try {
    return (await target.importSqlite(sqlitePath)).rows;
  } finally {
    await target.close();
  }
}

export async function openStore(location: string, options: { readonly?: boolean; now?: () => number } = {}): Promise<Store> {
  if (isDatabaseUrl(location)) {
    const { PgStore } = await import("./postgres/pg-store.js");
    return PgStore.open(location, options.now ? { now: options.now } : {});
  }
  const { SqliteStore } = await import("./sqlite/sqlite-store.js");
  return SqliteStore.open(location, options);
}
