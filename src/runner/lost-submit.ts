// What one look for a lost submit's job means: adopt the image it made, look again later,
// or submit again. Pure: the runner does the looking (ServiceGate.findLostJob) and carries
// out the step. Paying twice is the failure this guards against, so "submit again" needs
// two looks that agree; an unknown job that outlives the reconcile window fails the item
// UNRECONCILED, and a person decides (`retry` submits again).
import type { LostJobSearch } from "../providers/provider.js";

export type LostSubmitStep =
  | { step: "adopt"; detail: string }
  | { step: "look-again"; afterMs: number; detail: string }
  | { step: "submit-again"; detail: string }
  | { step: "give-up"; detail: string };

export interface LostSubmitContext {
  /** Time since the lost submit was sent. */
  waitedMs: number;
  /** The item's previous look found nothing either. */
  foundNothingBefore: boolean;
  /** The submit's failure was the service's own answer (500, 503), not a timeout or a gateway's. */
  originAnswered: boolean;
  /** How long a job of this model runs (the learned first-read delay). */
  jobRunsMs: number;
  /** How long an unknown job may keep the item waiting before it fails UNRECONCILED. */
  reconcileWindowMs: number;
}

/** No look comes sooner than this after the previous one. */
const MIN_LOOK_GAP_MS = 250;

export function nextLostSubmitStep(search: LostJobSearch, context: LostSubmitContext): LostSubmitStep {
  switch (search.found) {
    case "image":
      return { step: "adopt", detail: `reconciled: adopted image ${search.imageRef}${search.jobId ? ` (job ${search.jobId})` : ""} made by the lost submit` };
    case "pending":
      if (context.waitedMs < context.reconcileWindowMs) {
        // An unknown job runs about as long as the model's jobs do: look again then, not
        // sooner (each look reads the listings).
        return { step: "look-again", afterMs: Math.max(MIN_LOOK_GAP_MS, context.jobRunsMs), detail: `reconcile: ${search.detail}; looking again later` };
      }
      return {
        step: "give-up",
        detail: `nothing matched ${Math.round(context.waitedMs / 1000)} s after the submit while ${search.detail}: the submit may have made one of them`,
      };
    case "none":
      if (context.foundNothingBefore) return { step: "submit-again", detail: `reconcile: ${search.detail}; the submit created nothing, submitting again` };
      // A create the service took late (our side timed out first) shows in no listing yet: a
      // second, later look must agree before paying again. After the service's own answer it
      // only guards against a listing that lags; otherwise it waits as long as a job runs.
      return {
        step: "look-again",
        afterMs: context.originAnswered ? MIN_LOOK_GAP_MS : Math.max(MIN_LOOK_GAP_MS, context.jobRunsMs),
        detail: `reconcile: ${search.detail}; looking once more before submitting again`,
      };
  }
}
