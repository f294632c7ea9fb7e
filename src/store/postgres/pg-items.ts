// Item writes of the PostgreSQL store: the one write verb (a move, columns, a note) as a single
// statement that checks state, owner and epoch and appends its event; claims taken with
// FOR UPDATE SKIP LOCKED on the database's clock; retry's requeue; remakes; adoption.
import { ClaimLostError, InternalError } from "../../errors.js";
import { redactSecrets } from "../../secrets.js";
import type { ProviderName } from "../../providers/provider.js";
import { IN_FLIGHT_STATES, type InFlightState, type ItemWrite, type RequeueFilter } from "../port.js";
import { retryPatchOf, retryStepOf } from "../retry-step.js";
import { patched, patchSql, toItem } from "../rows.js";
import { canTransition, type ItemState } from "../states.js";
import type { ItemPatch, ItemRecord } from "../types.js";
import type pg from "pg";
import { DB_NOW, numbered, type Connection, type Row } from "./connection.js";

const AT_REST: ReadonlySet<ItemState> = new Set(["queued", "done", "failed", "missing"]);

function redactedPatch(patch: ItemPatch): ItemPatch {
  return patch.errorMessage ? { ...patch, errorMessage: redactSecrets(patch.errorMessage) } : patch;
}

export interface PgItemContext {
  connection: Connection;
  now: () => number;
  /** The injected clock's time for leases, or null: the database's clock judges them. */
  leaseClock: () => number | null;
  /** A test's clock is injected: the times callers pass are the times (else the database's clock). */
  injected: boolean;
  runId: () => number | null;
  rejectedKeys: () => Promise<Set<string>>;
  inStates: (states: readonly ItemState[]) => Promise<ItemRecord[]>;
}

export class PgItems {
  constructor(private readonly ctx: PgItemContext) {}

  /** The lease clock as SQL: the caller's `now` under an injected clock, else the database's. */
  private clock(params: unknown[], now: number | null = this.ctx.leaseClock()): string {
    params.push(this.ctx.injected ? now : null);
    return `COALESCE($${params.length}::bigint, ${DB_NOW})`;
  }

  async write(item: ItemRecord, change: ItemWrite): Promise<ItemRecord> {
    const to = change.to ?? item.state;
    const moves = to !== item.state;
    if (moves && !canTransition(item.state, to)) throw new InternalError(`illegal transition ${item.state} → ${to} for ${item.key}`);
    const patch = redactedPatch(change.set ?? {});
    if (!moves && change.note == null && Object.keys(patch).length === 0) return item;
    const now = this.ctx.now();
    const releases = moves && AT_REST.has(to);
    const { sql, values } = patchSql(patch);
    const params: unknown[] = [to, now, ...values];
    const set = numbered(sql, 3);
    let claim = releases ? ", owner = NULL, lease_until = NULL" : "";
    let leaseCheck = "";
    if (change.renewLeaseMs !== undefined && !releases) {
      const clock = this.clock(params);
      params.push(change.renewLeaseMs);
      claim += `, lease_until = ${clock} + $${params.length}`;
      leaseCheck = ` AND (lease_until IS NULL OR lease_until >= ${clock})`;
    }
    params.push(item.id, item.state, item.owner, item.claimEpoch);
    const n = params.length;
    const writeEvent = moves || change.note != null;
    params.push(this.ctx.runId(), moves || change.note != null ? redactSecrets(change.note ?? null) : null, to === "failed" && moves ? (patch.errorCode ?? null) : null, writeEvent);
    const rows = await this.ctx.connection.query<{ n: number }>(
      `WITH u AS (
         UPDATE items SET state = $1, updated_at = $2${set}${claim}
         WHERE id = $${n - 3} AND state = $${n - 2} AND owner IS NOT DISTINCT FROM $${n - 1} AND claim_epoch = $${n} AND superseded_at IS NULL${leaseCheck}
         RETURNING id
       ), e AS (
         INSERT INTO events (item_id, run_id, at, from_state, to_state, detail, error_code)
         SELECT id, $${n + 1}, $2, $${n - 2}, $1, $${n + 2}, $${n + 3} FROM u WHERE $${n + 4}::boolean
       )
       SELECT COUNT(*)::int AS n FROM u`,
      params,
    );
    if (rows[0]?.n !== 1) await this.refuse(item, to);
    const renewed = change.renewLeaseMs !== undefined && !releases ? { leaseUntil: (this.ctx.leaseClock() ?? now) + change.renewLeaseMs } : {};
    return patched(item, patch, { state: to, updatedAt: now, ...(releases ? { owner: null, leaseUntil: null } : renewed) });
  }

  private async refuse(item: ItemRecord, to: ItemState): Promise<never> {
    const [row] = await this.ctx.connection.query("SELECT state, owner, claim_epoch, lease_until FROM items WHERE id = $1", [item.id]);
    if (row && (row.owner !== item.owner || row.claim_epoch !== item.claimEpoch || row.state === item.state)) {
      throw new ClaimLostError(`${item.key} is no longer ${item.owner ?? "unclaimed"}'s (claim ${item.claimEpoch}; now ${String(row.owner)}'s, claim ${String(row.claim_epoch)}, or its lease ran out): its write (→ ${to}) was refused`);
    }
    throw new InternalError(`${item.key} is no longer ${item.state}; transition to ${to} refused`);
  }

