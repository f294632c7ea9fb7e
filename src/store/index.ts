// Opening the store a command asks for: a PostgreSQL URL opens the shared backend (several
// machines on one run), anything else is a SQLite file.
import type { Store } from "./port.js";
import { PgStore } from "./postgres/pg-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

export type { Store } from "./port.js";
export { DatabaseUnusableError } from "./sqlite/sqlite-store.js";
export { redactUrl } from "./postgres/connection.js";

/** Whether `--db` names a PostgreSQL server rather than a SQLite file. */
export function isDatabaseUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

export async function openStore(location: string, options: { readonly?: boolean; now?: () => number } = {}): Promise<Store> {
  if (isDatabaseUrl(location)) return PgStore.open(location, options.now ? { now: options.now } : {});
  return SqliteStore.open(location, options);
}
