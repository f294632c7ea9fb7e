import { describe, expect, it } from "vitest";
import { PollSchedule } from "../src/runner/poll-schedule.js";

/** Drives the schedule with jobs of a fixed latency and returns the settled first delay. */
function settle(latencyMs: number, jobs: number, intervalMs = 10_000): { firstDelayMs: number; pollsPerJob: number; meanDetectionDelayMs: number } {
  const schedule = new PollSchedule({ intervalMs, floorMs: intervalMs / 20 });
  let polls = 0;
  let detectionDelay = 0;
  for (let job = 0; job < jobs; job++) {
    let elapsed = 0;
    for (let n = 0; ; n++) {
      elapsed += schedule.delayMs("m", n);
      polls++;
      const complete = elapsed >= latencyMs;
      schedule.observe("m", n, complete);
      if (complete) break;
    }
    if (job >= jobs / 2) detectionDelay += elapsed - latencyMs;
  }
  return { firstDelayMs: schedule.delayMs("m", 0), pollsPerJob: polls / jobs, meanDetectionDelayMs: detectionDelay / (jobs / 2) };
}

describe("PollSchedule", () => {
  it("waits one configured interval before anything is known", () => {
    const schedule = new PollSchedule({ intervalMs: 10_000, floorMs: 500 });
    expect(schedule.delayMs("flux-schnell", 0)).toBe(10_000);
  });

  it("learns a short latency: first reads move close to it, with few polls per job", () => {
    const { firstDelayMs, pollsPerJob, meanDetectionDelayMs } = settle(3_000, 2_000);
    expect(firstDelayMs).toBeGreaterThan(2_500);
    expect(firstDelayMs).toBeLessThan(3_600);
    expect(pollsPerJob).toBeLessThan(2);
    expect(meanDetectionDelayMs).toBeLessThan(600);
  });

  it("learns a latency longer than the interval instead of polling every interval", () => {
    const { firstDelayMs, pollsPerJob } = settle(25_000, 500);
    expect(firstDelayMs).toBeGreaterThan(20_000);
    expect(pollsPerJob).toBeLessThan(2);
  });

  it("reads a still-running job again sooner, never later than the interval", () => {
    const schedule = new PollSchedule({ intervalMs: 10_000, floorMs: 500 });
    expect(schedule.delayMs("m", 1)).toBe(1_500);
    expect(schedule.delayMs("m", 2)).toBe(3_000);
    expect(schedule.delayMs("m", 9)).toBe(10_000);
  });

  it("keeps one estimate per model", () => {
    const schedule = new PollSchedule({ intervalMs: 10_000, floorMs: 500 });
    for (let i = 0; i < 100; i++) schedule.observe("flux-schnell", 0, true);
    expect(schedule.delayMs("flux-schnell", 0)).toBeLessThan(4_000);
    expect(schedule.delayMs("nanobanana-pro", 0)).toBe(10_000);
  });
});
