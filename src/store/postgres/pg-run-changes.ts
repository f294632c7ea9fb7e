// Word between the workers of a shared run: LISTEN/NOTIFY on one channel, the payload the run's
// schema. A worker that ends (or lets its items go) wakes the idle ones at once instead of at
// their next look; a lost notice costs only that wait, as the looks go on underneath.
import pg from "pg";
import type { RunChanges } from "../port.js";
import { withoutPassword, type Connection } from "./connection.js";

const CHANNEL = "imgbatch_run_changed";

export class PgRunChanges implements RunChanges {
  constructor(private readonly connection: Connection) {}

  /** One connection of its own, outside the pool: a listening client cannot be shared. */
  async listen(listener: () => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.connection.url });
    // A dropped listener only loses wake-ups; the worker's looks go on.
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ schema: string }>("SELECT current_schema() AS schema");
      const schema = rows[0]?.schema;
      client.on("notification", (notice) => {
        if (notice.channel === CHANNEL && notice.payload === schema) listener();
      });
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw withoutPassword(error, this.connection.url);
    }
    return () => client.end().catch(() => {});
  }

  async announce(): Promise<void> {
    await this.connection.query("SELECT pg_notify($1, current_schema())", [CHANNEL]);
  }
}
