// Types of postgres-server.mjs (plain JavaScript, shared with the benchmark).
export interface ThrowawayPostgres {
  /** A connection string to a database the caller may create schemas in. */
  url: string;
  /** True for a server named by IMGBATCH_TEST_PG (not started, not stopped here). */
  external: boolean;
  stop(): Promise<void>;
  /** CPU the server has used so far, in ms; null for a server this process did not start. */
  cpuMs(): number | null;
}

export function startPostgres(prefix?: string): Promise<ThrowawayPostgres>;
export function freshSchema(url: string, prefix?: string): Promise<string>;
export function query(url: string, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
