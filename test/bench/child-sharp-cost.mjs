// Child process: CPU per image of the image work the pipeline does on the simulator's tiny
// image (full decode to verify, then the thumbnail from the decoded pixels), done bare, to
// subtract from scenario 3.
import { join } from "node:path";
import sharp from "sharp";
import { childInput, childResult, DIST } from "./lib.mjs";

const input = await childInput();
const { RATIO_PIXELS } = await import(join(DIST, "providers/catalog.js"));
RATIO_PIXELS["1:1"] = { width: input.imagePx, height: input.imagePx };
const { renderSimImage } = await import(join(DIST, "sim/png.js"));
const bytes = await renderSimImage("1:1", "png", "job", "image");
// As the pipeline does it: one full decode to raw pixels, and the thumbnail from those pixels.
const once = async () => {
  const { data, info } = await sharp(bytes, { failOn: "truncated" }).raw().toBuffer({ resolveWithObject: true });
  await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .resize(input.thumbnail.size, input.thumbnail.size, { fit: "inside", withoutEnlargement: true })
    .toFormat(input.thumbnail.format, { quality: input.thumbnail.quality })
    .toBuffer();
};
// `parallel` at a time, as the pipeline's image pool runs them: two images in flight on two
// cores cost more CPU each than one at a time (libvips threads contend).
const parallel = input.parallel ?? 1;
const loop = async (count) => {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++;
      await once();
    }
  }));
};
await loop(50);
const before = process.cpuUsage();
const startedAt = performance.now();
await loop(input.iterations);
const cpu = process.cpuUsage(before);
await childResult({ cpuMsPerImage: (cpu.user + cpu.system) / 1000 / input.iterations, wallMsPerImage: (performance.now() - startedAt) / input.iterations, bytes: bytes.length });
