// When this run learned that a job or image exists at the service (a create answered, a
// poll read it finished). A ref learned before a lost submit was sent is older than that
// submit at the service, whatever the clocks say, so a newest-first listing walk may stop
// at it (see LostJobSearchOptions.knownBefore). Only the latest refs are kept: a search
// runs soon after its submit, and needs just one ref from shortly before it.

export class LearnedRefs {
  private readonly learnedAt = new Map<string, number>();

  constructor(private readonly keep = 4_096) {}

  learned(ref: string | null | undefined, atMs: number): void {
    if (!ref || this.learnedAt.has(ref)) return;
    this.learnedAt.set(ref, atMs);
    if (this.learnedAt.size > this.keep) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.learnedAt.keys().next().value;
      if (oldest !== undefined) this.learnedAt.delete(oldest);
    }
  }

  /** The ref is known to have existed at the service before `atMs`. */
  knownBefore(ref: string, atMs: number): boolean {
    const learned = this.learnedAt.get(ref);
    return learned !== undefined && learned < atMs;
  }
}
