// The PostgreSQL store's connection when the server ends a session mid-transaction (a failover,
// a terminated backend, an idle-in-transaction timeout): the transaction fails with an error,
// the process goes on, and the broken session is not handed out again.
import { describe, expect, it } from "vitest";
import { Connection } from "../src/store/postgres/connection.js";
import { freshSchema, query } from "./helpers/postgres-server.mjs";

describe("a session ended by the server (PostgreSQL)", () => {
  it("fails its transaction without crashing the process, and the pool goes on with a fresh session", async () => {
    const url = await freshSchema(process.env.IMGBATCH_TEST_PG!);
    const connection = new Connection(url);
    try {
      const ended = connection.transaction(async (client) => {
        const [row] = await connection.query<{ pid: number }>("SELECT pg_backend_pid() AS pid", [], client);
        await query(url, "SELECT pg_terminate_backend($1)", [row!.pid]);
        // The server's word that it ended the session arrives while the transaction idles.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return connection.query("SELECT 1 AS one", [], client);
      });
      await expect(ended).rejects.toThrow();
      for (let i = 0; i < 4; i++) expect(await connection.query("SELECT $1::int AS n", [i])).toEqual([{ n: i }]);
    } finally {
      await connection.close();
    }
  }, 30_000);
});