  /** Claims the rows `where` picks (locked, skipping those another transaction holds): owner set, epoch bumped. */
  private async claim(where: string, params: unknown[], worker: string, leaseMs: number, now: number, client?: pg.PoolClient): Promise<ItemRecord[]> {
    const clock = this.clock(params, now);
    params.push(worker, leaseMs);
    const rows = await this.ctx.connection.query(
      `UPDATE items SET owner = $${params.length - 1}, claim_epoch = claim_epoch + 1, lease_until = ${clock} + $${params.length}
       WHERE id IN (${where} FOR UPDATE SKIP LOCKED) RETURNING *`,
      params,
      client,
    );
    return rows.map(toItem);
  }

  async claimQueued(worker: string, now: number, limit: number, leaseUntil: number, concurrency?: number): Promise<ItemRecord[]> {
    const claimSome = async (count: number): Promise<ItemRecord[]> => {
      const params: unknown[] = [now];
      const clock = this.clock(params, now);
      params.push(count);
      const where = `SELECT id FROM items WHERE superseded_at IS NULL AND in_manifest = 1 AND state = 'queued' AND next_attempt_at <= $1 AND (owner IS NULL OR lease_until < ${clock}) ORDER BY next_attempt_at, id LIMIT $${params.length}`;
      return (await this.claim(where, params, worker, leaseUntil - now, now)).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
    };
    if (concurrency === undefined) return claimSome(limit);
    // Every worker's items claimed or at the service count against the one --concurrency, counted
    // and claimed under a lock (two workers counting at once could both see the last free slot).
    const rows = await this.ctx.connection.query("SELECT * FROM imgbatch_claim_queued($1, $2, $3, $4, $5, $6)", [worker, now, this.ctx.injected ? now : null, limit, concurrency, leaseUntil - now]);
    return rows.map(toItem).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
  }

  async claimInFlight(worker: string, now: number, leaseUntil: number, states: readonly InFlightState[] = IN_FLIGHT_STATES): Promise<ItemRecord[]> {
    const params: unknown[] = [states];
    const clock = this.clock(params, now);
    const where = `SELECT id FROM items WHERE superseded_at IS NULL AND in_manifest = 1 AND state = ANY($1::text[]) AND (owner IS NULL OR lease_until < ${clock}) ORDER BY id`;
    return (await this.claim(where, params, worker, leaseUntil - now, now)).sort((a, b) => a.id - b.id);
  }

  async claimAtRest(id: number, worker: string, now: number, leaseUntil: number): Promise<ItemRecord | null> {
    const params: unknown[] = [id];
    const clock = this.clock(params, now);
    const where = `SELECT id FROM items WHERE id = $1 AND superseded_at IS NULL AND state IN ('done', 'missing') AND (owner IS NULL OR lease_until < ${clock})`;
    return (await this.claim(where, params, worker, leaseUntil - now, now))[0] ?? null;
  }

  async releaseItem(item: ItemRecord): Promise<void> {
    const rows = await this.ctx.connection.query("UPDATE items SET owner = NULL, lease_until = NULL WHERE id = $1 AND owner IS NOT DISTINCT FROM $2 AND claim_epoch = $3 RETURNING id", [item.id, item.owner, item.claimEpoch]);
    if (rows.length !== 1) throw new ClaimLostError(`${item.key} is no longer ${item.owner ?? "unclaimed"}'s: its release was refused`);
  }

  async renewLeases(worker: string, leaseMs: number): Promise<void> {
    const params: unknown[] = [];
    const clock = this.clock(params);
    params.push(leaseMs, worker);
    await this.ctx.connection.query(`UPDATE items SET lease_until = ${clock} + $2 WHERE owner = $3`, params);
  }

  async releaseClaims(worker: string): Promise<void> {
    await this.ctx.connection.query("UPDATE items SET owner = NULL, lease_until = NULL WHERE owner = $1", [worker]);
  }

  async requeue(filter: RequeueFilter): Promise<ItemRecord[]> {
    const byRowOrKey = (i: ItemRecord) => !(filter.rowIds || filter.keys) || (filter.rowIds?.some((r) => r === i.rowId || r === i.key) ?? false) || (filter.keys?.includes(i.key) ?? false);
    if (filter.rejected) {
      const rejected = await this.ctx.rejectedKeys();
      const chosen = (await this.ctx.inStates(["done"])).filter((i) => rejected.has(i.key) && byRowOrKey(i));
      const remade: ItemRecord[] = [];
      for (const item of chosen) remade.push(await this.remake(item, "rejected in review: made anew"));
      return remade;
    }
    let chosen = (await this.ctx.inStates(filter.states ?? ["failed"])).filter(byRowOrKey);
    if (filter.codes) chosen = chosen.filter((i) => i.errorCode !== null && filter.codes!.includes(i.errorCode));
    const requeued: ItemRecord[] = [];
    for (const item of chosen) {
      const step = retryStepOf(item);
      const set = retryPatchOf(item, step.to, this.ctx.now());
      requeued.push(await this.write(item, { to: step.to, set, note: step.detail }));
    }
    return requeued;
  }

