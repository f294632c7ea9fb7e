// How the image stage's files reach the disk before their item commits `done`. Either each
// file and its folder is fsynced as it is written (five fsyncs per item), or, on Linux with
// GNU coreutils, files are written without fsync and made durable in batches: one
// `sync -f` (syncfs(2) of each folder's file system) for every file written in the last
// `windowMs`. Either way an item is `done` only once its files are on disk.
//
// An fsync of a small file costs the process ~0.06 ms of CPU: the kernel writes that file's
// data and inode and flushes the disk's cache while the caller waits. One syncfs writes
// every file of a batch in one pass and flushes once (benchmark scenario 3).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { release } from "node:os";
import { deferred, type Deferred } from "../deferred.js";
import { FatalRunError, errorMessage } from "../errors.js";

export interface FileSync {
  /**
   * False: each file is fsynced as it is written and `durable` has nothing left to do.
   * True: files are written without fsync, and `durable` makes them so.
   */
  readonly batched: boolean;
  /**
   * Resolves once every file written into `folders` before the call is on disk. `soon`: no
   * more files are coming for now (the image stage is idle), so the batch need not wait.
   */
  durable(folders: Iterable<string>, options?: { soon?: boolean }): Promise<void>;
  /**
   * The run is over: a batch still gathering is dropped and a sync in progress is ended, so
   * that neither holds the process past its stop (nobody waits for them any more).
   */
  close(): void;
}

/** Each file fsynced as it is written, with its folder: where batched syncfs cannot be trusted. */
export const FSYNC_EACH_FILE: FileSync = { batched: false, durable: async () => {}, close: () => {} };

/** Makes everything written into these folders durable, or rejects (FatalRunError SYNC_FAILED). */
export type SyncFolders = (folders: readonly string[], signal?: AbortSignal) => Promise<void>;

/** A sync that takes this long is taken for a hung file system (a hard NFS mount, a dying disk). */
const SYNC_TIMEOUT_MS = 60_000;

/**
 * GNU coreutils' `sync -f` by its absolute path (a `sync` earlier on PATH, such as one in
 * node_modules/.bin under `npm run`, must not stand in for it), or null when there is none.
 */
export async function gnuSyncCommand(): Promise<string | null> {
  for (const path of ["/usr/bin/sync", "/bin/sync"]) {
    if (!existsSync(path)) continue;
    const version = await new Promise<string>((resolve) => execFile(path, ["--version"], { timeout: 5_000 }, (error, stdout) => resolve(error ? "" : String(stdout))));
    return /GNU coreutils/.test(version) ? path : null;
  }
  return null;
}

/** syncfs(2) of each folder's file system through coreutils' `sync -f` at `command`. */
export function syncfsWith(command: string): SyncFolders {
  return (folders, signal) =>
    new Promise((resolve, reject) => {
      // An abort, not execFile's `timeout`: that one answers only once the child has exited,
      // and a syncfs stuck on a dying disk cannot be interrupted.
      const timeout = AbortSignal.timeout(SYNC_TIMEOUT_MS);
      execFile(command, ["-f", "--", ...folders], { signal: signal ? AbortSignal.any([signal, timeout]) : timeout }, (error, _stdout, stderr) => {
        if (!error) return resolve();
        const why = timeout.aborted ? `no answer in ${SYNC_TIMEOUT_MS / 1000} s` : String(stderr).trim() || error.message;
        reject(new FatalRunError(`cannot make the output durable (sync -f ${folders.join(" ")}): ${why}`, "SYNC_FAILED", 3, { cause: error }));
      });
    });
}

interface Batch {
  folders: Set<string>;
  /** Sync without waiting out the window. */
  soon: boolean;
  synced: Deferred;
}

