// Opening the store a command asks for. SQLite is the only backend so far; a networked one is
// chosen here by its URL, behind the same port.
import type { Store } from "./port.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

export type { Store } from "./port.js";
export { DatabaseUnusableError } from "./sqlite/sqlite-store.js";

export async function openStore(location: string, options: { readonly?: boolean; now?: () => number } = {}): Promise<Store> {
  return SqliteStore.open(location, options);
}