  async remake(item: ItemRecord, why: string, carry: { qcRetries?: number } = {}): Promise<ItemRecord> {
    const now = this.ctx.now();
    return this.ctx.connection.transaction(async (client) => {
      const q = (sql: string, params: unknown[]) => this.ctx.connection.query(sql, params, client);
      const superseded = await q("UPDATE items SET superseded_at = $1, updated_at = $1, owner = NULL, lease_until = NULL WHERE id = $2 AND state = 'done' AND superseded_at IS NULL RETURNING id", [now, item.id]);
      if (superseded.length !== 1) throw new InternalError(`${item.key} is no longer done; remake refused`);
      await q("INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) VALUES ($1, $2, $3, 'done', 'done', $4)", [item.id, this.ctx.runId(), now, `superseded: ${why}`]);
      const [row] = await q(
        `INSERT INTO items (key, row_id, source, provider, request_json, request_hash, state, qc_retries, in_manifest, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, 1, $8, $8) RETURNING *`,
        [item.key, item.rowId, item.source, item.provider, JSON.stringify(item.request), item.requestHash, carry.qcRetries ?? item.qcRetries, now],
      );
      await q("INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) VALUES ($1, $2, $3, NULL, 'queued', $4)", [(row as Row).id, this.ctx.runId(), now, why]);
      return toItem(row as Row);
    });
  }

  async adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): Promise<ItemRecord> {
    const now = this.ctx.now();
    const patch = redactedPatch(adopted.patch);
    const { sql, values } = patchSql(patch);
    const params = [adopted.provider, adopted.requestHash, now, ...values, item.id, this.ctx.runId(), detail];
    const n = params.length;
    const rows = await this.ctx.connection.query<{ n: number }>(
      `WITH u AS (
         UPDATE items SET state = 'done', provider = $1, request_hash = $2, updated_at = $3, owner = NULL, lease_until = NULL${numbered(sql, 4)}
         WHERE id = $${n - 2} AND state = 'queued' AND superseded_at IS NULL RETURNING id
       ), e AS (
         INSERT INTO events (item_id, run_id, at, from_state, to_state, detail) SELECT id, $${n - 1}, $3, 'queued', 'done', $${n} FROM u
       )
       SELECT COUNT(*)::int AS n FROM u`,
      params,
    );
    if (rows[0]?.n !== 1) throw new InternalError(`${item.key} is no longer queued; adoption refused`);
    return patched({ ...item, provider: adopted.provider, requestHash: adopted.requestHash }, patch, { state: "done", updatedAt: now, owner: null, leaseUntil: null });
  }
}

/**
 * The key's token bucket and pause, on the database's clock: one bucket for every worker of the
 * key. Returns 0 when a token was taken, else the wait before one can be.
 */
export async function seedKeyPg(connection: Connection, keyHash: string, burst: number): Promise<void> {
  await connection.query(`INSERT INTO key_limits (key_hash, tokens, refilled_at) VALUES ($1, $2, ${DB_NOW}) ON CONFLICT (key_hash) DO NOTHING`, [keyHash, burst]);
}

export async function takeRequestTokenPg(connection: Connection, keyHash: string, perMinute: number, burst: number): Promise<number> {
  const [row] = await connection.query<{ wait: number }>(
    `WITH now AS (SELECT ${DB_NOW} AS t),
     cur AS (
       SELECT k.key_hash, LEAST($3::float8, k.tokens + GREATEST(0, now.t - k.refilled_at) * $2::float8 / 60000.0) AS tokens, k.paused_until, now.t
       FROM key_limits k, now WHERE k.key_hash = $1 FOR UPDATE
     ),
     took AS (
       UPDATE key_limits k SET tokens = cur.tokens - 1, refilled_at = cur.t FROM cur
       WHERE k.key_hash = cur.key_hash AND cur.tokens >= 1 AND cur.paused_until <= cur.t RETURNING 1
     )
     SELECT CASE WHEN EXISTS (SELECT 1 FROM took) THEN 0
                 WHEN (SELECT paused_until FROM cur) > (SELECT t FROM cur) THEN (SELECT paused_until - t FROM cur)
                 ELSE CEIL((1 - COALESCE((SELECT tokens FROM cur), $3::float8)) * 60000.0 / $2::float8) END::bigint AS wait`,
    [keyHash, perMinute, burst],
  );
  return Math.max(0, row?.wait ?? 0);
}

export async function pauseKeyPg(connection: Connection, keyHash: string, pauseMs: number): Promise<void> {
  await connection.query(
    `INSERT INTO key_limits (key_hash, tokens, refilled_at, paused_until) VALUES ($1, 0, ${DB_NOW}, ${DB_NOW} + $2)
     ON CONFLICT (key_hash) DO UPDATE SET paused_until = GREATEST(key_limits.paused_until, ${DB_NOW} + $2)`,
    [keyHash, pauseMs],
  );
}
