// The store conformance suite (test/store-conformance.ts) on the SQLite backend.
import { join } from "node:path";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { describeStoreConformance } from "./store-conformance.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

describeStoreConformance("SQLite", {
  open: (clock) => Store.open(join(tempDir(), "jobs", "m.sqlite"), { now: () => clock.t }),
});
