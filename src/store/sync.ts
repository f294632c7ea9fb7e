// Planning what a manifest does to the stored items: pure, tested with plain tables.
import type { PlannedItem } from "../manifest/types.js";
import type { ImageRequest, ProviderName } from "../providers/provider.js";
import type { ItemState } from "./states.js";

export interface StoredItemDigest {
  id: number;
  key: string;
  requestHash: string;
  inManifest: boolean;
  /** Who made (or is making) the record; absent in tables that do not care. */
  provider?: ProviderName;
  state?: ItemState;
  /**
   * A job the record holds that may still give an image: one that finished and was charged, or
   * one that could not be followed (JOB_TIMEOUT, POLL_FAILED). A job the service failed is not one.
   */
  jobId?: string | null;
}

export interface PlannedWithHash {
  item: PlannedItem;
  requestHash: string;
}

/** Why a live record is superseded: its request changed, or only the provider to make it with. */
export type SupersedeReason = "request" | "provider";

export interface SupersedeEntry {
  id: number;
  key: string;
  oldHash: string;
  newHash: string;
  reason: SupersedeReason;
  oldProvider: ProviderName | null;
  oldState: ItemState | null;
  oldJobId: string | null;
}

export interface SyncPlan {
  /** New keys, and keys whose request changed (their old record is superseded). */
  insert: PlannedWithHash[];
  /** Live records whose request changed: kept for history, no longer worked on. */
  supersede: SupersedeEntry[];
  /** Live records whose key left the manifest: left alone, shown by status. */
  markRemoved: number[];
  /** Records whose key came back into the manifest. */
  markPresent: number[];
  unchanged: number;
}

/** The hash a request would have if `provider` made it (manifest/slug.ts requestHash). */
export type HashWith = (request: ImageRequest, provider: ProviderName) => string;

export function planSync(planned: readonly PlannedWithHash[], stored: readonly StoredItemDigest[], hashWith?: HashWith): SyncPlan {
  const byKey = new Map(stored.map((s) => [s.key, s]));
  const plan: SyncPlan = { insert: [], supersede: [], markRemoved: [], markPresent: [], unchanged: 0 };
  const plannedKeys = new Set<string>();
  for (const entry of planned) {
    plannedKeys.add(entry.item.key);
    const existing = byKey.get(entry.item.key);
    if (!existing) {
      plan.insert.push(entry);
    } else if (existing.requestHash !== entry.requestHash) {
      // Same request under the stored record's provider: only the provider changed.
      const providerOnly = existing.provider !== undefined && hashWith !== undefined && hashWith(entry.item.request, existing.provider) === existing.requestHash;
      plan.supersede.push({
        id: existing.id,
        key: existing.key,
        oldHash: existing.requestHash,
        newHash: entry.requestHash,
        reason: providerOnly ? "provider" : "request",
        oldProvider: existing.provider ?? null,
        oldState: existing.state ?? null,
        oldJobId: existing.jobId ?? null,
      });
      plan.insert.push(entry);
    } else {
      if (!existing.inManifest) plan.markPresent.push(existing.id);
      plan.unchanged++;
    }
  }
  for (const s of stored) {
    if (!plannedKeys.has(s.key) && s.inManifest) plan.markRemoved.push(s.id);
  }
  return plan;
}

/** States whose record holds a paid image, or a job the service may charge for. */
const PAID_STATES: readonly ItemState[] = ["submitting", "running", "downloading", "done", "missing"];

/**
 * Whether superseding this record would throw away a paying provider's image (or job) only
 * because another provider was chosen: a run does that only when told so explicitly.
 */
export function replacesPaidImage(entry: SupersedeEntry): boolean {
  return entry.reason === "provider" && entry.oldProvider !== null && entry.oldProvider !== "local" && entry.oldState !== null && (PAID_STATES.includes(entry.oldState) || holdsJob(entry));
}

/** A failed record that still holds a job (JOB_TIMEOUT, POLL_FAILED, a download that failed): it may finish, or did, and is charged. */
function holdsJob(entry: SupersedeEntry): boolean {
  return entry.oldState === "failed" && entry.oldJobId !== null;
}

/** States of a record whose job is at the service: paid, or about to be, and not delivered yet. */
const IN_FLIGHT_STATES: readonly ItemState[] = ["submitting", "running", "downloading"];

/** Whether superseding this record (its request changed) would leave a paying provider's job undelivered. */
export function abandonsPaidJob(entry: SupersedeEntry): boolean {
  return entry.reason === "request" && entry.oldProvider !== null && entry.oldProvider !== "local" && entry.oldState !== null && (IN_FLIGHT_STATES.includes(entry.oldState) || holdsJob(entry));
}

/**
 * A sync refused (nothing was written): it would remake paid images with another provider
 * ("provider"), or drop paid jobs still at the service because their request changed ("in-flight").
 */
export class PaidImagesWouldBeReplaced extends Error {
  override name = "PaidImagesWouldBeReplaced";
  constructor(
    readonly kind: "provider" | "in-flight",
    /** Counts by the provider that made them and their state, e.g. `pictory` → `done` → 7. */
    readonly counts: ReadonlyMap<ProviderName, ReadonlyMap<ItemState, number>>,
    readonly examples: readonly string[],
  ) {
    super(`${[...counts.values()].reduce((sum, byState) => sum + [...byState.values()].reduce((a, b) => a + b, 0), 0)} paid item(s) would be made anew by another provider`);
  }

  get total(): number {
    let total = 0;
    for (const byState of this.counts.values()) for (const n of byState.values()) total += n;
    return total;
  }
}

/** Records of one kind a sync would wrongly replace, by provider and state, with a few keys. */
class Refused {
  readonly counts = new Map<ProviderName, Map<ItemState, number>>();
  readonly examples: string[] = [];

  add(entry: SupersedeEntry): void {
    const byState = this.counts.get(entry.oldProvider!) ?? new Map<ItemState, number>();
    byState.set(entry.oldState!, (byState.get(entry.oldState!) ?? 0) + 1);
    this.counts.set(entry.oldProvider!, byState);
    if (this.examples.length < 5) this.examples.push(entry.key);
  }
}

/** Gathers the records a sync would wrongly replace, then throws them as one refusal. */
export class PaidReplacementCheck {
  private readonly switches = new Refused();
  private readonly inFlight = new Refused();

  constructor(private readonly allowed: { providerSwitch: boolean; abandonInFlight: boolean }) {}

  check(entry: SupersedeEntry): void {
    if (!this.allowed.providerSwitch && replacesPaidImage(entry)) this.switches.add(entry);
    else if (!this.allowed.abandonInFlight && abandonsPaidJob(entry)) this.inFlight.add(entry);
  }

  throwIfAny(): void {
    if (this.switches.counts.size > 0) throw new PaidImagesWouldBeReplaced("provider", this.switches.counts, this.switches.examples);
    if (this.inFlight.counts.size > 0) throw new PaidImagesWouldBeReplaced("in-flight", this.inFlight.counts, this.inFlight.examples);
  }
}

/** What a sync did, for the run's log. */
export interface SyncSummary {
  inserted: number;
  /** Live records whose request changed: kept for history, no longer worked on. */
  supersede: SyncPlan["supersede"];
  /** Live records whose key left the manifest (left alone, shown by status). */
  removed: number;
  /** Records whose key came back into the manifest. */
  returned: number;
  /**
   * Done records brought back because the manifest asks for their request again (A → B → A):
   * nothing is made anew; their files are restored from superseded/.
   */
  revived: { id: number; key: string; sha256: string | null }[];
  unchanged: number;
}
