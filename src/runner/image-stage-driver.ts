// The image stage's driver: carries each finished job's image through download, verify,
// thumbnail, renditions and sidecar (deliver-item.ts), `downloadConcurrency` at a time, with
// retries of its own: a backoff for a flaky download, a fresh URL for an expired one, the
// Retry-After of a throttled re-read. The runner starts it and keeps the bookkeeping.
import pLimit from "p-limit";
import type { Downloader } from "../assets/download.js";
import { ResultUrlExpiredError } from "../assets/download.js";
import type { FileSync } from "../assets/file-sync.js";
import type { OutputLayout } from "../assets/image-stage.js";
import type { ImageSource } from "../providers/provider.js";
import type { ItemWrite } from "../store/port.js";
import type { ItemQcFlag, ItemRecord } from "../store/types.js";
import { deliverItemImage, type DeliveredItem } from "./deliver-item.js";
import { afterDeliveryFailed, afterQuality, afterReread, stepPolicy } from "./next-step.js";
import { duplicatesWithinRow } from "../assets/qc.js";
import type { DriverDeps } from "./options.js";
import { backoffDelayMs, classifyFailure } from "./retry-policy.js";
import { sleepMs } from "./sleep.js";

/** What the stage asks of the runner: its transitions keep the run's counts and events. */
export interface ImageStageHost {
  move(item: ItemRecord, write: ItemWrite): Promise<ItemRecord>;
  /** A job that reads in-progress again goes back to the service side of the run. */
  backToService(item: ItemRecord): void;
  /** True when no job is at the service: no further image is on its way to the stage. */
  serviceIdle(): boolean;
}

export interface ImageStageDeps extends DriverDeps {
  downloader: Downloader;
  layout: OutputLayout;
  fileSync: FileSync;
  /** The run's hard stop: aborts downloads and waits. */
  signal: AbortSignal;
  /** Any stop: ends a throttled wait (a paid image waits for the next run rather than for the service). */
  softSignal: AbortSignal;
}

