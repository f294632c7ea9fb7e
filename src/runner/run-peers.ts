// A worker's view of the others that share its run (PostgreSQL): whether they still have items
// on their way, and their word (one ended, or let its items go) that wakes this one at once
// instead of at its next look.
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/port.js";

export class RunPeers {
  /** How to stop listening, once listening has started (null: not listening). */
  private listening: Promise<(() => Promise<void>) | null> = Promise.resolve(null);

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Starts listening for the others' word (beside the run's start); one that cannot listen has only its looks. */
  listen(wake: () => void): void {
    const changes = this.store.runChanges;
    if (!changes) return;
    this.listening = changes.listen(wake).catch((error: unknown) => {
      this.log.info({ err: errorMessage(error) }, `not listening to the run's other workers (${errorMessage(error)}): this worker notices their end at its next look instead`);
      return null;
    });
  }

  /**
   * Whether other workers still have items on their way. One that only submits leaves finished
   * jobs to the delivering workers, and does not wait for them.
   */
  async othersAtWork(deliver: boolean): Promise<boolean> {
    if (!this.store.sharesRuns) return false;
    const counts = await this.store.counts();
    return counts.submitting + counts.running + (deliver ? counts.downloading : 0) > 0;
  }

  /** Tells the others this worker ends (its claims let go), then stops listening. Never throws. */
  async leave(): Promise<void> {
    try {
      await this.store.runChanges?.announce();
    } catch (error) {
      this.log.debug({ err: errorMessage(error) }, `the other workers were not told this one ends: ${errorMessage(error)}`);
    }
    const stop = await this.listening;
    this.listening = Promise.resolve(null);
    await stop?.();
  }
}
