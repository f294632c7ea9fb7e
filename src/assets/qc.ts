// Quality gates run on each delivered image: blank or near-uniform frames, a size other than
// the one reported or asked for, near-duplicates within a row. Pure verdicts; the caller acts.
import sharp from "sharp";
import type { QcMode, QcSettings } from "../manifest/qc.js";
import type { DecodedPixels } from "./image-stage.js";
import { hammingDistance, perceptualHashOfLuminance } from "./phash.js";
import { encode8, LINEAR, luminance } from "./srgb.js";

export type { QcMode, QcSettings } from "../manifest/qc.js";

export type QcGate = "blank" | "size" | "duplicate";

export interface QcFlag {
  gate: QcGate;
  /** The gate's setting when it fired: `retry` asks for a remake, `flag` for a person's look. */
  mode: Exclude<QcMode, "off">;
  message: string;
}

/** What the job reported (null when it did not) and the ratio the request asked for, e.g. "16:9". */
export interface QcExpectation {
  width: number | null;
  height: number | null;
  aspectRatio: string | null;
}

/**
 * Statistics are taken at most this large: sharp's sharpness (stdev of a Laplacian) falls as a
 * picture is enlarged (a photo: 3.8 at 720 px, 0.6 at 2048), so one scale keeps one threshold.
 */
const STATS_MAX_SIDE = 512;

/**
 * Below blankMinSharpness, an image is blank while its largest channel stdev is under this many
 * blankMaxDeviation: a faint featureless haze (gradients of 16 and 40 levels: stdev 4.6 and 11.6,
 * sharpness 0.03–0.04), while the simulator's darkest gradient (stdev 19, sharpness 0.07) passes.
 */
const HAZE_DEVIATION_FACTOR = 3;

function modeOf(settings: QcSettings, gate: QcGate): QcMode {
  return gate === "duplicate" ? settings.duplicates : settings[gate];
}

function flag(settings: QcSettings, gate: QcGate, message: string): QcFlag | null {
  const mode = modeOf(settings, gate);
  return mode === "off" ? null : { gate, mode, message };
}

/** The pixels the statistics are taken on: at most STATS_MAX_SIDE a side, alpha over white. */
async function statsPixels(pixels: DecodedPixels): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { width, height, channels } = pixels;
  if (width <= STATS_MAX_SIDE && height <= STATS_MAX_SIDE) {
    // Small enough already (a sharp pipeline would cost more than the statistics themselves).
    if (channels === 1 || channels === 3) return pixels;
    const colours = channels - 1;
    const data = new Uint8Array(width * height * colours);
    for (let p = 0, out = 0; p < pixels.data.length; p += channels) {
      const alpha = pixels.data[p + colours]!;
      for (let c = 0; c < colours; c++) data[out++] = Math.floor((pixels.data[p + c]! * alpha + 255 * (255 - alpha)) / 255); // as sharp rounds
    }
    return { data, width, height, channels: colours };
  }
  const { data, info } = await sharp(pixels.data, { raw: { width, height, channels } })
    .flatten({ background: "#ffffff" })
    .resize(STATS_MAX_SIDE, STATS_MAX_SIDE, { fit: "inside", withoutEnlargement: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Buffers for one image's luminance and grey, reused: measure() fills and reads them without an await between. */
let scratchBuffers = { light: new Float64Array(0), grey: new Uint8Array(0) };
function scratch(pixels: number): { light: Float64Array; grey: Uint8Array } {
  if (scratchBuffers.light.length < pixels) scratchBuffers = { light: new Float64Array(pixels), grey: new Uint8Array(pixels) };
  return scratchBuffers;
}

/**
 * The largest colour-channel stdev and the sharpness, at most STATS_MAX_SIDE on a side, alpha over
 * white, as sharp's stats() defines them (sample stdev; stdev of the greyscale's Laplacian ÷ 9),
 * computed here: stats() costs about 8 ms a call whatever the image's size (it also finds the
 * dominant colour), more than the rest of an item's work.
 */
async function measure(pixels: DecodedPixels, withHash: boolean): Promise<{ maxDeviation: number; sharpness: number; phash: string | null }> {
  const { data, width, height, channels } = await statsPixels(pixels);
  const n = width * height;
  // One pass: each channel's sums, and the luminance in linear light (libvips' B_W).
  const { light, grey } = scratch(n);
  let maxDeviation = 0;
  const deviation = (sum: number, squares: number): number => (n > 1 ? Math.sqrt(Math.max(0, (squares - (sum * sum) / n) / (n - 1))) : 0);
  if (channels >= 3) {
    let r0 = 0, g0 = 0, b0 = 0, r2 = 0, g2 = 0, b2 = 0;
    for (let p = 0, at = 0; p < n; p++, at += channels) {
      const r = data[at]!, g = data[at + 1]!, b = data[at + 2]!;
      r0 += r; g0 += g; b0 += b;
      r2 += r * r; g2 += g * g; b2 += b * b;
      const y = luminance(r, g, b);
      light[p] = y;
      grey[p] = encode8(y);
    }
    maxDeviation = Math.max(deviation(r0, r2), deviation(g0, g2), deviation(b0, b2));
  } else {
    let v0 = 0, v2 = 0;
    for (let p = 0, at = 0; p < n; p++, at += channels) {
      const v = data[at]!;
      v0 += v;
      v2 += v * v;
      light[p] = LINEAR[v]!;
      grey[p] = v;
    }
    maxDeviation = deviation(v0, v2);
  }
  // The Laplacian of the greyscale's interior.
  let count = 0;
  let sum = 0;
  let sum2 = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1, p = y * width + 1; x < width - 1; x++, p++) {
      const v = Math.round((grey[p - width]! + grey[p + width]! + grey[p - 1]! + grey[p + 1]! - 4 * grey[p]!) / 9);
      count++;
      sum += v;
      sum2 += v * v;
    }
  }
  const sharpness = count > 1 ? Math.sqrt(Math.max(0, (sum2 - (sum * sum) / count) / (count - 1))) : 0;
  // The same luminance serves the duplicate gate's hash: no second decode.
  return { maxDeviation, sharpness, phash: withHash ? perceptualHashOfLuminance(light, width, height) : null };
}

