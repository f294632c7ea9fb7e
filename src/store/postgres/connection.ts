// The PostgreSQL store's connection: a pool, queries with numbered parameters, transactions, and
// the database's clock for leases. The connection string's password never leaves this file:
// errors are re-worded without it (withoutPassword).
import pg from "pg";
import { redactSecrets } from "../../secrets.js";

// BIGINT columns hold times in ms and ids: well within a double's exact range.
pg.types.setTypeParser(20, (value: string) => Number(value));

export type Row = Record<string, unknown>;

/** An error of the driver with the password taken out of its message, whatever it quotes. */
export function withoutPassword(error: unknown, url: string): Error {
  const password = (() => {
    try {
      return decodeURIComponent(new URL(url).password);
    } catch {
      return "";
    }
  })();
  const message = error instanceof Error ? error.message : String(error);
  const clean = redactSecrets(password ? message.split(password).join("***") : message);
  return Object.assign(new Error(clean), { code: (error as { code?: unknown }).code, name: error instanceof Error ? error.name : "Error" });
}

/** The database's clock in ms: leases are judged by one clock, whichever host asks. */
export const DB_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/** `?` placeholders (as rows.ts's patchSql writes them) numbered from `$start`. */
export function numbered(sql: string, start: number): string {
  let n = start;
  return sql.replace(/\?/g, () => `$${n++}`);
}

/**
 * Statements with parameters are prepared, by text, once per connection: parsed and planned
 * there once, not on every call. Bounded, so that texts built from data (an import's batches)
 * cannot grow every connection's cache without end; past the bound a text runs unprepared.
 */
const PREPARED_AT_MOST = 200;
const statementNames = new Map<string, string>();

function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < PREPARED_AT_MOST) statementNames.set(sql, (name = `imgbatch_${statementNames.size + 1}`));
  return name;
}

export class Connection {
  readonly pool: pg.Pool;

  constructor(readonly url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 4, idleTimeoutMillis: 10_000 });
    // An idle client's error (the server restarted) must not crash the process; the next query reports it.
    this.pool.on("error", () => {});
  }

  async query<T extends Row = Row>(sql: string, params: unknown[] = [], client?: pg.PoolClient): Promise<T[]> {
    try {
      // Without parameters, the simple protocol: it also carries several statements (migrations).
      const config = params.length > 0 ? { text: sql, values: params, name: statementName(sql) } : { text: sql };
      return (await (client ?? this.pool).query<T>(config)).rows;
    } catch (error) {
      throw withoutPassword(error, this.url);
    }
  }

  /** Runs `work` in one transaction; `durable: false` lets its commit skip the wait for the WAL flush. */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, options: { durable?: boolean } = {}): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw withoutPassword(error, this.url);
    }
    // A session the server ends while it is checked out (a failover, a terminated backend) must
    // not crash the process: its next query fails instead, and it is not handed out again.
    let broken = false;
    const onError = () => (broken = true);
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      if (options.durable === false) await client.query("SET LOCAL synchronous_commit TO OFF");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error instanceof Error && !(error as { code?: unknown }).code ? error : withoutPassword(error, this.url);
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
