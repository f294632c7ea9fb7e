// When to read a running job again. A fixed interval either wastes requests (short) or
// leaves finished images waiting (long: a 5 s job polled every 10 s takes 10 s). So the first
// read is scheduled from what the service has shown: per model, a first-poll delay that
// moves toward how long each observed job had run when first read — a little below it when
// the job was already complete, above it when it was not — settling where about 9 in 10 jobs
// are complete at their first read. Each observation moves the delay relative to the time
// that job waited, not to the current delay: a wave of `concurrency` jobs read at once then
// moves it once, not `concurrency` times (compounding 1.1^50 was measured in bench 1). Later
// reads of a job that was still running come sooner (a fraction of that delay), never later
// than the configured interval.
//
// A delay far above the latency only creeps down (1 % per wave: at --poll-interval 5 × the
// latency, 500 jobs still ran at 4.9 × the ideal in bench 1). So one first read in ten is a
// probe, at a fraction of the delay: a probe that finds its job complete pulls the delay down
// to there at once; one that finds it running costs a read and moves the next probes closer.
// Pure: the runner feeds it outcomes and asks for delays.

export interface PollScheduleOptions {
  /** The configured interval: the first delay before anything is known, and the upper bound. */
  intervalMs: number;
  /** No read comes sooner than this after the previous one. */
  floorMs: number;
}

/** Below / above the observed time: the delay creeps down while jobs are complete at first read, steps up when not. */
const SHRINK_WHEN_COMPLETE = 0.99;
const GROW_WHEN_RUNNING = 1.1;
/** A job still running at its first read is read again after this fraction of the first delay. */
const FOLLOW_UP_FRACTION = 0.15;
/** Every PROBE_EVERY-th first read of a model is a probe at `probe` × the delay. */
const PROBE_EVERY = 10;
const PROBE_START = 0.5;
const PROBE_MAX = 0.9;

export class PollSchedule {
  private readonly firstDelayMs = new Map<string, number>();
  /** Per model: first reads handed out so far, and the fraction of the delay probes read at. */
  private readonly probes = new Map<string, { reads: number; fraction: number }>();

  constructor(private readonly options: PollScheduleOptions) {}

  /**
   * Delay before read number `pollsSoFar + 1` of a job of `model` that has run `elapsedMs`.
   * A job still running after a probe is read next where the estimate says, not sooner.
   */
  delayMs(model: string, pollsSoFar: number, elapsedMs = Infinity): number {
    const { intervalMs, floorMs } = this.options;
    const first = this.firstDelayMs.get(model) ?? intervalMs;
    if (pollsSoFar === 0) return first;
    if (elapsedMs < first * 0.95) return Math.max(floorMs, first - elapsedMs);
    return clamp(first * FOLLOW_UP_FRACTION * 2 ** (pollsSoFar - 1), floorMs, intervalMs);
  }

  /** Delay before the first read of a newly submitted job: the estimate, or now and then a probe. */
  firstReadMs(model: string): number {
    const probe = this.probeOf(model);
    probe.reads++;
    const first = this.delayMs(model, 0);
    return probe.reads % PROBE_EVERY === 0 ? clamp(first * probe.fraction, this.options.floorMs, first) : first;
  }

  /** What a read found after the job had run `elapsedMs`: only first reads move the estimate. */
  observe(model: string, pollsSoFar: number, complete: boolean, elapsedMs: number): void {
    if (pollsSoFar !== 0) return;
    const { intervalMs, floorMs } = this.options;
    const first = this.firstDelayMs.get(model) ?? intervalMs;
    if (elapsedMs < first * 0.95) {
      // A probe (or a read that came early for another reason).
      const probe = this.probeOf(model);
      probe.fraction = complete ? PROBE_START : Math.min(PROBE_MAX, probe.fraction + (1 - probe.fraction) / 2);
    }
    const next = complete ? Math.min(first, elapsedMs * SHRINK_WHEN_COMPLETE) : Math.max(first, elapsedMs * GROW_WHEN_RUNNING);
    this.firstDelayMs.set(model, clamp(next, floorMs, intervalMs * 4));
  }

  private probeOf(model: string): { reads: number; fraction: number } {
    let probe = this.probes.get(model);
    if (!probe) this.probes.set(model, (probe = { reads: 0, fraction: PROBE_START }));
    return probe;
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.round(value)));
}

