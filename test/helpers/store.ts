// Test shorthand for the store's one write verb: a move with columns and a note. A move to
// `submitting` is durable, as the runner makes it.
import type { Store } from "../../src/store/port.js";
import type { ItemState } from "../../src/store/states.js";
import type { ItemPatch, ItemRecord } from "../../src/store/types.js";

export function move(store: Store, item: ItemRecord, to: ItemState, set: ItemPatch = {}, note: string | null = null): Promise<ItemRecord> {
  return store.write(item, { to, set, note, durable: to === "submitting" });
}
