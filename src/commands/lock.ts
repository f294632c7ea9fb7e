// Whether the process holding a manifest's lock is gone. Shared by `run` (take a stale lock
// over) and `status` (tell a run in progress from one whose process died).
import { hostname } from "node:os";
import type { LockHolder } from "../store/types.js";

/** Beyond this, a lock held from another host (whose pid cannot be checked) is stale. */
export const FOREIGN_LOCK_STALE_AFTER_MS = 3 * 60_000;

/** A lock whose process is gone is stale. On another host the pid cannot be checked: the heartbeat tells. */
export function lockIsStale(holder: LockHolder, now: number, host = hostname()): boolean {
  if (holder.host === host) {
    if (holder.pid === process.pid) return true;
    try {
      process.kill(holder.pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
  return now - holder.heartbeatAt > FOREIGN_LOCK_STALE_AFTER_MS;
}
