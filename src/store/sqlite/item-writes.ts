// Item writes of the SQLite store: the one write verb (a move, columns, a note), claims (owner,
// epoch, lease), retry's requeue, adoption from sidecars, renditions. Each write and its event
// go in one savepoint of the turn's commit group (commit-groups.ts).
import { ClaimLostError, InternalError } from "../../errors.js";
import { redactSecrets } from "../../secrets.js";
import type { ProviderName } from "../../providers/provider.js";
import { IN_FLIGHT_STATES, type InFlightState, type ItemWrite, type RequeueFilter } from "../port.js";
import { retryPatchOf, retryStepOf } from "../retry-step.js";
import { patched, patchSql, type Row, toItem } from "../rows.js";
import { canTransition, type ItemState } from "../states.js";
import type { ItemPatch, ItemRecord, RenditionRecord } from "../types.js";
import type { WriteCommit } from "./commit-groups.js";
import type { Statement } from "./reads.js";

const LIVE = "superseded_at IS NULL";

/** States in which nobody works an item: a move there lets its claim go. */
const AT_REST: ReadonlySet<ItemState> = new Set(["queued", "done", "failed", "missing"]);


/** A stored message may quote the service, which may echo the key: masked again where it is written (secrets.ts). */
function redactedPatch(patch: ItemPatch): ItemPatch {
  return patch.errorMessage ? { ...patch, errorMessage: redactSecrets(patch.errorMessage) } : patch;
}

export interface ItemWriteContext {
  statement: Statement;
  beforeWrite: (commit: WriteCommit) => void;
  atomically: <T>(work: () => T) => T;
  /** A write of the turn's commit group: atomic with its group (commit-groups.ts writeInGroup). */
  inGroup: <T>(work: () => T) => T;
  now: () => number;
  runId: () => number | null;
  inStates: (states: readonly ItemState[]) => ItemRecord[];
  /** Keys whose current image was rejected in review. */
  rejectedKeys: () => Set<string>;
}

export class ItemWrites {
  constructor(private readonly ctx: ItemWriteContext) {}

  /**
   * The one write: checks the move, and that the row is still as the caller saw it (state,
   * owner, epoch); writes the row and its event together. A `durable` write commits with an
   * fsync (the caller waits for the group: CommitGroups.committed).
   */
  write(item: ItemRecord, change: ItemWrite): ItemRecord {
    const to = change.to ?? item.state;
    const moves = to !== item.state;
    if (moves && !canTransition(item.state, to)) throw new InternalError(`illegal transition ${item.state} → ${to} for ${item.key}`);
    const patch = redactedPatch(change.set ?? {});
    if (!moves && change.note == null && Object.keys(patch).length === 0) return item;
    this.ctx.beforeWrite(change.durable ? "grouped-fsync" : "grouped");
    return this.ctx.inGroup(() => {
      const now = this.ctx.now();
      const releases = moves && AT_REST.has(to);
      const { sql, values } = patchSql(patch);
      const renew = change.renewLeaseMs !== undefined && !releases;
      const claim = releases ? ", owner = NULL, lease_until = NULL" : renew ? ", lease_until = ?" : "";
      const leaseCheck = renew ? " AND (lease_until IS NULL OR lease_until >= ?)" : "";
      const result = this.ctx
        .statement(`UPDATE items SET state = ?, updated_at = ?${sql}${claim} WHERE id = ? AND state = ? AND owner IS ? AND claim_epoch = ? AND ${LIVE}${leaseCheck}`)
        .run(to, now, ...values, ...(renew ? [now + change.renewLeaseMs!] : []), item.id, item.state, item.owner, item.claimEpoch, ...(renew ? [now] : []));
      if (result.changes !== 1) this.refuse(item, to);
      if (moves || change.note != null) this.appendEvent(item.id, item.state, to, change.note ?? null, now, to === "failed" && moves ? (patch.errorCode ?? null) : null);
      return patched(item, patch, { state: to, updatedAt: now, ...(releases ? { owner: null, leaseUntil: null } : renew ? { leaseUntil: now + change.renewLeaseMs! } : {}) });
    });
  }

