// When to read a running job again. A fixed interval either wastes requests (short) or
// leaves finished images waiting (long: a 5 s job polled every 10 s takes 10 s). So the first
// read is scheduled from what the service has shown: per model, a first-poll delay that
// moves toward how long each observed job had run when first read — a little below it when
// the job was already complete, above it when it was not — settling where about 9 in 10 jobs
// are complete at their first read. Each observation moves the delay relative to the time
// that job waited, not to the current delay: a wave of `concurrency` jobs read at once then
// moves it once, not `concurrency` times (compounding 1.1^50 was measured in bench 1). Later
// reads of a job that was still running come sooner (a fraction of that delay), never later
// than the configured interval. Pure: the runner feeds it outcomes and asks for delays.

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

export class PollSchedule {
  private readonly firstDelayMs = new Map<string, number>();

  constructor(private readonly options: PollScheduleOptions) {}

  /** Delay before read number `pollsSoFar + 1` of a job of `model`. */
  delayMs(model: string, pollsSoFar: number): number {
    const { intervalMs, floorMs } = this.options;
    const first = this.firstDelayMs.get(model) ?? intervalMs;
    if (pollsSoFar === 0) return first;
    return clamp(first * FOLLOW_UP_FRACTION * 2 ** (pollsSoFar - 1), floorMs, intervalMs);
  }

  /** What a read found after the job had run `elapsedMs`: only first reads move the estimate. */
  observe(model: string, pollsSoFar: number, complete: boolean, elapsedMs: number): void {
    if (pollsSoFar !== 0) return;
    const { intervalMs, floorMs } = this.options;
    const first = this.firstDelayMs.get(model) ?? intervalMs;
    const next = complete ? Math.min(first, elapsedMs * SHRINK_WHEN_COMPLETE) : Math.max(first, elapsedMs * GROW_WHEN_RUNNING);
    this.firstDelayMs.set(model, clamp(next, floorMs, intervalMs * 4));
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.round(value)));
}
