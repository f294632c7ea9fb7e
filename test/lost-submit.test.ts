// The decision after each look for a lost submit's job: never pay twice on one empty look.
import { describe, expect, it } from "vitest";
import type { LostJobSearch } from "../src/providers/provider.js";
import { nextLostSubmitStep, type LostSubmitContext } from "../src/runner/lost-submit.js";

const context: LostSubmitContext = { waitedMs: 2_000, foundNothingBefore: false, originAnswered: false, jobRunsMs: 8_000, reconcileWindowMs: 30 * 60_000 };
const none: LostJobSearch = { found: "none", detail: "no matching image" };
const pending: LostJobSearch = { found: "pending", detail: "1 job(s) of unknown owner still in progress" };
const image: LostJobSearch = { found: "image", imageRef: "img-1", jobId: "job-1", url: "https://x/img-1.png", width: 1024, height: 1024 };

describe("nextLostSubmitStep", () => {
  it("adopts an image the lost submit made", () => {
    expect(nextLostSubmitStep(image, context)).toEqual({ step: "adopt", detail: "reconciled: adopted image img-1 (job job-1) made by the lost submit" });
  });

  it("looks once more after an empty look, as long as a job runs, before paying again", () => {
    expect(nextLostSubmitStep(none, context)).toMatchObject({ step: "look-again", afterMs: 8_000 });
    expect(nextLostSubmitStep(none, { ...context, foundNothingBefore: true })).toMatchObject({ step: "submit-again" });
  });

  it("after the service's own 500/503 the second look only waits out a lagging listing", () => {
    expect(nextLostSubmitStep(none, { ...context, originAnswered: true })).toMatchObject({ step: "look-again", afterMs: 250 });
  });

  it("waits for an unknown job still running; past the reconcile window it gives up (never a silent re-pay)", () => {
    expect(nextLostSubmitStep(pending, context)).toMatchObject({ step: "look-again", afterMs: 8_000 });
    expect(nextLostSubmitStep(pending, { ...context, jobRunsMs: 10 })).toMatchObject({ step: "look-again", afterMs: 250 });
    expect(nextLostSubmitStep(pending, { ...context, waitedMs: 31 * 60_000 })).toEqual({
      step: "give-up",
      detail: "nothing matched 1860 s after the submit while 1 job(s) of unknown owner still in progress: the submit may have made one of them",
    });
  });
});
