// The lock a run holds on its manifest's database, from start to end: taken (or a dead holder's
// taken over), kept alive by a heartbeat, and released with the run's record by `release`.
import { EXIT, ExitError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { RunSummary } from "../runner/runner.js";
import type { RunStartInfo, Store } from "../store/port.js";
import type { RunRecord } from "../store/types.js";
import { lockIsStale } from "./lock.js";
import { runEndRecord } from "./run-plan.js";

const HEARTBEAT_EVERY_MS = 10_000;

export interface RunLock {
  run: RunRecord;
  /** The last run did not close (killed, crashed), or its lock was taken over. */
  interrupted: boolean;
  /** Why the end could not be recorded, once `release` has run; null when it was. */
  failure: unknown;
  /** Stops the heartbeat, records the run's end and lets the lock go. Never throws. */
  release(exitCode: number, summary: RunSummary | null, thrown: unknown): Promise<void>;
}

/** Takes the lock, or exits 4 naming the live process that holds it. */
export async function takeRunLock(store: Store, info: RunStartInfo, context: { dbPath: string; log: Logger; now: () => number }): Promise<RunLock> {
  const { log } = context;
  const begun = await store.beginRun(info, (h) => lockIsStale(h, context.now()));
  if (!begun.acquired) {
    const h = begun.holder;
    const why = begun.reason ? `: ${begun.reason}` : "";
    throw new ExitError(
      EXIT.locked,
      `another run holds ${context.dbPath}: pid ${h.pid} on ${h.host}, started ${new Date(h.startedAt).toISOString()} (last heartbeat ${new Date(h.heartbeatAt).toISOString()})${why}`,
    );
  }
  const run = begun.run;
  if (begun.tookOverFrom) {
    const h = begun.tookOverFrom;
    log.warn({ stalePid: h.pid, staleHost: h.host }, `took over a stale lock of pid ${h.pid} on ${h.host} (started ${new Date(h.startedAt).toISOString()}); that process is gone`);
  }
  // Temporary files are only left by a process that died mid-write: its run never closed (or
  // its lock went stale). Only then is the output folder walked for them.
  const interrupted = (await store.closeAbandonedRuns(run.id)) > 0 || begun.tookOverFrom !== null;
  const heartbeat = setInterval(() => {
    // A database that stopped committing: the run's next state change stops it (exit 3).
    store.heartbeat(run.id).catch((error: unknown) => log.error({ err: errorMessage(error) }, `heartbeat not written: ${errorMessage(error)}`));
  }, HEARTBEAT_EVERY_MS);
  heartbeat.unref();
  const lock: RunLock = {
    run,
    interrupted,
    failure: null,
    async release(exitCode, summary, thrown) {
      clearInterval(heartbeat);
      try {
        await store.endRun(run.id, runEndRecord(exitCode, summary, thrown));
        await store.releaseLock(run.id);
      } catch (error) {
        // Its items are as the run left them; the next run finds this one unclosed (`died`)
        // and rebuilds its figures from the events. A database that stopped committing has
        // said so already (the run's fatal error).
        lock.failure = summary?.fatal ? null : error;
        if (!summary?.fatal) log.error({ err: errorMessage(error) }, `the run's end was not recorded: ${errorMessage(error)}`);
      }
    },
  };
  return lock;
}
