// Once per `vitest run`: a throwaway PostgreSQL server for the PostgreSQL store's tests (its URL
// in IMGBATCH_TEST_PG for the test files), stopped when the run ends.
import { startPostgres, type ThrowawayPostgres } from "./helpers/postgres-server.mjs";

let server: ThrowawayPostgres | null = null;

export async function setup(): Promise<void> {
  server = await startPostgres();
  process.env.IMGBATCH_TEST_PG = server.url;
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
