// When to read a running job again. A fixed interval either wastes requests (short) or
// leaves finished images waiting (long: a 5 s job polled every 10 s takes 10 s). So the first
// read is scheduled from what the service has shown: per model, a first-poll delay, counted
// from the submit's answer, that settles where about 9 in 10 jobs are complete at their first
// read. Each observation moves the delay relative to when that read was planned or sent,
// not to the current delay: a wave of `concurrency` jobs read at once moves it once, not
// `concurrency` times (compounding 1.1^50 was measured in bench 1).
//
// Steps are small (2 % up, 0.2 % down: the 9-in-10 balance) because with a steady latency the
// delay saws between the latency and one step above it, and half a step is every job's wait.
// First reads at the estimate that keep finding jobs running double the step each time, so a
// latency that grows is caught in a few waves. A delay far above the latency would only creep
// down, so one first read in ten is a probe at a fraction of the delay: a probe that finds its
// job complete pulls the delay down to there at once, unless a read at the estimate found a
// job running lately (then the latencies are spread and the probe only caught a short one).
// Pure: the runner feeds it outcomes and asks for delays.

export interface PollScheduleOptions {
  /** The configured interval: the first delay before anything is known, and the upper bound. */
  intervalMs: number;
  /** No read comes sooner than this after the previous one. */
  floorMs: number;
}

/** Below / above the observed time: the delay creeps down while jobs are complete at first read, steps up when not. */
const SHRINK_WHEN_COMPLETE = 0.998;
const GROW_WHEN_RUNNING = 1.02;
/** The most one running read can grow the delay by, however long the streak. */
const GROW_AT_MOST = 2;
/** A job still running at its first read is read again after this fraction of the first delay, doubling. */
const FOLLOW_UP_FRACTION = 0.05;
/** Every PROBE_EVERY-th first read of a model is a probe at `fraction` × the delay. */
const PROBE_EVERY = 10;
const PROBE_START = 0.5;
const PROBE_MAX = 0.9;
/** A probe pulls the delay down only if none of this many latest first reads at the estimate found its job running. */
const PROBE_QUIET_READS = 24;

interface ModelSchedule {
  firstDelayMs: number;
  /** First reads handed out, for choosing probes. */
  reads: number;
  /** The fraction of the delay probes read at. */
  probeFraction: number;
  /** First reads at or past the estimate that found the job running, in a row. */
  runningStreak: number;
  /** First reads observed since one at the estimate found its job running. */
  readsSinceRunning: number;
}

export class PollSchedule {
  private readonly models = new Map<string, ModelSchedule>();

  constructor(private readonly options: PollScheduleOptions) {}

  /**
   * Delay before read number `pollsSoFar + 1` of a job of `model` that has run `elapsedMs`.
   * A job still running after a probe is read next where the estimate says, not sooner.
   */
  delayMs(model: string, pollsSoFar: number, elapsedMs = Infinity): number {
    const { intervalMs, floorMs } = this.options;
    const first = this.models.get(model)?.firstDelayMs ?? intervalMs;
    if (pollsSoFar === 0) return first;
    if (elapsedMs < first * 0.95) return Math.max(floorMs, first - elapsedMs);
    return clamp(first * FOLLOW_UP_FRACTION * 2 ** (pollsSoFar - 1), floorMs, intervalMs);
  }

  /** Delay, from the submit's answer, before the first read of a newly submitted job: the estimate, or now and then a probe. */
  firstReadMs(model: string): number {
    const m = this.of(model);
    m.reads++;
    return m.reads % PROBE_EVERY === 0 ? clamp(m.firstDelayMs * m.probeFraction, this.options.floorMs, m.firstDelayMs) : m.firstDelayMs;
  }

  /**
   * What a read found, sent `elapsedMs` after the submit's answer and planned for `plannedMs` (a late read
   * was sent after it was planned): only first reads move the estimate. A complete job is taken
   * as complete by the planned time, so reads a busy process sends late still move the delay down.
   */
  observe(model: string, pollsSoFar: number, complete: boolean, elapsedMs: number, plannedMs = elapsedMs): void {
    if (pollsSoFar !== 0) return;
    const m = this.of(model);
    const first = m.firstDelayMs;
    const at = complete ? Math.min(elapsedMs, plannedMs) : elapsedMs;
    m.readsSinceRunning++;
    let next = first;
    if (complete) {
      m.runningStreak = 0;
      if (at < first) {
        // A probe, or a read planned before the delay last grew: it moves the delay only while
        // no read at the estimate has found its job running lately.
        if (m.readsSinceRunning > PROBE_QUIET_READS) {
          m.probeFraction = PROBE_START;
          next = Math.min(first, at * SHRINK_WHEN_COMPLETE);
        }
      } else next = Math.min(first, at * SHRINK_WHEN_COMPLETE);
    } else {
      const early = at < first * 0.95;
      if (early) m.probeFraction = Math.min(PROBE_MAX, m.probeFraction + (1 - m.probeFraction) / 2);
      else m.readsSinceRunning = 0;
      if (at >= first) m.runningStreak++;
      const grow = Math.min(GROW_AT_MOST, 1 + (GROW_WHEN_RUNNING - 1) * 2 ** Math.max(0, m.runningStreak - 1));
      next = Math.max(first, at * grow);
    }
    m.firstDelayMs = clamp(next, this.options.floorMs, this.options.intervalMs * 4);
  }

  private of(model: string): ModelSchedule {
    let m = this.models.get(model);
    if (!m) this.models.set(model, (m = { firstDelayMs: this.options.intervalMs, reads: 0, probeFraction: PROBE_START, runningStreak: 0, readsSinceRunning: Infinity }));
    return m;
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.round(value)));
}
