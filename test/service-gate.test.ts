// The gate between a run and the service's key: what a lost-submit search is told about
// the jobs this run already knows, and the 429s that pause every request.
import { describe, expect, it } from "vitest";
import { ThrottledError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import type { ClaimedRefs, ImageRequest, LostJobSearch, LostJobSearchOptions, Provider } from "../src/providers/provider.js";
import { SHARED_PAUSE_READ_MS, ServiceGate, type GiveUp } from "../src/runner/service-gate.js";
import type { Store } from "../src/store/port.js";
import type { ItemRecord } from "../src/store/types.js";

const REQUEST: ImageRequest = { prompt: "A lighthouse at dawn", model: "flux-schnell", aspectRatio: "1:1" };
const silent = createLogger({ level: "silent" });

function item(fields: Partial<ItemRecord>): ItemRecord {
  return { id: 1, key: "r1", request: REQUEST, submittedAt: null, jobId: null, imageRef: null, ...fields } as ItemRecord;
}

/** A provider whose search hands its inputs to `search`, and a store owning what `owned` holds when asked. */
function gateWith(search: (claimed: ClaimedRefs, options: LostJobSearchOptions) => Promise<LostJobSearch>, owned: string[], clock: { t: number }, onGiveUp?: (reason: GiveUp) => void) {
  const provider = { findLostJob: (_r: ImageRequest, _at: number, claimed: ClaimedRefs, options?: LostJobSearchOptions) => search(claimed, options ?? {}) } as unknown as Provider;
  const store = { isClaimed: (ref: string) => owned.includes(ref) } as unknown as Store;
  return new ServiceGate(provider, store, { rpm: 0, throttleFallbackMs: 5_000, retryAfterCapMs: 600_000, serviceDownMs: 60_000 }, silent, () => clock.t, onGiveUp);
}

const signals = { signal: new AbortController().signal, tokenSignal: new AbortController().signal };

describe("ServiceGate", () => {
  it("obeys a Retry-After up to the cap; a longer one is cut to the cap and reported (the run stops)", async () => {
    const asked: GiveUp[] = [];
    const gate = gateWith(async () => ({ found: "none", detail: "" }), [], { t: 0 }, (reason) => asked.push(reason));
    expect(gate.retryAfterMs(null)).toBe(5_000);
    expect(gate.retryAfterMs(600_000)).toBe(600_000);
    expect(asked).toEqual([]);
    expect(gate.retryAfterMs(999_999_000)).toBe(600_000);
    expect(asked.map((r) => r.code)).toEqual(["RETRY_AFTER_TOO_LONG"]);
    expect(asked[0]!.message).toMatch(/asked to wait 999999 s/);
  });

  it("gives up on a service that has answered nothing but failures for serviceDownMs; any answer starts the count again", async () => {
    const clock = { t: 0 };
    const reasons: GiveUp[] = [];
    const gate = gateWith(async () => ({ found: "none", detail: "" }), [], clock, (reason) => reasons.push(reason));
    const fail = () => gate.send(Promise.reject(new ThrottledError("429", 1_000))).catch(() => {});
    clock.t = 59_000;
    await fail();
    expect(reasons).toEqual([]);
    await gate.send(Promise.resolve("an answer"));
    clock.t = 100_000;
    await fail();
    expect(reasons).toEqual([]);
    clock.t = 120_000;
    await fail();
    expect(reasons.map((r) => r.code)).toEqual(["SERVICE_UNREACHABLE"]);
  });

  it("tells a search which refs existed before the lost submit was sent, and which did not", async () => {
    const clock = { t: 1_000 };
    let seen: ((ref: string) => boolean) | undefined;
    const gate = gateWith(async (_claimed, options) => {
      seen = options.knownBefore;
      return { found: "none", detail: "" };
    }, [], clock);
    gate.noted(item({ jobId: "job-before", imageRef: "img-before" }));
    clock.t = 2_000;
    const lost = item({ id: 2, key: "r2", submittedAt: 2_000 });
    clock.t = 3_000;
    gate.noted(item({ id: 3, jobId: "job-after" }));
    await gate.findLostJob(lost, signals);
    expect(["job-before", "img-before", "job-after", "never-seen"].map((ref) => seen!(ref))).toEqual([true, true, false, false]);
  });

  it("claims for a search in progress the jobs other items store meanwhile, and the item's own image is not claimed", async () => {
    const clock = { t: 1_000 };
    const owned = ["job-owned", "img-mine"];
    let claimedDuringSearch: ClaimedRefs | undefined;
    let release!: () => void;
    const gate = gateWith(async (claimed) => {
      claimedDuringSearch = claimed;
      await new Promise<void>((resolve) => (release = resolve));
      return { found: "none", detail: "" };
    }, owned, clock);
    const searching = gate.findLostJob(item({ imageRef: "img-mine", submittedAt: 500 }), { ...signals, exceptRef: "img-mine" });
    await new Promise((resolve) => setImmediate(resolve));
    const asked = ["job-owned", "img-mine", "job-answered-meanwhile", "job-nobody-has"];
    expect(asked.map((ref) => claimedDuringSearch!.has(ref))).toEqual([true, false, false, false]);
    owned.push("job-answered-meanwhile"); // another item's submit answered and stored mid-search
    expect(asked.map((ref) => claimedDuringSearch!.has(ref))).toEqual([true, false, true, false]);
    release();
    await searching;
  });

  it("pauses every request once the key's answers are mostly 429s, and passes each 429 on", async () => {
    const clock = { t: 0 };
    const gate = gateWith(async () => ({ found: "none", detail: "" }), [], clock);
    const throttled = () => gate.send(Promise.reject(new ThrottledError("429", 2_000)));
    for (let i = 0; i < 5; i++) await expect(throttled()).rejects.toBeInstanceOf(ThrottledError);
    // Not paused yet: a token comes at once.
    await expect(Promise.race([gate.take().then(() => "token"), new Promise((r) => setTimeout(() => r("waiting"), 20))])).resolves.toBe("token");
    await expect(throttled()).rejects.toBeInstanceOf(ThrottledError); // the sixth of the latest answers
    await expect(Promise.race([gate.take().then(() => "token"), new Promise((r) => setTimeout(() => r("waiting"), 20))])).resolves.toBe("waiting");
    expect(gate.retryAfterMs(null)).toBe(5_000);
  });
});

/** A gate of a shared run (a store other workers share) whose key pause the store answers with `pausedForMs`. */
function sharedGate(rpm: number, clock: () => number, pausedForMs: { ms: number }) {
  const asked: { perMinute: number; burst: number }[] = [];
  const provider = { keyId: "key-hash" } as unknown as Provider;
  const store = {
    sharesRuns: true,
    takeRequestToken: async (_key: string, perMinute: number, burst: number) => {
      asked.push({ perMinute, burst });
      return pausedForMs.ms;
    },
    pauseKey: async () => {},
  } as unknown as Store;
  return { gate: new ServiceGate(provider, store, { rpm, throttleFallbackMs: 5_000, retryAfterCapMs: 600_000, serviceDownMs: 60_000 }, silent, clock), asked };
}

describe("ServiceGate in a shared run", () => {
  it("with --rpm: every request takes a token of the key's bucket in the database", async () => {
    const { gate, asked } = sharedGate(600, () => 0, { ms: 0 });
    for (let i = 0; i < 5; i++) await gate.take();
    expect(asked).toHaveLength(5);
    expect(asked.every((a) => a.perMinute < 1e9)).toBe(true);
  });

  it("without --rpm: the key's pause is read at most once per SHARED_PAUSE_READ_MS, not per request", async () => {
    const clock = { t: 10_000 };
    const { gate, asked } = sharedGate(0, () => clock.t, { ms: 0 });
    await Promise.all(Array.from({ length: 20 }, () => gate.take()));
    for (let i = 0; i < 20; i++) await gate.take();
    expect(asked).toHaveLength(1);
    clock.t += SHARED_PAUSE_READ_MS;
    await gate.take();
    expect(asked).toHaveLength(2);
  });

  it("without --rpm: a pause another worker wrote holds this worker's requests until it ends", async () => {
    const paused = { ms: 150 };
    const { gate, asked } = sharedGate(0, Date.now, paused);
    const started = Date.now();
    await gate.take();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    paused.ms = 0;
    // Within the read interval the bucket goes on from what it read: the next request goes before
    // any timer could fire, and the database is not asked again.
    const next = await Promise.race([gate.take().then(() => "sent"), new Promise((resolve) => setImmediate(() => resolve("waiting")))]);
    expect(next).toBe("sent");
    expect(asked).toHaveLength(1);
  });
});