/**
 * Files written without fsync, made durable a batch at a time. A batch gathers folders for
 * `windowMs` after its first request (or less, once a request says nothing more is coming),
 * then syncs them all. Requests made while a sync runs wait for the next one: a file written
 * after a syncfs began may not be in it. After one failed sync every later request fails
 * too: syncfs reports a lost write once, so a later sync that succeeds proves nothing about
 * files written before it.
 */
export class SyncfsBatches implements FileSync {
  readonly batched = true;
  private next: Batch | null = null;
  private syncing = false;
  private timer: NodeJS.Timeout | null = null;
  private failure: unknown = null;
  private readonly closed = new AbortController();

  constructor(
    private readonly syncFolders: SyncFolders,
    private readonly windowMs: number,
  ) {}

  durable(folders: Iterable<string>, options: { soon?: boolean } = {}): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const batch = (this.next ??= { folders: new Set(), soon: false, synced: deferred() });
    for (const folder of folders) batch.folders.add(folder);
    if (options.soon && !batch.soon) {
      batch.soon = true;
      this.cancelTimer();
    }
    this.schedule();
    return batch.synced.promise;
  }

  close(): void {
    const stopped = new DOMException("the run is over", "AbortError");
    this.failure ??= stopped;
    this.dropNext(stopped);
    this.closed.abort(stopped);
  }

  private schedule(): void {
    // A sync in progress schedules the next batch when it ends.
    if (this.timer || this.syncing || !this.next) return;
    this.timer = setTimeout(() => void this.flush(), this.next.soon ? 0 : this.windowMs);
  }

  private takeNext(): Batch | null {
    const batch = this.next;
    this.next = null;
    return batch;
  }

  /** The batch still gathering fails now, not when its window ends. */
  private dropNext(error: unknown): void {
    this.cancelTimer();
    this.takeNext()?.synced.reject(error);
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async flush(): Promise<void> {
    this.timer = null;
    const batch = this.takeNext();
    if (!batch) return;
    if (this.failure) return batch.synced.reject(this.failure);
    this.syncing = true;
    try {
      await this.syncFolders([...batch.folders], this.closed.signal);
      batch.synced.resolve();
    } catch (error) {
      this.failure = error;
      batch.synced.reject(error);
      this.dropNext(error);
    } finally {
      this.syncing = false;
      this.schedule();
    }
  }
}

/** Linux 5.8 and later: syncfs(2) reports a failed writeback to the caller (errseq). */
export function kernelReportsSyncfsErrors(platform: NodeJS.Platform = process.platform, kernel: string = release()): boolean {
  if (platform !== "linux") return false;
  const [major = 0, minor = 0] = kernel.split(".").map((part) => Number.parseInt(part, 10));
  return major > 5 || (major === 5 && minor >= 8);
}

/**
 * Batches when syncfs can be trusted here (Linux ≥ 5.8, GNU coreutils' `sync`) and one
 * `sync -f` of each probe folder works, else each file fsynced. BSD and macOS `sync` ignore
 * `-f`, and BusyBox's ignores syncfs's errors: those fsync each file. The probe is a real
 * syncfs: it also makes durable what the run wrote before (the database).
 */
export async function chooseFileSync(
  probeFolders: readonly string[],
  options: { windowMs: number; eachFile?: boolean; syncFolders?: SyncFolders; signal?: AbortSignal; warn?: (message: string) => void },
): Promise<FileSync> {
  if (options.eachFile) return FSYNC_EACH_FILE;
  let syncFolders = options.syncFolders;
  if (!syncFolders) {
    const command = kernelReportsSyncfsErrors() ? await gnuSyncCommand() : null;
    if (!command) return FSYNC_EACH_FILE;
    syncFolders = syncfsWith(command);
  }
  try {
    await syncFolders(probeFolders, options.signal);
  } catch (error) {
    if (!options.signal?.aborted) options.warn?.(`sync -f of the output folders failed (${errorMessage(error)}): each file is fsynced instead`);
    return FSYNC_EACH_FILE;
  }
  return new SyncfsBatches(syncFolders, options.windowMs);
}
