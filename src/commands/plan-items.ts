// What `imgbatch run` would do with a manifest's items, counted without doing it (imgbatch plan):
// pure, fed the manifest's items a chunk at a time with the stored records of the same keys, as
// the sync itself reads them (store/sync.ts planSync decides what is changed, as in a run).
import type { ImageModel } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import { roundCredits } from "../report/format.js";
import { priceOfModel } from "../runner/price.js";
import type { PlanDigests } from "../store/port.js";
import { abandonsPaidJob, planSync, replacesPaidImage, type HashWith, type PlannedWithHash } from "../store/sync.js";

/** Where each of the manifest's items stands, as a run would find it. */
export interface PlanCounts {
  items: number;
  /** Done with this request: left alone. */
  done: number;
  /** Stored with another request (or provider): made anew, paid again. */
  changed: number;
  /** Failed with this request: a run leaves them (`imgbatch retry` submits them again). */
  failed: number;
  /** Delivered once, image lost, the service no longer has it: a run asks its job again, for free. */
  missing: number;
  /** Submitted and not finished: a run follows their jobs (charged when they complete). */
  inFlight: number;
  /** Asked for again after a change (A → B → A): a run brings the earlier image back, for free. */
  restored: number;
  /** Never stored. */
  new: number;
  /** Stored, never submitted. */
  queued: number;
  /** Submitted by a run: new + changed + queued. */
  toSubmit: number;
}

export interface ModelLine {
  provider: ProviderName;
  model: ImageModel;
  items: number;
  credits: number;
}

export interface PlanItems {
  counts: PlanCounts;
  /** The items to submit, by provider and model, with their price (PICTORY.md §1.3). */
  byModel: ModelLine[];
  credits: number;
  /** What in-flight jobs will cost when they complete (not charged yet). */
  inFlightCredits: number;
  /** What `imgbatch retry` would pay for the failed items. */
  retryCredits: number;
  /** The models of the items to submit, in the order a run submits them (for the estimate). */
  submitModels: ImageModel[];
  /** sha256 of each local reference an item to submit uses. */
  references: Set<string>;
  /** Items a run would refuse to make anew (exit 1) without the flag that allows it. */
  refused: { switchProvider: number; abandonInFlight: number };
}

const ZERO: PlanCounts = { items: 0, done: 0, changed: 0, failed: 0, missing: 0, inFlight: 0, restored: 0, new: 0, queued: 0, toSubmit: 0 };

export class PlanTally {
  private readonly counts: PlanCounts = { ...ZERO };
  private readonly byModel = new Map<string, ModelLine>();
  private readonly submitModels: ImageModel[] = [];
  private readonly references = new Set<string>();
  private readonly refused = { switchProvider: 0, abandonInFlight: 0 };
  private inFlightCredits = 0;
  private retryCredits = 0;

  constructor(
    private readonly provider: ProviderName,
    private readonly hashWith: HashWith,
  ) {}

  /** One chunk of the manifest's items (in order) with the stored records of their keys. */
  add(chunk: readonly PlannedWithHash[], stored: PlanDigests): void {
    const live = new Map(stored.live.map((d) => [d.key, d]));
    const doneBefore = new Set(stored.doneBefore.map(([key, hash]) => `${key}\n${hash}`));
    const sync = planSync(chunk, stored.live, this.hashWith);
    for (const entry of sync.supersede) {
      if (replacesPaidImage(entry)) this.refused.switchProvider++;
      else if (abandonsPaidJob(entry)) this.refused.abandonInFlight++;
    }
    for (const { item, requestHash } of chunk) {
      const c = this.counts;
      c.items++;
      const price = priceOfModel(this.provider, item.request.model);
      const record = live.get(item.key);
      if (record === undefined || record.requestHash !== requestHash) {
        if (doneBefore.has(`${item.key}\n${requestHash}`)) {
          c.restored++;
          continue;
        }
        if (record === undefined) c.new++;
        else c.changed++;
        this.submit(item.request.model, item.request.referenceImage?.sha256, price);
        continue;
      }
      switch (record.state) {
        case "done":
          c.done++;
          break;
        case "failed":
          c.failed++;
          this.retryCredits += price;
          break;
        case "missing":
          c.missing++;
          break;
        case "queued":
          c.queued++;
          this.submit(item.request.model, item.request.referenceImage?.sha256, price);
          break;
        default:
          c.inFlight++;
          this.inFlightCredits += priceOfModel(record.provider ?? this.provider, item.request.model);
      }
    }
  }

  private submit(model: ImageModel, reference: string | undefined, price: number): void {
    this.counts.toSubmit++;
    this.submitModels.push(model);
    if (reference !== undefined) this.references.add(reference);
    const id = `${this.provider}\n${model}`;
    const line = this.byModel.get(id) ?? { provider: this.provider, model, items: 0, credits: 0 };
    line.items++;
    line.credits += price;
    this.byModel.set(id, line);
  }

  result(): PlanItems {
    const byModel = [...this.byModel.values()].map((l) => ({ ...l, credits: roundCredits(l.credits) }));
    return {
      counts: { ...this.counts },
      byModel,
      credits: roundCredits(byModel.reduce((sum, l) => sum + l.credits, 0)),
      inFlightCredits: roundCredits(this.inFlightCredits),
      retryCredits: roundCredits(this.retryCredits),
      submitModels: this.submitModels,
      references: this.references,
      refused: { ...this.refused },
    };
  }
}
