// The time part of a plan: each model's job time from what this database has seen (the median
// of its done items' submit → completion-seen times), else the documented guess; then the
// makespan at the given --concurrency and --rpm (runner/makespan.ts). Pure.
import { DEFAULTS } from "../defaults.js";
import type { ImageModel } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import { estimateMakespan, lowerQuartile, median, type MakespanEstimate } from "../runner/makespan.js";
import type { JobTiming } from "../store/port.js";

export interface JobTimeLine {
  model: ImageModel;
  ms: number;
  /** How many of this database's done jobs it is the median of; 0: the documented guess. */
  learnedFrom: number;
}

export interface PlanEstimate extends MakespanEstimate {
  concurrency: number;
  rpm: number | null;
  /** The job time used per model to submit, in the order models first appear. */
  jobTimes: JobTimeLine[];
  /** The last item's image stage, and how many done items it was learned from (0: the guess). */
  tailMs: number;
  tailLearnedFrom: number;
  imagesPerSecond: number;
}

export interface EstimateInput {
  provider: ProviderName;
  /** Models of the items to submit, in submit order. */
  submitModels: readonly ImageModel[];
  /** This database's done items (any provider: only `provider`'s count). */
  timings: readonly JobTiming[];
  concurrency: number;
  rpm: number | null;
  /** Files to upload before their items: a generateurl request each. */
  uploads: number;
  cores: number;
}

function guessMs(provider: ProviderName, model: ImageModel): number {
  const guesses = DEFAULTS.plan.jobMs;
  return provider === "local" ? guesses.local : guesses.pictory[model];
}

export function planEstimate(input: EstimateInput): PlanEstimate {
  const own = input.timings.filter((t) => t.provider === input.provider);
  const jobTimes = new Map<ImageModel, JobTimeLine>();
  for (const model of input.submitModels) {
    if (jobTimes.has(model)) continue;
    const samples = own.filter((t) => t.model === model).map((t) => t.serviceMs);
    jobTimes.set(model, { model, ms: median(samples) ?? guessMs(input.provider, model), learnedFrom: samples.length });
  }
  // An item's image stage mostly waits for the batched sync of its files (up to a second), in
  // the shadow of the slots; the last one's is synced at once: the stage's own work, about the
  // quickest quarter of the times seen.
  const tail = lowerQuartile(own.map((t) => t.imageMs));
  const imagesPerSecond = DEFAULTS.plan.imagesPerSecondPerCore * Math.max(1, input.cores);
  const estimate = estimateMakespan({
    slotMs: input.submitModels.map((model) => jobTimes.get(model)!.ms),
    concurrency: input.concurrency,
    rpm: input.rpm,
    requestsPerItem: DEFAULTS.plan.requestsPerItem,
    // The quota read, and a generateurl per file to upload (its PUT goes to the storage, not the API).
    extraRequests: 1 + input.uploads,
    imagesPerSecond,
    tailMs: tail ?? DEFAULTS.plan.tailMs,
    startupMs: DEFAULTS.plan.startupMs,
  });
  return {
    ...estimate,
    concurrency: input.concurrency,
    rpm: input.rpm,
    jobTimes: [...jobTimes.values()],
    tailMs: Math.round(tail ?? DEFAULTS.plan.tailMs),
    tailLearnedFrom: tail === null ? 0 : own.length,
    imagesPerSecond,
  };
}
