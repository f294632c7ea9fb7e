// Carries one finished job's image to disk: download (or take the bytes), verify, move into
// place, thumbnail, renditions, sidecar. Everything it writes is atomic, so a kill at any
// point leaves either the old files or the new ones, and the item still `downloading`.
import { dirname, join, relative } from "node:path";
import { writeFileAtomicSync, type WriteSync } from "../assets/atomic-file.js";
import type { Downloader } from "../assets/download.js";
import { holdsAnotherImage, supersedeFiles } from "../assets/superseded.js";
import type { FileSync } from "../assets/file-sync.js";
import { deliverImage, makeRendition, makeThumbnail, renditionSettingsHash, pathOnDisk, storedPath, type ImageInput, type OutputLayout } from "../assets/image-stage.js";
import { DEFAULTS } from "../defaults.js";
import { checkImage, type QcFlag } from "../assets/qc.js";
import type { ImageSource } from "../providers/provider.js";
import type { Store } from "../store/port.js";
import type { ItemPatch, ItemRecord, RenditionRecord } from "../store/types.js";
import type { RunnerOptions } from "./options.js";

export interface DeliveredPatch extends ItemPatch {
  filePath: string;
  thumbPath: string;
  sha256: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
}

export interface DeliveredItem {
  patch: DeliveredPatch;
  /** The blank and size gates' verdict, and the image's perceptual hash (assets/qc.ts). */
  qc: { flags: QcFlag[]; phash: string | null };
  /**
   * The folders its files went to. With batched file sync they are not yet durable: the item
   * may be `done` only once `fileSync.durable(folders)` resolves.
   */
  folders: string[];
}

export async function deliverItemImage(input: {
  item: ItemRecord;
  source: ImageSource;
  downloader: Downloader;
  layout: OutputLayout;
  store: Store;
  options: RunnerOptions;
  fileSync: FileSync;
  signal: AbortSignal;
  /** Told where earlier files of the key were moved, when there were any. */
  onSuperseded?: (folder: string) => void;
}): Promise<DeliveredItem> {
  const { item, layout, options } = input;
  // Batched: nothing fsynced here. Else each file, and a folder once its last file is in.
  const lastInFolder: WriteSync = input.fileSync.batched ? "none" : "file-and-folder";
  const expected = item.resultWidth !== null && item.resultHeight !== null ? { width: item.resultWidth, height: item.resultHeight } : null;
  const provenance = { prompt: item.request.prompt, model: item.request.model, provider: item.provider, jobId: item.jobId ?? item.imageRef, key: item.key };
  const original = input.source.kind === "bytes" ? input.source.bytes : await input.downloader.download(input.source.url, input.signal);
  // The sidecar goes into the image's folder last: its folder fsync covers both renames.
  const image = await deliverImage({
    layout, key: item.key, original, expected, maxInputPixels: options.maxInputPixels, provenance, sync: input.fileSync.batched ? "none" : "file-only",
    // Another image under this key (an earlier request, provider or attempt, or a file edited
    // by hand) is moved aside with its sidecar, thumbnail and renditions, never overwritten.
    beforeWrite: (sha256) => {
      if (holdsAnotherImage(layout, item.key, sha256)) {
        const folder = supersedeFiles(layout, item.key);
        if (folder) input.onSuperseded?.(folder);
      }
    },
  });
  // Local previews of one request are identical by design: no duplicate gate (nor its hash) for them.
  const qcSettings = item.provider === "local" ? { ...options.qc, duplicates: "off" as const } : options.qc;
  const qc = await checkImage(image.pixels, { width: item.resultWidth, height: item.resultHeight, aspectRatio: item.request.aspectRatio }, qcSettings);
  const thumbPath = await makeThumbnail({ layout, key: item.key, image: image.pixels, spec: options.thumbnail, maxInputPixels: options.maxInputPixels, sync: lastInFolder });
  const renditions = await ensureRenditions({ item, image: image.pixels, layout, store: input.store, options, force: true, sync: lastInFolder });
  const deliveredAt = Date.now();
  const sidecar = {
    key: item.key,
    rowId: item.rowId,
    provider: item.provider,
    prompt: item.request.prompt,
    request: item.request,
    jobId: item.jobId,
    adoptedImage: item.imageRef,
    credits: item.credits ?? 0,
    image: relative(layout.imagesDir, image.filePath),
    format: image.format,
    sha256: image.sha256,
    bytes: image.bytes,
    width: image.width,
    height: image.height,
    thumbnail: relative(layout.imagesDir, thumbPath),
    renditions: Object.fromEntries(renditions.map((r) => [r.name, relative(layout.imagesDir, pathOnDisk(layout, r.path))])),
    attempts: item.attempts,
    times: {
      planned: new Date(item.createdAt).toISOString(),
      submitted: item.submittedAt ? new Date(item.submittedAt).toISOString() : null,
      delivered: new Date(deliveredAt).toISOString(),
    },
  };
  const sidecarPath = join(layout.imagesDir, `${item.key}.json`);
  writeFileAtomicSync(sidecarPath, `${JSON.stringify(sidecar, null, 2)}\n`, lastInFolder);
  return {
    qc,
    patch: { filePath: storedPath(layout, image.filePath), thumbPath: storedPath(layout, thumbPath), sha256: image.sha256, width: image.width, height: image.height, format: image.format, bytes: image.bytes },
    folders: [...new Set([sidecarPath, thumbPath, ...renditions.map((r) => pathOnDisk(layout, r.path))].map((path) => dirname(path)))],
  };
}

/**
 * Makes the renditions an item lacks, or whose settings changed since they were made.
 * `force` remakes all (a newly delivered image). Returns every rendition of the item, its
 * path as the database keeps it (relative to the output folder).
 */
export async function ensureRenditions(input: {
  item: ItemRecord;
  image: ImageInput;
  layout: OutputLayout;
  store: Store;
  options: Pick<RunnerOptions, "renditions" | "maxInputPixels">;
  force: boolean;
  /** How each rendition's write is made durable (default: fsynced with its folder). */
  sync?: WriteSync;
}): Promise<{ name: string; path: string }[]> {
  const { item, store } = input;
  // Read only when a made one may be kept: a newly delivered image remakes them all.
  const made = input.force || input.options.renditions.length === 0 ? new Map<string, RenditionRecord>() : new Map((await store.renditionsOf(item.id)).map((r) => [r.name, r]));
  const result: { name: string; path: string }[] = [];
  for (const spec of input.options.renditions) {
    const settingsHash = renditionSettingsHash(spec);
    const existing = made.get(spec.name);
    if (!input.force && existing && existing.settingsHash === settingsHash) {
      result.push({ name: spec.name, path: existing.path });
      continue;
    }
    const provenance = { prompt: item.request.prompt, model: item.request.model, provider: item.provider, jobId: item.jobId ?? item.imageRef, key: item.key };
    const r = await makeRendition({ layout: input.layout, key: item.key, image: input.image, spec, maxInputPixels: input.options.maxInputPixels ?? DEFAULTS.maxInputPixels, provenance, sync: input.sync ?? "file-and-folder" });
    const path = storedPath(input.layout, r.path);
    await store.saveRendition({ itemId: item.id, name: spec.name, settingsHash, path, width: r.width, height: r.height });
    result.push({ name: spec.name, path });
  }
  return result;
}
