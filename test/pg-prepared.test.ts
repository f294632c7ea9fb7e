// The PostgreSQL store's statements with parameters are prepared once per connection (parsed and
// planned there once), and texts built from data cannot grow a connection's cache without end.
import { describe, expect, it } from "vitest";
import { Connection } from "../src/store/postgres/connection.js";
import { freshSchema } from "./helpers/postgres-server.mjs";

describe("prepared statements (PostgreSQL)", () => {
  it("a statement run again on a connection is the one prepared there, not parsed anew", async () => {
    const connection = new Connection(await freshSchema(process.env.IMGBATCH_TEST_PG!));
    try {
      await connection.transaction(async (client) => {
        for (let i = 0; i < 3; i++) expect(await connection.query("SELECT $1::int + 1 AS n", [i], client)).toEqual([{ n: i + 1 }]);
        const prepared = await connection.query<{ statement: string }>("SELECT statement FROM pg_prepared_statements", [], client);
        expect(prepared.filter((p) => p.statement === "SELECT $1::int + 1 AS n")).toHaveLength(1);
      });
    } finally {
      await connection.close();
    }
  }, 30_000);

  it("prepares at most 200 texts per connection, and runs the others unprepared", async () => {
    const connection = new Connection(await freshSchema(process.env.IMGBATCH_TEST_PG!));
    try {
      await connection.transaction(async (client) => {
        for (let i = 0; i < 250; i++) expect(await connection.query(`SELECT $1::int AS n, ${i} AS text_${i}`, [i], client)).toHaveLength(1);
        const [{ n }] = (await connection.query<{ n: number }>("SELECT COUNT(*)::int AS n FROM pg_prepared_statements", [], client)) as [{ n: number }];
        expect(n).toBeGreaterThan(0);
        expect(n).toBeLessThanOrEqual(200);
      });
    } finally {
      await connection.close();
    }
  }, 30_000);
});
