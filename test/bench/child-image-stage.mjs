// Child process: images per second through either the pipeline's image stage
// (deliverItemImage: verify, stamp provenance, place, thumbnail, renditions, sidecar, with the
// runner's pool size, then the wait for its files' sync as the runner waits before `done`) or
// a bare sharp loop making the same resizes, on the same images.
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { childInput, childResult, DIST } from "./lib.mjs";

const input = await childInput();
const images = input.images.map((path) => readFileSync(path));
const WARM_UP = 2;
const jobs = Array.from({ length: input.count }, (_, i) => ({ i, bytes: images[i % images.length] }));
// Untimed, so both sides start with sharp loaded and warm; items after the timed ones.
const warmUp = Array.from({ length: WARM_UP }, (_, k) => ({ i: input.count + k, bytes: images[k % images.length] }));
const limit = pLimit(input.parallel);

async function bare({ i, bytes }) {
  const t = input.thumbnail;
  const thumb = await sharp(bytes).resize(t.size, t.size, { fit: "inside", withoutEnlargement: true }).toFormat(t.format, { quality: t.quality }).toBuffer();
  await writeFile(join(input.out, `thumb-${i}.${t.format}`), thumb);
  for (const r of input.renditions) {
    const position = r.position === "attention" ? sharp.strategy.attention : r.position === "entropy" ? sharp.strategy.entropy : "centre";
    const data = await sharp(bytes)
      .resize(r.width, r.height, { fit: r.fit, position, background: { r: 255, g: 255, b: 255, alpha: 1 } })
      .toFormat(r.format, { quality: r.quality })
      .toBuffer();
    await writeFile(join(input.out, `${r.name}-${i}.${r.format}`), data);
  }
}

let work;
/** After the pool: the pipeline waits for its files to be durable before an item is done. */
let finish = async () => {};
if (input.mode === "bare") {
  await mkdir(input.out, { recursive: true });
  work = bare;
} else {
  const storeModule = await import(join(DIST, "store/sqlite/sqlite-store.js")).catch(() => import(join(DIST, "store/store.js")));
  const Store = storeModule.SqliteStore ?? storeModule.Store;
  const { outputLayout } = await import(join(DIST, "assets/image-stage.js"));
  const { deliverItemImage } = await import(join(DIST, "runner/deliver-item.js"));
  const { requestHash } = await import(join(DIST, "manifest/index.js"));
  const store = Store.open(join(input.out, "state.sqlite"));
  const planned = [...jobs, ...warmUp].map(({ i }) => {
    const item = { key: `img-${i}`, rowId: `img-${i}`, source: `bench row ${i + 1}`, variant: null, matrix: {}, request: { prompt: `Bench image number ${i}`, model: "seedream3.0", aspectRatio: "1:1" } };
    return { item, requestHash: requestHash(item.request, "pictory") };
  });
  await store.syncManifest(planned, "pictory");
  const records = await store.inStates(["queued"]);
  const layout = outputLayout(input.out);
  const { DEFAULTS } = await import(join(DIST, "defaults.js"));
  // The quality gates as a run has them by default (builds from before them have none).
  const options = { thumbnail: input.thumbnail, renditions: input.renditions, maxInputPixels: 64 * 1024 * 1024, qc: DEFAULTS.qc };
  const signal = new AbortController().signal;
  // As `imgbatch run` chooses (IMGBATCH_FSYNC_EACH_FILE=1 measures the fsync per file).
  // Builds from before batched sync (IMGBATCH_DIST) fsync each file and have no file-sync.js.
  const fileSync = await import(join(DIST, "assets/file-sync.js")).then(
    ({ chooseFileSync }) => chooseFileSync([input.out], { windowMs: DEFAULTS.fileSyncWindowMs, eachFile: /^(1|true|yes)$/i.test(process.env.IMGBATCH_FSYNC_EACH_FILE ?? "") }),
    () => null,
  );
  work = ({ i, bytes }) => deliverItemImage({ item: records[i], source: { kind: "bytes", bytes }, downloader: null, layout, store, options, fileSync, signal });
  // As the runner's image stage waits: at once when no other image is being made.
  if (fileSync) finish = (delivered) => fileSync.durable(delivered.folders, { soon: limit.activeCount === 0 && limit.pendingCount === 0 });
}

const deliver = async (job) => finish(await limit(() => work(job)));
await Promise.all(warmUp.map(deliver));
const cpuBefore = process.cpuUsage();
const startedAt = performance.now();
await Promise.all(jobs.map(deliver));
const wallMs = performance.now() - startedAt;
const cpu = process.cpuUsage(cpuBefore);
await childResult({ wallMs, imagesPerSecond: input.count / (wallMs / 1000), cpuMsPerImage: (cpu.user + cpu.system) / 1000 / input.count, sharpConcurrency: sharp.concurrency() });
