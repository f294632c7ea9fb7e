// The items of this run that are at the service, as far as webhooks are concerned: whose submit
// carried this run's receiver URL, which job each follows, whether a hint was taken for it, and
// the wake-up of a read that waits. What a hint means is next-step.ts's afterHint; this board
// only keeps the facts it needs and carries the answer out. No I/O: the receiver calls hint(),
// the service side calls the rest.
import { afterHint, type HintIgnored, type HintStep } from "./next-step.js";
import { sleepMs } from "./sleep.js";

interface Entry {
  listened: boolean;
  jobId: string | null;
  hinted: boolean;
  /** The schedule's first-read estimate when the job was submitted (for what a hint teaches it). */
  estimateMs: number | null;
  /** A hint taken while the item was not waiting: the next wait ends at once. */
  pending: { named: string | null } | null;
  /** Set while the item waits for its next read. */
  wake: (() => void) | null;
}

export type HintCounts = Record<"used" | HintIgnored, number>;

/** How many of the latest ended jobs that carried this run's address decide whether hints are trusted. */
const TRUST_WINDOW = 20;

export class HintBoard {
  private readonly entries = new Map<string, Entry>();
  readonly counts: HintCounts = { used: 0, finished: 0, "unknown-job": 0, repeat: 0 };
  /** Of the latest ended jobs that carried this run's address: true when its hint came before a read found it ended. */
  private readonly recent: boolean[] = [];

  /** The item is at the service side from now on (a job of an earlier run: no hint expected). */
  enter(key: string, jobId: string | null): void {
    this.entries.set(key, { listened: false, jobId, hinted: false, estimateMs: null, pending: null, wake: null });
  }

  leave(key: string): void {
    this.entries.delete(key);
  }

  /** A submit is about to go out; `listened`: it carries this run's receiver URL. */
  submitting(key: string, listened: boolean): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    Object.assign(entry, { listened, jobId: null, hinted: false, estimateMs: null, pending: null });
  }

  /** The submit's answer named its job. A hint taken meanwhile for another job is dropped. */
  accepted(key: string, jobId: string, estimateMs: number): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.jobId = jobId;
    entry.estimateMs = estimateMs;
    if (entry.pending !== null && entry.pending.named !== null && entry.pending.named !== jobId) {
      entry.pending = null;
      entry.hinted = false;
      this.counts.used--;
      this.counts["unknown-job"]++;
    }
  }

  /** Its submit failed or was refused: no job to hear of. */
  noJob(key: string): void {
    const entry = this.entries.get(key);
    if (entry) Object.assign(entry, { listened: false, jobId: null, pending: null });
  }

  /** A hint is still expected for the item's job. */
  awaitingHint(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.listened && !entry.hinted;
  }

  /** A job that carried this run's address ended: `hinted` when its hint came first (else it was lost or late). */
  ended(key: string, hinted: boolean): void {
    if (!this.entries.get(key)?.listened) return;
    this.recent.push(hinted);
    if (this.recent.length > TRUST_WINDOW) this.recent.shift();
  }

  /**
   * Whether hints are arriving, so that items awaiting one may be read later than polling alone
   * would: once one came, and while at least half of the latest jobs were hinted before a read
   * found them ended. A receiver the service cannot reach (a wrong --public-url, a firewall) thus
   * costs nothing: its run polls as if it did not listen.
   */
  expectsHints(): boolean {
    const hinted = this.recent.filter(Boolean).length;
    return hinted > 0 && hinted * 2 >= this.recent.length;
  }

  /** The first-read estimate its job was submitted with, while no read has been made yet. */
  estimateOf(key: string): number | null {
    return this.entries.get(key)?.estimateMs ?? null;
  }

  /**
   * A read that a hint brought found the job still running: no completion was reported, so the
   * item is polled at the ordinary pace from now on (a premature or forged hint costs one read).
   */
  hintWasEarly(key: string): void {
    const entry = this.entries.get(key);
    if (entry) entry.listened = false;
  }

  /** Waits `ms` before the item's next read; true when a hint ended the wait (or had come before it). */
  async wait(key: string, ms: number, signal: AbortSignal): Promise<boolean> {
    const entry = this.entries.get(key);
    if (entry?.pending) {
      entry.pending = null;
      signal.throwIfAborted();
      return true;
    }
    if (!entry || ms <= 0) {
      await sleepMs(ms, signal);
      return false;
    }
    return new Promise<boolean>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (entry.wake === wake) entry.wake = null;
      };
      const wake = () => {
        cleanup();
        resolve(true);
      };
      const onAbort = () => {
        cleanup();
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, ms);
      entry.wake = wake;
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** A webhook that passed the receiver's checks names this item (and perhaps a job). */
  hint(key: string, namedJobId: string | null): HintStep {
    const entry = this.entries.get(key) ?? null;
    const step = afterHint(entry && { listened: entry.listened, jobId: entry.jobId, hinted: entry.hinted, waiting: entry.wake !== null }, namedJobId);
    if (step.step === "ignore") {
      this.counts[step.reason]++;
      return step;
    }
    this.counts.used++;
    entry!.hinted = true;
    if (step.step === "read-now") entry!.wake!();
    else entry!.pending = { named: namedJobId };
    return step;
  }
}
