// The pure parts of `imgbatch plan`, as tables: where each item stands against the stored records
// (as a run's sync would find it), the credits by provider and model, the job times learned, the
// makespan at a concurrency and rate, and the text a person reads.
import { describe, expect, it } from "vitest";
import { planEstimate } from "../src/commands/plan-estimate.js";
import { PlanTally } from "../src/commands/plan-items.js";
import { formatEstimate, formatPlan, type PlanReport } from "../src/commands/plan-print.js";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import type { ImageModel } from "../src/providers/catalog.js";
import type { ProviderName } from "../src/providers/provider.js";
import { estimateMakespan, lowerQuartile, median, slotsMakespanMs } from "../src/runner/makespan.js";
import type { ItemState } from "../src/store/states.js";
import type { StoredItemDigest } from "../src/store/sync.js";

function item(key: string, model: ImageModel = "flux-schnell", prompt = `a picture of ${key}`, sha?: string): PlannedItem {
  return { key, rowId: key, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt, model, aspectRatio: "1:1", ...(sha ? { referenceImage: { sha256: sha, contentType: "image/png" as const } } : {}) } };
}

function stored(planned: PlannedItem, state: ItemState, provider: ProviderName = "pictory", jobId: string | null = null): StoredItemDigest {
  return { id: 1, key: planned.key, requestHash: requestHash(planned.request, provider), inManifest: true, provider, state, jobId };
}

function tally(provider: ProviderName, items: PlannedItem[], live: StoredItemDigest[], doneBefore: [string, string][] = []) {
  const t = new PlanTally(provider, requestHash);
  t.add(items.map((i) => ({ item: i, requestHash: requestHash(i.request, provider) })), { live, doneBefore });
  return t.result();
}

describe("where each item stands", () => {
  const a = item("a");
  const changedA = item("a", "flux-schnell", "a picture of a, in blue");
  it.each([
    ["never stored: new, submitted", [a], [], {}, { new: 1, toSubmit: 1 }],
    ["done with this request: left", [a], [stored(a, "done")], {}, { done: 1 }],
    ["another request: changed, submitted", [changedA], [stored(a, "done")], {}, { changed: 1, toSubmit: 1 }],
    ["failed: left for retry", [a], [stored(a, "failed")], {}, { failed: 1 }],
    ["missing: asked of its job again, free", [a], [stored(a, "missing")], {}, { missing: 1 }],
    ["queued: submitted", [a], [stored(a, "queued")], {}, { queued: 1, toSubmit: 1 }],
    ["running: followed", [a], [stored(a, "running", "pictory", "job-1")], {}, { inFlight: 1 }],
    ["changed back to a request done before: restored, free", [a], [stored(changedA, "done")], { doneBefore: [["a", requestHash(a.request, "pictory")]] as [string, string][] }, { restored: 1 }],
  ])("%s", (_name, items, live, extra, counts) => {
    const result = tally("pictory", items, live, (extra as { doneBefore?: [string, string][] }).doneBefore);
    expect(result.counts).toEqual({ items: 1, done: 0, changed: 0, failed: 0, missing: 0, inFlight: 0, restored: 0, new: 0, queued: 0, toSubmit: 0, ...counts });
  });

  it("prices the items to submit by provider and model, the failed ones for a retry, the jobs in flight", () => {
    const items = [item("a"), item("b", "nanobanana-pro"), item("c"), item("d", "seedream3.0"), item("e", "nanobanana"), item("f")];
    const result = tally("pictory", items, [stored(items[3]!, "failed"), stored(items[4]!, "running", "pictory", "j"), stored(items[5]!, "done")]);
    expect(result.byModel).toEqual([
      { provider: "pictory", model: "flux-schnell", items: 2, credits: 1.2 },
      { provider: "pictory", model: "nanobanana-pro", items: 1, credits: 14 },
    ]);
    expect([result.credits, result.retryCredits, result.inFlightCredits]).toEqual([15.2, 2, 4]);
    expect(result.submitModels).toEqual(["flux-schnell", "nanobanana-pro", "flux-schnell"]);
    // The local renderer is free.
    expect(tally("local", items, []).credits).toBe(0);
  });

  it("counts the local references of the items to submit, each file once", () => {
    const result = tally("pictory", [item("a", "flux-schnell", "x a", "s1"), item("b", "flux-schnell", "x b", "s1"), item("c", "flux-schnell", "x c", "s2"), item("d", "flux-schnell", "x d", "s3")], [stored(item("d", "flux-schnell", "x d", "s3"), "done")]);
    expect([...result.references].sort()).toEqual(["s1", "s2"]);
  });

  it("tells what a run would refuse: paid images of another provider, changed items with paid jobs at the service", () => {
    const a = item("a");
    const b = item("b");
    // a: made by pictory, planned now with local; b: its request changed while its pictory job runs.
    const switched = tally("local", [a], [stored(a, "done", "pictory")]);
    expect(switched.refused).toEqual({ switchProvider: 1, abandonInFlight: 0 });
    const abandoned = tally("pictory", [item("b", "flux-schnell", "another b")], [stored(b, "running", "pictory", "job-b")]);
    expect(abandoned.refused).toEqual({ switchProvider: 0, abandonInFlight: 1 });
    // Local previews made anew by pictory: the one-flag step up, never refused.
    expect(tally("pictory", [a], [stored(a, "done", "local")])).toMatchObject({ refused: { switchProvider: 0, abandonInFlight: 0 }, counts: { changed: 1, toSubmit: 1 } });
  });
});

