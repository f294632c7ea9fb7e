// The store conformance suite (test/store-conformance.ts) on the PostgreSQL backend, against the
// test run's throwaway server (test/global-setup.ts), each test in a schema of its own.
import { PgStore } from "../src/store/postgres/pg-store.js";
import { describeStoreConformance } from "./store-conformance.js";
import { freshSchema } from "./helpers/postgres-server.mjs";

describeStoreConformance("PostgreSQL", {
  open: async (clock) => PgStore.open(await freshSchema(process.env.IMGBATCH_TEST_PG!), { now: () => clock.t }),
});
