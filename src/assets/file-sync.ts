// How the image stage's files reach the disk before their item commits `done`. Either each
// file and its folder is fsynced as it is written (five fsyncs per item), or, where the
// system has syncfs(2) (Linux, through `sync -f`), files are written without fsync and made
// durable in batches: one syncfs per folder for every file written in the last
// `batchWindowMs`. Either way an item is `done` only once its files are on disk.
//
// An fsync of a small file costs the process ~0.1 ms of CPU: the kernel writes that file's
// data and inode and flushes the disk's cache while the caller waits. One syncfs writes
// every file of a batch in one pass and flushes once (benchmark scenario 3).
import { execFile } from "node:child_process";
import { FatalRunError } from "../errors.js";

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
}

/** Each file fsynced as it is written, with its folder: where syncfs is missing (macOS, Windows). */
export const FSYNC_EACH_FILE: FileSync = { batched: false, durable: async () => {} };

/** Makes everything written into these folders durable, or rejects. */
export type SyncFolders = (folders: readonly string[]) => Promise<void>;

/** syncfs(2) of each folder's file system, by coreutils' or BusyBox's `sync -f`. */
export const syncfsWithCommand: SyncFolders = (folders) =>
  new Promise((resolve, reject) => {
    execFile("sync", ["-f", "--", ...folders], { timeout: 0 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = String(stderr).trim() || error.message;
      reject(new FatalRunError(`cannot make the output durable (sync -f ${folders.join(" ")}): ${why}`, "SYNC_FAILED", 3, { cause: error }));
    });
  });

interface Batch {
  folders: Set<string>;
  /** Sync without waiting out the window. */
  soon: boolean;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Files written without fsync, made durable a batch at a time. A batch gathers folders for
 * `windowMs` after its first request (or less, once a request says nothing more is coming),
 * then syncs them all. Requests made while a sync runs wait for the next one: a file written
 * after a syncfs began may not be in it.
 */
export class SyncfsBatches implements FileSync {
  readonly batched = true;
  private next: Batch | null = null;
  private syncing = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly syncFolders: SyncFolders,
    private readonly windowMs: number,
  ) {}

  durable(folders: Iterable<string>, options: { soon?: boolean } = {}): Promise<void> {
    if (!this.next) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { folders: new Set(), soon: false, done, resolve, reject };
    }
    const batch = this.next;
    for (const folder of folders) batch.folders.add(folder);
    if (options.soon && !batch.soon) {
      batch.soon = true;
      this.cancelTimer();
    }
    this.schedule();
    return batch.done;
  }

  private schedule(): void {
    // A sync in progress schedules the next batch when it ends.
    if (this.timer || this.syncing || !this.next) return;
    this.timer = setTimeout(() => void this.flush(), this.next.soon ? 0 : this.windowMs);
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async flush(): Promise<void> {
    this.timer = null;
    const batch = this.next;
    this.next = null;
    if (!batch) return;
    this.syncing = true;
    try {
      await this.syncFolders([...batch.folders]);
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    } finally {
      this.syncing = false;
      this.schedule();
    }
  }
}

/**
 * Batches when one `sync -f` of `probeFolder` works here, else each file fsynced. The probe
 * is a real syncfs: it also makes durable what the run wrote before (the database).
 */
export async function chooseFileSync(probeFolder: string, options: { windowMs: number; syncFolders?: SyncFolders; eachFile?: boolean }): Promise<FileSync> {
  if (options.eachFile) return FSYNC_EACH_FILE;
  const syncFolders = options.syncFolders ?? syncfsWithCommand;
  try {
    await syncFolders([probeFolder]);
  } catch {
    return FSYNC_EACH_FILE;
  }
  return new SyncfsBatches(syncFolders, options.windowMs);
}
