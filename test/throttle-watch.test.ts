// A throttled key against stray 429s, and the refs that end a lost-submit search early.
import { describe, expect, it } from "vitest";
import { LearnedRefs } from "../src/runner/learned-refs.js";
import { originAnswered } from "../src/runner/retry-policy.js";
import { ThrottleWatch } from "../src/runner/throttle-watch.js";

/** Answers in order, one per ms: "x" a 429, "." anything else. Returns the times it paused. */
function feed(watch: ThrottleWatch, answers: string, sentLagMs = 0): number[] {
  const pauses: number[] = [];
  [...answers].forEach((answer, t) => {
    if (answer === ".") watch.answered(t - sentLagMs);
    else if (watch.throttled(t - sentLagMs, t)) pauses.push(t);
  });
  return pauses;
}

/** A deterministic pseudo-random stream (mulberry32), so the stray-429 run is the same each time. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ThrottleWatch", () => {
  it("never pauses the provider for stray 429s (5 % of 20,000 answers)", () => {
    const random = seeded(7);
    const answers = Array.from({ length: 20_000 }, () => (random() < 0.05 ? "x" : ".")).join("");
    expect(answers.split("x").length - 1).toBeGreaterThan(900);
    expect(feed(new ThrottleWatch(), answers)).toEqual([]);
  });

  it("pauses once a throttled key refuses most requests", () => {
    expect(feed(new ThrottleWatch(), "..........xxxxxx")).toEqual([15]);
    expect(feed(new ThrottleWatch(), "x.x.x.x.x.x.")).toEqual([10]);
  });

  it("does not count 429s to requests sent before the pause began, and starts afresh after it", () => {
    const watch = new ThrottleWatch({ window: 10, throttledToPause: 3 });
    expect(watch.throttled(0, 10)).toBe(false);
    expect(watch.throttled(1, 10)).toBe(false);
    expect(watch.throttled(2, 10)).toBe(true); // paused at 10
    // the rest of the 50 in flight come back 429 too: the same episode
    for (let sent = 3; sent < 10; sent++) expect(watch.throttled(sent, 11)).toBe(false);
    // sent after the pause began: counted from an empty window
    expect(watch.throttled(12, 13)).toBe(false);
    expect(watch.throttled(13, 14)).toBe(false);
    expect(watch.throttled(14, 15)).toBe(true);
  });
});

describe("LearnedRefs", () => {
  it("knows a ref learned strictly before the time asked about", () => {
    const refs = new LearnedRefs();
    refs.learned("job-1", 100);
    refs.learned(null, 100);
    expect(refs.knownBefore("job-1", 101)).toBe(true);
    expect(refs.knownBefore("job-1", 100)).toBe(false);
    expect(refs.knownBefore("job-2", 1_000)).toBe(false);
    refs.learned("job-1", 50); // the first learning counts
    expect(refs.knownBefore("job-1", 60)).toBe(false);
  });

  it("keeps only the latest refs", () => {
    const refs = new LearnedRefs(3);
    for (let i = 0; i < 5; i++) refs.learned(`job-${i}`, i);
    expect([0, 1, 2, 3, 4].map((i) => refs.knownBefore(`job-${i}`, 10))).toEqual([false, false, true, true, true]);
  });
});

describe("originAnswered", () => {
  it("tells the service's own 500/503 from a gateway's 502/504 and from no answer", () => {
    expect(["HTTP_500", "HTTP_503", "HTTP_502", "HTTP_504", "ECONNRESET", null].map(originAnswered)).toEqual([true, true, false, false, false, false]);
  });
});
