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
      elapsed += n === 0 ? schedule.firstReadMs("m") : schedule.delayMs("m", n, elapsed);
      polls++;
      const complete = elapsed >= latencyMs;
      schedule.observe("m", n, complete, elapsed);
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
    expect(schedule.delayMs("m", 1)).toBe(500);
    expect(schedule.delayMs("m", 2)).toBe(1_000);
    expect(schedule.delayMs("m", 9)).toBe(10_000);
  });

  it("moves once for a wave of jobs read together, not once per job", () => {
    const schedule = new PollSchedule({ intervalMs: 1_000, floorMs: 50 });
    // 50 jobs submitted together, all still running at their first read after 1 s.
    for (let i = 0; i < 50; i++) schedule.observe("m", 0, false, 1_000);
    expect(schedule.delayMs("m", 0)).toBe(1_020);
    for (let i = 0; i < 50; i++) schedule.observe("m", 0, true, 1_020);
    expect(schedule.delayMs("m", 0)).toBe(1_018);
  });

  it("settles within a few percent above a steady latency, so a finished job waits little", () => {
    // Half a step above the latency is every job's wait: 10 ms on a 1 s job.
    const { firstDelayMs, meanDetectionDelayMs, pollsPerJob } = settle(1_000, 2_000, 1_000);
    expect(firstDelayMs).toBeGreaterThanOrEqual(980);
    expect(firstDelayMs).toBeLessThanOrEqual(1_040);
    expect(meanDetectionDelayMs).toBeLessThan(30);
    expect(pollsPerJob).toBeLessThan(1.25);
  });

  it("is not pulled back down by reads planned before it grew", () => {
    const schedule = new PollSchedule({ intervalMs: 1_000, floorMs: 50 });
    schedule.observe("m", 0, false, 1_000);
    expect(schedule.delayMs("m", 0)).toBe(1_020);
    // A job of the same wave, read a little later than planned: complete by then.
    schedule.observe("m", 0, true, 1_006, 1_000);
    expect(schedule.delayMs("m", 0)).toBe(1_020);
  });

  it("catches a latency that grows in a few waves: the step doubles while reads at the estimate find jobs running", () => {
    const schedule = new PollSchedule({ intervalMs: 1_000, floorMs: 50 });
    for (let i = 0; i < 12; i++) schedule.observe("m", 0, true, 1_000);
    let waves = 0;
    while (schedule.delayMs("m", 0) < 3_000 && waves < 50) {
      waves++;
      const delays = Array.from({ length: 12 }, () => schedule.firstReadMs("m"));
      for (const delay of delays) schedule.observe("m", 0, delay >= 3_000, delay);
    }
    expect(waves).toBeLessThanOrEqual(8);
  });

  it("keeps the delay while reads at the estimate find jobs running, whatever a probe finds", () => {
    // Spread latencies: a probe that meets a short job says little about the others.
    const schedule = new PollSchedule({ intervalMs: 1_000, floorMs: 50 });
    schedule.observe("m", 0, false, 1_400);
    const estimate = schedule.delayMs("m", 0);
    schedule.observe("m", 0, true, 900);
    expect(schedule.delayMs("m", 0)).toBe(estimate);
    // Quiet for long enough (every read at the estimate complete): a probe pulls it down at once.
    for (let i = 0; i < 25; i++) schedule.observe("m", 0, true, schedule.delayMs("m", 0));
    schedule.observe("m", 0, true, 900);
    expect(schedule.delayMs("m", 0)).toBe(898);
  });

  it("probes below a delay far above the latency, so it comes down in a few waves, not hundreds", () => {
    const latencyMs = 1_000;
    const schedule = new PollSchedule({ intervalMs: 5_000, floorMs: 250 });
    let reads = 0;
    let probeReads = 0;
    const wave = () => {
      // 50 jobs submitted together; each first read waits what the schedule hands out.
      const estimate = schedule.delayMs("m", 0);
      const delays = Array.from({ length: 50 }, () => schedule.firstReadMs("m"));
      for (const delay of delays) {
        reads++;
        schedule.observe("m", 0, delay >= latencyMs, delay);
        if (delay < latencyMs) {
          if (delay < estimate) probeReads++;
          // Read again where the estimate says (not sooner), then as often as it takes.
          expect(schedule.delayMs("m", 1, delay)).toBe(Math.max(250, schedule.delayMs("m", 0) - delay));
          reads++;
        }
      }
    };
    for (let w = 0; w < 10; w++) wave();
    expect(schedule.delayMs("m", 0)).toBeLessThan(1_300);
    expect(schedule.delayMs("m", 0)).toBeGreaterThanOrEqual(latencyMs * 0.9);
    // Probes that found their job running cost at most one read each (one job in ten).
    expect(probeReads).toBeLessThanOrEqual(50);
    expect(reads / 500).toBeLessThan(1.2);
    // Without probes the same ten waves only creep down 0.2 % each.
    const plain = new PollSchedule({ intervalMs: 5_000, floorMs: 250 });
    for (let w = 0; w < 10; w++) {
      const delay = plain.delayMs("m", 0);
      for (let i = 0; i < 50; i++) plain.observe("m", 0, true, delay);
    }
    expect(plain.delayMs("m", 0)).toBeGreaterThan(4_500);
  });

  it("keeps one estimate per model", () => {
    const schedule = new PollSchedule({ intervalMs: 10_000, floorMs: 500 });
    schedule.observe("flux-schnell", 0, true, 3_000);
    expect(schedule.delayMs("flux-schnell", 0)).toBe(2_994);
    expect(schedule.delayMs("nanobanana-pro", 0)).toBe(10_000);
  });
});
