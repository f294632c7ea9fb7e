// Commit groups and durability: the state changes made in one turn of the event loop share one
// SQLite transaction, committed when the turn ends; durability (synchronous=FULL, an fsync of
// the WAL) is asked of a write, not switched by its callers.
import type Database from "better-sqlite3";
import { deferred, type Deferred } from "../../deferred.js";
import { ClaimLostError, FatalRunError, InternalError, errorMessage } from "../../errors.js";

interface CommitGroup {
  /** Commits with synchronous=FULL: it holds a `submitting`. */
  fsync: boolean;
  committed: Deferred;
}

/** How a write commits (see CommitGroups.beforeWrite). */
export type WriteCommit = "fsync" | "grouped" | "grouped-fsync";

export class CommitGroups {
  /** Mirrors PRAGMA synchronous: FULL (fsync at each commit) unless a light write set NORMAL. */
  private fsyncEachCommit = true;
  /** The open transaction of this turn's state changes (beforeWrite). */
  private group: CommitGroup | null = null;
  /** Why a group failed to commit (failGroup): thrown by every later write. */
  private broken: FatalRunError | null = null;

  constructor(
    private readonly db: Database.Database,
    private readonly statement: (source: string) => Database.Statement,
  ) {}

  /**
   * How a write commits. An item's state changes made in one turn of the event loop share one
   * transaction, committed when the turn ends (`grouped`): at zero latency four commits per
   * item became about one (benchmark scenario 3).
   * - "grouped-fsync": `submitting`, written before a submit is sent, on which money rests.
   *   Its group commits with synchronous=FULL (an fsync of the WAL), and the submit waits for
   *   that commit (`committed`). The other submits of the turn share the fsync.
   * - "grouped": the item's later steps (running with its job id, downloading, done, failed,
   *   notes, poll times, renditions) and the heartbeat. Alone in a group they commit with
   *   NORMAL: in WAL mode that survives a killed process, and the next FULL commit makes it
   *   durable on disk.
   * - "fsync": planning and run bookkeeping, alone and FULL, after the open group commits.
   * A kill loses at most the state changes of its last turn, a power cut those since the last
   * FULL commit: each goes back to a state the next run resumes without paying again (a
   * `submitting` row is reconciled through the listings, a `running` one is read again, a
   * `downloading` one delivered again), as a kill during a submit's request always could.
   */
  beforeWrite(commit: "fsync" | "grouped" | "grouped-fsync"): void {
    if (this.db.readonly) return;
    if (this.broken) throw this.broken;
    this.failIfRolledBack();
    if (commit === "fsync") {
      this.commitGroup();
      this.fsyncCommits(true);
      return;
    }
    const fsync = commit === "grouped-fsync";
    if (this.group) {
      if (!fsync || this.group.fsync) return;
      // A NORMAL group ends early: SQLite cannot make it FULL once begun.
      this.commitGroup();
    } else if (this.db.inTransaction) {
      // Inside an outer write (requeueFailed), which commits FULL; no submit belongs there.
      if (fsync) throw new InternalError("a submit inside another write's transaction could not be waited for");
      return;
    }
    this.openGroup(fsync);
  }

  private fsyncCommits(durable: boolean): void {
    // Inside a transaction the outer write has chosen already (SQLite refuses a change there).
    if (this.fsyncEachCommit === durable || this.db.inTransaction) return;
    this.statement(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL").run();
    this.fsyncEachCommit = durable;
  }

  private openGroup(fsync: boolean): void {
    this.fsyncCommits(fsync);
    this.statement("BEGIN").run();
    const group: CommitGroup = { fsync, committed: deferred() };
    // Most groups have nobody waiting on them: their failure reaches every later write.
    group.committed.promise.catch(() => {});
    this.group = group;
    setImmediate(() => {
      if (this.group !== group) return; // committed early
      try {
        this.commitGroup();
      } catch {
        /* kept in `broken`: every later write throws it */
      }
    });
  }

  /**
   * Runs one write's statements in the open group without a savepoint of their own (two more
   * statements each): should it fail half-way, the whole group is rolled back and the store
   * refuses every later write, as when a commit fails, so no row stands without its event.
   * Outside a group, `alone` makes the write atomic by itself.
   */
  writeInGroup<T>(work: () => T, alone: (work: () => T) => T): T {
    if (!this.group || !this.db.inTransaction) return alone(work);
    try {
      return work();
    } catch (error) {
      // A refusal (the claim moved on, a bug caught by a check) comes before anything is written.
      if (error instanceof ClaimLostError || error instanceof InternalError) throw error;
      this.failGroup(error);
    }
  }

  /** Commits the open group of state changes now, if there is one. */
  commitGroup(): void {
    const group = this.group;
    if (!group || !this.db.open) return;
    this.failIfRolledBack();
    try {
      this.statement("COMMIT").run();
    } catch (error) {
      this.failGroup(error);
    }
    this.group = null;
    group.committed.resolve();
  }

  /** An I/O error or a full disk makes SQLite roll the whole open transaction back by itself. */
  private failIfRolledBack(): void {
    if (this.group && !this.db.inTransaction) this.failGroup(new Error("SQLite rolled the open transaction back"));
  }

  /**
   * The open group did not commit. Its waiters (submits) are told first, and the store
   * refuses every later write: the run's records in memory no longer match the database, and
   * whatever the next run finds there it resumes without paying again.
   */
  private failGroup(cause: unknown): never {
    const group = this.group;
    this.group = null;
    this.broken = new FatalRunError(`the job database could not commit: ${errorMessage(cause)}`, "DB_COMMIT_FAILED", 3, { cause });
    group?.committed.reject(this.broken);
    try {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
    } catch {
      /* the connection is closed on exit; nothing more is written through it */
    }
    throw this.broken;
  }

  /** Set once a group failed to commit: every write since throws it. */
  get failure(): FatalRunError | null {
    return this.broken;
  }

  /**
   * Resolves once every state change made so far is committed: on disk, when one of them
   * was `submitting` (its group committed FULL). Rejects when that commit failed.
   */
  committed(): Promise<void> {
    return this.group ? this.group.committed.promise : Promise.resolve();
  }

}
