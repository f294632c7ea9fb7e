// How the runner's main loop sleeps: until something changes (an item leaves a slot, a stop) or
// a time passes. A change while the loop was busy (awaiting the store) is kept, not lost.
export class WakeSignal {
  private waiting: (() => void) | null = null;
  private changed = false;

  /** Called at the top of each turn of the loop: changes from here on wake the next wait. */
  startTurn(): void {
    this.changed = false;
  }

  wake(): void {
    this.changed = true;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  /** Resolves at the next change (at once if one came since the turn began), or after the shortest of `waitsMs`. */
  wait(waitsMs: readonly (number | null)[]): Promise<void> {
    if (this.changed) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waits = waitsMs.filter((t): t is number => t !== null);
      this.waiting = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      if (waits.length > 0) timer = setTimeout(() => this.wake(), Math.max(0, Math.min(...waits)));
    });
  }
}