  /** Why a write matched no row: the claim moved on (another worker, a later claim), or a bug. */
  private refuse(item: ItemRecord, to: ItemState): never {
    const row = this.ctx.statement(`SELECT state, owner, claim_epoch, superseded_at FROM items WHERE id = ?`).get(item.id) as Row | undefined;
    // Same state, owner and epoch: the lease had run out (a renewing write).
    if (row && (row.owner !== item.owner || row.claim_epoch !== item.claimEpoch || row.state === item.state)) {
      throw new ClaimLostError(`${item.key} is no longer ${item.owner ?? "unclaimed"}'s (claim ${item.claimEpoch}; now ${String(row.owner)}'s, claim ${String(row.claim_epoch)}): its write (→ ${to}) was refused`);
    }
    throw new InternalError(`${item.key} is no longer ${item.state}; transition to ${to} refused`);
  }

  private appendEvent(itemId: number, from: ItemState | null, to: ItemState, detail: string | null, at: number, errorCode: string | null = null): void {
    this.ctx.statement(`INSERT INTO events (item_id, run_id, at, from_state, to_state, detail, error_code) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(itemId, this.ctx.runId(), at, from, to, redactSecrets(detail), errorCode);
  }

  // ---- claims ----------------------------------------------------------------------

  /** Claims rows chosen by `where` (a subquery's condition on `items`): owner set, epoch bumped. */
  private claimWhere(where: string, params: unknown[], worker: string, leaseUntil: number): ItemRecord[] {
    this.ctx.beforeWrite("grouped");
    const rows = this.ctx
      .statement(`UPDATE items SET owner = ?, claim_epoch = claim_epoch + 1, lease_until = ? WHERE id IN (${where}) RETURNING *`)
      .all(worker, leaseUntil, ...params) as Row[];
    return rows.map(toItem);
  }

  /** Eligible queued items, longest eligible first, then in manifest order; none held by a live claim. */
  claimQueued(worker: string, now: number, limit: number, leaseUntil: number): ItemRecord[] {
    const where = `SELECT id FROM items WHERE ${LIVE} AND in_manifest = 1 AND state = 'queued' AND next_attempt_at <= ? AND (owner IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id LIMIT ?`;
    return this.claimWhere(where, [now, now, limit], worker, leaseUntil).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
  }

  claimInFlight(worker: string, now: number, leaseUntil: number, states: readonly InFlightState[] = IN_FLIGHT_STATES): ItemRecord[] {
    const where = `SELECT id FROM items WHERE ${LIVE} AND in_manifest = 1 AND state IN (SELECT value FROM json_each(?)) AND (owner IS NULL OR lease_until < ?)`;
    return this.claimWhere(where, [JSON.stringify(states), now], worker, leaseUntil).sort((a, b) => a.id - b.id);
  }

  releaseItem(item: ItemRecord): void {
    this.ctx.beforeWrite("grouped");
    const result = this.ctx.statement(`UPDATE items SET owner = NULL, lease_until = NULL WHERE id = ? AND owner IS ? AND claim_epoch = ?`).run(item.id, item.owner, item.claimEpoch);
    if (result.changes !== 1) throw new ClaimLostError(`${item.key} is no longer ${item.owner ?? "unclaimed"}'s: its release was refused`);
  }

  claimAtRest(id: number, worker: string, now: number, leaseUntil: number): ItemRecord | null {
    const where = `SELECT id FROM items WHERE id = ? AND ${LIVE} AND state IN ('done', 'missing') AND (owner IS NULL OR lease_until < ?)`;
    return this.claimWhere(where, [id, now], worker, leaseUntil)[0] ?? null;
  }

  renewLeases(worker: string, leaseUntil: number): void {
    this.ctx.beforeWrite("grouped");
    this.ctx.statement(`UPDATE items SET lease_until = ? WHERE owner = ?`).run(leaseUntil, worker);
  }

  releaseClaims(worker: string): void {
    this.ctx.beforeWrite("fsync");
    this.ctx.statement(`UPDATE items SET owner = NULL, lease_until = NULL WHERE owner = ?`).run(worker);
  }

  // ---- retry, adoption, renditions ---------------------------------------------------

  /**
   * Puts chosen failed (or missing) items back with fresh attempts, each by its retry step.
   * Filters combine: rows or keys (either matches; a key given as a row counts, as people copy
   * what status shows), then codes.
   */
  requeue(filter: RequeueFilter): ItemRecord[] {
    this.ctx.beforeWrite("fsync");
    return this.ctx.atomically(() => {
      if (filter.rejected) {
        const rejected = this.ctx.rejectedKeys();
        const chosen = this.ctx.inStates(["done"]).filter((i) => rejected.has(i.key) && (!(filter.rowIds || filter.keys) || (filter.rowIds?.some((r) => r === i.rowId || r === i.key) ?? false) || (filter.keys?.includes(i.key) ?? false)));
        return chosen.map((item) => this.remake(item, "rejected in review: made anew"));
      }
      let chosen = this.ctx.inStates(filter.states ?? ["failed"]);
      if (filter.rowIds || filter.keys) chosen = chosen.filter((i) => (filter.rowIds?.some((r) => r === i.rowId || r === i.key) ?? false) || (filter.keys?.includes(i.key) ?? false));
      if (filter.codes) chosen = chosen.filter((i) => i.errorCode !== null && filter.codes!.includes(i.errorCode));
      return chosen.map((item) => {
        const step = retryStepOf(item);
        const set = retryPatchOf(item, step.to, this.ctx.now());
        return this.write(item, { to: step.to, set, note: step.detail });
      });
    });
  }

  /**
   * A delivered item made anew (rejected in review, or a quality gate asked for it): its record
   * is kept, superseded, with its image's decisions and credits; a fresh queued record of the same
   * request takes its key. `qcRetries` carries the gates' remakes so far.
   */
  remake(item: ItemRecord, why: string, carry: { qcRetries?: number } = {}): ItemRecord {
    this.ctx.beforeWrite("grouped");
    return this.ctx.atomically(() => {
      const now = this.ctx.now();
      const superseded = this.ctx.statement(`UPDATE items SET superseded_at = ?, updated_at = ?, owner = NULL, lease_until = NULL WHERE id = ? AND state = 'done' AND ${LIVE}`).run(now, now, item.id);
      if (superseded.changes !== 1) throw new InternalError(`${item.key} is no longer done; remake refused`);
      this.appendEvent(item.id, "done", "done", `superseded: ${why}`, now);
      const id = Number(
        this.ctx
          .statement(`INSERT INTO items (key, row_id, source, provider, request_json, request_hash, state, qc_retries, in_manifest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, 1, ?, ?)`)
          .run(item.key, item.rowId, item.source, item.provider, JSON.stringify(item.request), item.requestHash, carry.qcRetries ?? item.qcRetries, now, now).lastInsertRowid,
      );
      this.appendEvent(id, null, "queued", why, now);
      return toItem(this.ctx.statement(`SELECT * FROM items WHERE id = ?`).get(id) as Row);
    });
  }

  /**
   * Records a queued item as done with an image already on disk (adopted from its sidecar
   * after the database was lost): no request to any service. `provider` and `requestHash`
   * are the sidecar's, so a later run with another provider sees who made it.
   */
  adoptDelivered(item: ItemRecord, adopted: { provider: ProviderName; requestHash: string; patch: ItemPatch }, detail: string): ItemRecord {
    this.ctx.beforeWrite("grouped");
    return this.ctx.atomically(() => {
      const now = this.ctx.now();
      const patch = redactedPatch(adopted.patch);
      const { sql, values } = patchSql(patch);
      const result = this.ctx
        .statement(`UPDATE items SET state = 'done', provider = ?, request_hash = ?, updated_at = ?, owner = NULL, lease_until = NULL${sql} WHERE id = ? AND state = 'queued' AND ${LIVE}`)
        .run(adopted.provider, adopted.requestHash, now, ...values, item.id);
      if (result.changes !== 1) throw new InternalError(`${item.key} is no longer queued; adoption refused`);
      this.appendEvent(item.id, "queued", "done", detail, now);
      return patched({ ...item, provider: adopted.provider, requestHash: adopted.requestHash }, patch, { state: "done", updatedAt: now, owner: null, leaseUntil: null });
    });
  }

  saveRendition(r: RenditionRecord): void {
    this.ctx.beforeWrite("grouped");
    this.ctx.statement(`INSERT OR REPLACE INTO renditions (item_id, name, settings_hash, path, width, height, made_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(r.itemId, r.name, r.settingsHash, r.path, r.width, r.height, this.ctx.now());
  }
}
