// `imgbatch migrate --from jobs/<name>.sqlite --to postgres://…`: a SQLite run moved to
// PostgreSQL, so that several machines can go on with it. Nothing is paid and nothing is lost:
// items, their events and jobs, renditions, review decisions and runs are copied with their ids.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { EXIT, ExitError, errorMessage } from "../errors.js";
import { isDatabaseUrl, moveSqliteToPostgres, openStore, redactUrl } from "../store/index.js";
import type { CommandContext } from "./context.js";
import { lockIsStale } from "./lock.js";

export async function migrateCommand(options: { from?: string; to?: string }, ctx: CommandContext): Promise<number> {
  if (options.from === undefined || options.to === undefined) throw new ExitError(EXIT.usage, "migrate needs --from <the SQLite file> and --to <a postgres:// URL>");
  const from = resolve(options.from);
  if (isDatabaseUrl(options.from) || !existsSync(from)) throw new ExitError(EXIT.usage, `--from ${options.from}: no SQLite database there`);
  if (!isDatabaseUrl(options.to)) throw new ExitError(EXIT.usage, `--to ${options.to}: give a postgres:// URL`);
  const source = await openStore(from, { readonly: true });
  try {
    const holder = await source.lockHolder();
    if (holder && !lockIsStale(holder, ctx.now())) throw new ExitError(EXIT.locked, `a run holds ${from} (pid ${holder.pid} on ${holder.host}): migrate it once that run has ended`);
  } finally {
    await source.close();
  }
  let rows: Record<string, number>;
  try {
    rows = await moveSqliteToPostgres(from, options.to);
  } catch (error) {
    // The URL's password is never quoted (the store words its errors without it).
    throw new ExitError(EXIT.usage, `could not move ${from} to ${redactUrl(options.to)}: ${errorMessage(error)}. The SQLite file is unchanged.`);
  }
  const copied = Object.entries(rows).map(([table, n]) => `${n} ${table}`).join(", ");
  ctx.stdout.write(`moved ${from} to ${redactUrl(options.to)}: ${copied}. Run with --db ${redactUrl(options.to)} (or IMGBATCH_DB) from now on; the SQLite file is left as it was.\n`);
  return EXIT.ok;
}