export class ImageStageDriver {
  private readonly pool: ReturnType<typeof pLimit>;
  /** Items whose files are written and wait for their batch's sync (file-sync.ts). */
  private landingCount = 0;
  /** The last item of each row finishing now: the next of that row waits its turn (finish). */
  private readonly rowTurns = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: ImageStageDeps,
    private readonly host: ImageStageHost,
  ) {
    this.pool = pLimit(Math.max(1, deps.options.downloadConcurrency));
  }

  /** Items of the stage that hold no image any more: their files wait for a sync. */
  get landing(): number {
    return this.landingCount;
  }

  async deliver(start: ItemRecord, image: ImageSource | null): Promise<void> {
    let item = start;
    let source = image;
    let refreshes = 0;
    // Only a failed download counts: a refreshed URL and a throttled re-read use no attempt.
    let failedDownloads = 0;
    for (;;) {
      if (this.deps.signal.aborted) return;
      let readInSlot = false;
      // Waits (backoff, a throttled provider, the --rpm bucket) happen outside a pool slot, so
      // one flaky download or a 429 never stalls the rest. The job is re-read inside the slot,
      // right before the download: a URL read before waiting for a slot could expire during
      // the wait (hundreds of images may be queued), and a local re-read renders (CPU work).
      // (An adopted image without a job id pages through the image list in the slot: rare.)
      if (!source && item.jobId !== null) {
        try {
          await this.deps.gate.take(this.deps.signal);
        } catch {
          return;
        }
      }
      try {
        const delivered = await this.pool(async () => {
          if (this.deps.signal.aborted) return null;
          if (!source) {
            readInSlot = true;
            source = await this.freshImageSource(item);
          }
          if (!source) return null; // the job went back to the queue or failed
          return deliverItemImage({
            item,
            source,
            downloader: this.deps.downloader,
            layout: this.deps.layout,
            store: this.deps.store,
            options: this.deps.options,
            fileSync: this.deps.fileSync,
            signal: this.deps.signal,
            onSuperseded: (folder) => this.deps.log.info({ item: item.key, folder }, `kept the earlier files of ${item.key} in ${folder}`),
          });
        });
        if (!delivered) return;
        // Outside the pool slot: the next image is made while this one's files are synced.
        if (!(await this.untilDurable(delivered.folders))) return;
        await this.finish(item, delivered);
        // Per item at debug: people follow the status line or the 30-second summary.
        if (this.deps.log.isLevelEnabled("debug")) {
          this.deps.log.debug(
            { item: item.key, provider: item.provider, attempts: item.attempts },
            `done ${item.key} (${item.provider}, ${((this.deps.now() - (item.submittedAt ?? item.createdAt)) / 1000).toFixed(1)} s, attempt ${item.attempts} of ${this.deps.options.maxAttempts})`,
          );
        }
        return;
      } catch (error) {
        // A URL read in this very slot that fails at once is broken, not stale: that fails the item.
        if (error instanceof ResultUrlExpiredError && !readInSlot && refreshes < this.deps.options.maxAttempts) {
          refreshes++;
          source = null;
          item = await this.host.move(item, { note: "result URL expired: reading the job for a fresh one" });
          continue;
        }
        const failure = classifyFailure(error);
        if (failure.kind === "aborted") return;
        if (failure.kind === "fatal") throw failure.error;
        if (failure.kind === "throttled") {
          // Re-reading the job was throttled: it waits its Retry-After outside the pool slot.
          try {
            await sleepMs(this.deps.gate.retryAfterMs(failure.retryAfterMs), this.deps.softSignal);
          } catch {
            return; // stopping: the item stays `downloading`, the next run delivers it
          }
          continue;
        }
        if (failure.kind === "retryable" && ++failedDownloads < this.deps.options.maxAttempts) {
          const delayMs = backoffDelayMs(failedDownloads, this.deps.options, this.deps.random);
          this.deps.log.debug({ item: item.key, code: failure.code }, `download of ${item.key} failed (${failure.code}); again in ${delayMs} ms`);
          try {
            await sleepMs(delayMs, this.deps.signal);
          } catch {
            return;
          }
          continue;
        }
        await this.host.move(item, afterDeliveryFailed(failure.code, failure.message));
        return;
      }
    }
  }

  /**
   * Done, with the quality gates' verdict; a `retry` verdict remakes it (paid). One item of a row
   * at a time, so that of two variants delivered together the second sees the first.
   */
  private async finish(item: ItemRecord, delivered: DeliveredItem): Promise<void> {
    const before = this.rowTurns.get(item.rowId) ?? Promise.resolve();
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    this.rowTurns.set(item.rowId, turn);
    await before;
    try {
      const { patch } = delivered;
      const quality = afterQuality(item, [...delivered.qc.flags, ...(await this.duplicateFlags(item, delivered.qc))], this.deps.options.qc);
      const flagged = quality.flags.length ? `; quality: ${quality.flags.map((f) => f.gate).join(", ")}` : "";
      const done = await this.host.move(item, { to: "done", set: { ...patch, completedAt: this.deps.now(), qcFlags: quality.flags, phash: delivered.qc.phash }, note: `${patch.width}×${patch.height} ${patch.format}, ${patch.bytes} bytes${flagged}` });
      if (quality.remake) {
        // Its record stays (superseded, with its credits); the fresh one is queued and paid for again.
        await this.deps.store.remake(done, quality.remake.why, { qcRetries: quality.remake.qcRetries });
        this.deps.log.info({ item: item.key }, `${item.key}: ${quality.remake.why}`);
      }
    } finally {
      release();
      if (this.rowTurns.get(item.rowId) === turn) this.rowTurns.delete(item.rowId);
    }
  }

  /**
   * The duplicate gate: the nearest earlier delivered image of the row within the distance, blank
   * ones left out (flat frames all hash alike). Not for local previews: the renderer draws one
   * request the same every time, so its variants are identical by design.
   */
  private async duplicateFlags(item: ItemRecord, qc: { flags: readonly { gate: string }[]; phash: string | null }): Promise<ItemQcFlag[]> {
    if (qc.phash === null || qc.flags.some((f) => f.gate === "blank")) return [];
    const rowmates = (await this.deps.store.rowImages(item.rowId, item.key)).filter((r) => !r.qcFlags.some((f) => f.gate === "blank"));
    const finding = duplicatesWithinRow([...rowmates, { key: item.key, phash: qc.phash }], this.deps.options.qc).find((f) => f.key === item.key);
    return finding ? [finding.flag] : [];
  }

  /**
   * Waits until the item's files are on disk. False when the run is hard-stopped first: the
   * item stays `downloading` and the next run delivers it again.
   */
  private async untilDurable(folders: string[]): Promise<boolean> {
    if (!this.deps.fileSync.batched) return true;
    const { signal } = this.deps;
    if (signal.aborted) return false;
    // The last image of the run for now (none being made, none on its way from the service):
    // its files need not wait for others to join them. While jobs are at the service the
    // window holds, or each pause of the stage would cost a `sync -f` (~1 ms of CPU to start).
    const idle = this.pool.activeCount === 0 && this.pool.pendingCount === 0 && this.host.serviceIdle();
    const synced = this.deps.fileSync.durable(folders, { soon: idle }).then(() => true);
    // A sync that fails after a stop has nobody left to tell.
    synced.catch(() => {});
    let onAbort!: () => void;
    const stopped = new Promise<false>((resolve) => {
      onAbort = () => resolve(false);
    });
    signal.addEventListener("abort", onAbort, { once: true });
    this.landingCount++;
    try {
      return await Promise.race([synced, stopped]);
    } finally {
      this.landingCount--;
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Reads the job again: after a restart (local bytes are not kept) or when a URL expired. */
  private async freshImageSource(item: ItemRecord): Promise<ImageSource | null> {
    if (item.jobId === null) {
      // An adopted image whose job the job list did not name: its URL comes from the image list.
      const search = await this.deps.gate.findLostJob(item, { signal: this.deps.signal, tokenSignal: this.deps.signal, exceptRef: item.imageRef ?? undefined });
      if (search.found === "image" && search.imageRef === item.imageRef) {
        await this.host.move(item, { set: { resultUrl: search.url } });
        return { kind: "url", url: search.url };
      }
      await this.host.move(item, afterDeliveryFailed("RESULT_URL_EXPIRED", "the adopted image's URL expired and the image list no longer offers it"));
      return null;
    }
    // Its token was taken before the slot (deliver).
    const job = await this.deps.gate.send(this.deps.provider.getJob({ jobId: item.jobId, request: item.request }, this.deps.signal));
    switch (job.status) {
      case "completed":
        if (job.image.kind === "url") await this.host.move(item, { set: { resultUrl: job.image.url } });
        return job.image;
      case "in-progress":
      case "failed":
      case "gone": {
        const outcome = job.status === "in-progress" ? { kind: "in-progress" as const, nextReadMs: this.deps.options.pollIntervalMs } : { kind: job.status === "gone" ? ("gone" as const) : ("job-failed" as const), retryable: true, code: job.code, message: job.message };
        const after = await this.host.move(item, afterReread(item, outcome, { ...stepPolicy(this.deps.options, this.deps.now(), this.deps.random), pollIntervalMs: this.deps.options.pollIntervalMs }));
        // A job that reads in progress again goes back to the service side.
        if (after.state === "running") this.host.backToService(after);
        return null;
      }
    }
  }
}