/**
 * Why an image is blank, or null. Measured (largest stdev / sharpness): flat frames 0 / 0, grey
 * under stdev-2 grain 2.0 / 0.71 (blank: under stdev 4); a 0–255 gradient 74 / 0.11 and photos or scenes 30–95 / 2.6–7.6 pass.
 */
function blankProblem(measured: { maxDeviation: number; sharpness: number }, settings: QcSettings): string | null {
  const { maxDeviation, sharpness } = measured;
  const deviation = maxDeviation.toFixed(2);
  if (maxDeviation < settings.blankMaxDeviation) {
    return `blank: every colour channel is near-uniform (largest stdev ${deviation}, limit ${settings.blankMaxDeviation})`;
  }
  const hazeLimit = HAZE_DEVIATION_FACTOR * settings.blankMaxDeviation;
  if (sharpness < settings.blankMinSharpness && maxDeviation < hazeLimit) {
    return `near-uniform: low contrast (largest stdev ${deviation}, under ${hazeLimit}) and no detail (sharpness ${sharpness.toFixed(3)}, under ${settings.blankMinSharpness})`;
  }
  return null;
}

/** "16:9" → 16/9; null for anything else. */
function parseRatio(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (match === null) return null;
  const ratio = Number(match[1]) / Number(match[2]);
  return Number.isFinite(ratio) && ratio > 0 ? ratio : null;
}

/** Why the size is wrong, or null: the job's reported size exactly, the asked ratio within sizeTolerance. */
function sizeProblem(width: number, height: number, expect: QcExpectation, settings: QcSettings): string | null {
  const problems: string[] = [];
  if ((expect.width !== null && expect.width !== width) || (expect.height !== null && expect.height !== height)) {
    problems.push(`image is ${width}×${height}, the job reported ${expect.width ?? "?"}×${expect.height ?? "?"}`);
  }
  const asked = expect.aspectRatio === null ? null : parseRatio(expect.aspectRatio);
  if (asked !== null) {
    const off = Math.abs(width / height / asked - 1);
    if (off > settings.sizeTolerance) {
      const percent = (fraction: number): string => `${+(fraction * 100).toFixed(1)} %`;
      problems.push(`ratio ${(width / height).toFixed(3)} (${width}×${height}) is ${percent(off)} off the ${expect.aspectRatio} asked for (tolerance ${percent(settings.sizeTolerance)})`);
    }
  }
  return problems.length === 0 ? null : problems.join("; ");
}

/**
 * The blank and size gates on one delivered image, and its perceptual hash (for
 * duplicatesWithinRow). Gates set to `off` neither run nor flag.
 */
export async function checkImage(input: DecodedPixels, expect: QcExpectation, settings: QcSettings): Promise<{ flags: QcFlag[]; phash: string | null }> {
  const flags: QcFlag[] = [];
  const measured = settings.blank !== "off" || settings.duplicates !== "off" ? await measure(input, settings.duplicates !== "off") : null;
  if (settings.blank !== "off" && measured) {
    const problem = blankProblem(measured, settings);
    const raised = problem === null ? null : flag(settings, "blank", problem);
    if (raised !== null) flags.push(raised);
  }
  const size = settings.size === "off" ? null : sizeProblem(input.width, input.height, expect, settings);
  const raised = size === null ? null : flag(settings, "size", size);
  if (raised !== null) flags.push(raised);
  // The hash only serves the duplicate gate.
  return { flags, phash: measured?.phash ?? null };
}

export interface DuplicateFinding {
  key: string;
  /** The earlier item of the row it is nearest to. */
  duplicateOf: string;
  /** Bits apart, of 64. */
  distance: number;
  flag: QcFlag;
}

/**
 * The items of one row (in row order) that are near-duplicates of an earlier one: Hamming
 * distance ≤ duplicateMaxDistance, the nearest earlier item named (the first on a tie).
 * Leave out images the blank gate flagged before calling: every flat image hashes alike
 * (all zero), as do other frames with no structure, so they would all "duplicate" each other.
 * Measured at 64 bits: brightness, contrast, JPEG q50, resize, blur and 200 changed pixels 0;
 * an 8 px shift 4; a 1–2 % crop 8–10; two photos of similar circuit boards 16; unrelated 26–32.
 */
export function duplicatesWithinRow(items: readonly { key: string; phash: string }[], settings: QcSettings): DuplicateFinding[] {
  const mode = settings.duplicates;
  if (mode === "off") return [];
  const findings: DuplicateFinding[] = [];
  items.forEach((item, index) => {
    let nearest: { key: string; distance: number } | null = null;
    for (const earlier of items.slice(0, index)) {
      const distance = hammingDistance(item.phash, earlier.phash);
      if (distance <= settings.duplicateMaxDistance && (nearest === null || distance < nearest.distance)) nearest = { key: earlier.key, distance };
    }
    if (nearest === null) return;
    const message = `near-duplicate of ${nearest.key} (perceptual hashes ${nearest.distance} of 64 bits apart, limit ${settings.duplicateMaxDistance})`;
    findings.push({ key: item.key, duplicateOf: nearest.key, distance: nearest.distance, flag: { gate: "duplicate", mode, message } });
  });
  return findings;
}