describe("the makespan", () => {
  it.each([
    [[1000, 1000, 1000, 1000], 2, 2000],
    [[5000, 1000, 1000, 1000, 1000, 1000], 2, 5000],
    [[2000, 2000, 2000], 1, 6000],
    [[3000, 3000, 3000], 10, 3000],
    [[1000, 1500, 1000, 1500], 2, 3000],
    [[], 4, 0],
  ])("slots: %j at concurrency %i take %i ms", (slots, concurrency, ms) => {
    expect(slotsMakespanMs(slots, concurrency)).toBe(ms);
  });

  const base = { requestsPerItem: 2, extraRequests: 0, imagesPerSecond: 6, tailMs: 300, startupMs: 400 };
  it.each([
    ["the slots", { slotMs: new Array(12).fill(1000), concurrency: 3, rpm: null }, "concurrency", 400 + 4000 + 300],
    ["the rate", { slotMs: new Array(30).fill(1000), concurrency: 30, rpm: 60 }, "rate", 400 + 60_000 + 300],
    ["the image stage", { slotMs: new Array(600).fill(100), concurrency: 600, rpm: null }, "image stage", 400 + 100_000 + 300],
  ])("bound by %s", (_name, input, bound, ms) => {
    expect(estimateMakespan({ ...base, ...input })).toMatchObject({ bound, ms });
  });

  it("is nothing when nothing is to be made", () => {
    expect(estimateMakespan({ ...base, slotMs: [], concurrency: 4, rpm: 60 })).toEqual({ ms: 0, bound: null, concurrencyMs: 0, rateMs: 0, imageStageMs: 0 });
  });

  it("learns each model's job time from this database's done items of the same provider, else guesses", () => {
    const timings = [
      ...[900, 1000, 1300].map((serviceMs, i) => ({ provider: "pictory" as const, model: "flux-schnell", serviceMs, imageMs: [80, 1100, 1200][i]! })),
      { provider: "local" as const, model: "seedream3.0", serviceMs: 50, imageMs: 40 },
    ];
    const e = planEstimate({ provider: "pictory", submitModels: ["flux-schnell", "seedream3.0", "flux-schnell"], timings, concurrency: 2, rpm: null, uploads: 0, cores: 2 });
    expect(e.jobTimes).toEqual([
      { model: "flux-schnell", ms: 1000, learnedFrom: 3 },
      { model: "seedream3.0", ms: 15_000, learnedFrom: 0 },
    ]);
    // The last item's image stage: the quickest quarter (the others waited for the batched sync).
    expect([e.tailMs, e.tailLearnedFrom, e.imagesPerSecond]).toEqual([80, 3, 6]);
    // Two slots: 1 s and 1 s in one, the 15 s guess in the other.
    expect(e.ms).toBe(400 + 15_000 + 80);
    expect([median([3, 1, 2]), median([4, 1, 2, 3]), lowerQuartile([5, 1, 9, 7]), median([])]).toEqual([2, 2.5, 1, null]);
  });
});

describe("the plan as printed", () => {
  it("reads as a table with the estimate and the account", () => {
    const report: PlanReport = {
      manifest: "launch.yaml",
      name: "launch",
      db: "jobs/launch.sqlite",
      dbExists: true,
      provider: "pictory",
      providerFrom: "from --provider",
      counts: { items: 24, done: 10, changed: 1, failed: 1, missing: 0, inFlight: 0, restored: 0, new: 12, queued: 0, toSubmit: 13 },
      byModel: [
        { provider: "pictory", model: "seedream3.0", items: 7, credits: 14 },
        { provider: "pictory", model: "flux-schnell", items: 6, credits: 3.6 },
      ],
      credits: 17.6,
      inFlightCredits: 0,
      retryCredits: 2,
      refused: { switchProvider: 0, abandonInFlight: 0 },
      references: { files: 2, toUpload: 1 },
      estimate: { ms: 96_000, bound: "concurrency", concurrencyMs: 95_000, rateMs: null, imageStageMs: 2_167, concurrency: 3, rpm: null, jobTimes: [{ model: "seedream3.0", ms: 21_000, learnedFrom: 5 }, { model: "flux-schnell", ms: 12_000, learnedFrom: 0 }], tailMs: 300, tailLearnedFrom: 11, imagesPerSecond: 6 },
      account: { creditsRemaining: 5, needed: 17.6, enough: false },
    };
    expect(formatPlan(report)).toBe(
      [
        "plan for launch.yaml: provider pictory (from --provider); state in jobs/launch.sqlite",
        "  items            24",
        "  done             10",
        "  changed           1   their request or provider changed: made anew",
        "  failed            1   left as they are (imgbatch retry would submit them: 2 credits)",
        "  to submit        13   12 new, 1 changed",
        "  references  2 files   1 to upload first",
        "",
        "  provider  model             items    credits",
        "  pictory   seedream3.0           7         14",
        "  pictory   flux-schnell          6        3.6",
        "  total                          13       17.6",
        "",
        "  estimate   about 1 min 36 s at --concurrency 3, no --rpm: bound by concurrency",
        "             a job holds a slot: seedream3.0 21 s (median of 5 jobs here); flux-schnell 12 s (a guess: no job of it here yet)",
        "             slots 1 min 35 s · rate unlimited · image stage 2 s (6/s) · last image 0.3 s",
        "",
        "  account    5 AI credits left; this plan needs 17.6: NOT enough (a run stops, exit 3, when they run out)",
        "",
      ].join("\n"),
    );
    expect([formatEstimate(0), formatEstimate(400), formatEstimate(59_400), formatEstimate(3_725_000)]).toEqual(["0 s", "1 s", "59 s", "1 h 02 min"]);
  });
});
