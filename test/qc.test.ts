// Quality gates on crafted images (made with sharp here), and the manifest's `qc:` section.
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { DecodedPixels } from "../src/assets/image-stage.js";
import { hammingDistance, perceptualHash } from "../src/assets/phash.js";
import { checkImage, duplicatesWithinRow, type QcExpectation, type QcSettings } from "../src/assets/qc.js";
import { DEFAULTS } from "../src/defaults.js";
import { defaultQcSettings, readQcSection } from "../src/manifest/qc.js";

const ANY_SIZE: QcExpectation = { width: null, height: null, aspectRatio: null };
const SIDE = 512;

async function decode(image: sharp.Sharp): Promise<DecodedPixels> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function flat(background: { r: number; g: number; b: number }, width = SIDE, height = SIDE): Promise<DecodedPixels> {
  return decode(sharp({ create: { width, height, channels: 3, background } }));
}

/** Every pixel from its column and row: (x, y) → [r, g, b]. */
function painted(paint: (x: number, y: number) => [number, number, number], width = SIDE, height = SIDE): Promise<DecodedPixels> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(paint(x, y).map(Math.round), (y * width + x) * 3);
  return decode(sharp(data, { raw: { width, height, channels: 3 } }));
}
const grey = (level: number): [number, number, number] => [level, level, level];

const LANDSCAPE = `<defs><linearGradient id="sky" x2="0" y2="1"><stop offset="0" stop-color="#2b6cb0"/><stop offset="1" stop-color="#f6ad55"/></linearGradient></defs>
  <rect width="512" height="512" fill="url(#sky)"/><circle cx="140" cy="150" r="60" fill="#fefcbf"/>
  <path d="M0 380 Q128 300 256 370 T512 350 V512 H0 Z" fill="#276749"/><path d="M0 440 Q160 400 300 450 T512 430 V512 H0 Z" fill="#22543d"/>`;
const BLOCKS = `<rect width="512" height="512" fill="#1a202c"/><rect x="60" y="60" width="160" height="390" fill="#e53e3e"/>
  <rect x="280" y="200" width="180" height="120" fill="#ecc94b"/><circle cx="380" cy="110" r="50" fill="#4fd1c5"/>`;

/** Grain around mid-grey from a seeded generator (sharp's own noise differs on every call). */
function noise(sigma: number, seed = 1): sharp.Sharp {
  let state = seed;
  const uniform = (): number => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const data = Buffer.alloc(SIDE * SIDE * 3);
  // The sum of four uniforms is near-gaussian, with a stdev of sqrt(4/12) per unit of scale.
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(128 + ((uniform() + uniform() + uniform() + uniform()) * sigma) / Math.sqrt(4 / 12))));
  return sharp(data, { raw: { width: SIDE, height: SIDE, channels: 3 } });
}

/** A drawn scene under gaussian grain, as a photo-like image (4 channels: the composite adds alpha). */
async function scene(body: string): Promise<DecodedPixels> {
  const grain = await noise(24).png().toBuffer();
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${SIDE}" height="${SIDE}">${body}</svg>`);
  return decode(sharp(svg).flatten().composite([{ input: grain, blend: "overlay" }]));
}

function withChangedPixels(image: DecodedPixels, count: number): DecodedPixels {
  const data = Buffer.from(image.data);
  for (let i = 0; i < count; i++) data.fill(255, i * 997 * image.channels, i * 997 * image.channels + 3); // scattered white dots
  return { ...image, data };
}

const settings = (over: Partial<QcSettings> = {}): QcSettings => ({ ...defaultQcSettings(), ...over });

describe("the blank gate", () => {
  it.each([
    ["flat black", () => flat({ r: 0, g: 0, b: 0 })],
    ["flat grey", () => flat({ r: 128, g: 128, b: 128 })],
    ["a flat colour", () => flat({ r: 200, g: 60, b: 30 })],
    ["flat grey under fine grain (sharp, but of stdev 2)", () => decode(noise(2))],
    ["a faint 16-level gradient (a featureless haze)", () => painted((x) => grey(120 + (x * 16) / 511))],
  ])("flags %s", async (_name, make) => {
    const { flags } = await checkImage(await make(), ANY_SIZE, settings());
    expect(flags).toEqual([{ gate: "blank", mode: "retry", message: expect.stringMatching(/^(blank|near-uniform): /) }]);
  });

  it.each([
    ["a smooth horizontal gradient 512×512", () => painted((x) => grey((x * 255) / 511))],
    ["the simulator's darkest gradient", () => painted((_x, y) => [52, 73, 94].map((c) => c * (1 - (0.7 * y) / 720)) as [number, number, number], 1280, 720)],
    ["a photo-like scene", () => scene(LANDSCAPE)],
    ["gaussian noise", () => decode(noise(40))],
  ])("passes %s", async (_name, make) => {
    expect((await checkImage(await make(), ANY_SIZE, settings())).flags).toEqual([]);
  });

  it("neither runs nor flags when off, and flags without a remake in flag mode", async () => {
    const black = await flat({ r: 0, g: 0, b: 0 });
    expect((await checkImage(black, ANY_SIZE, settings({ blank: "off" }))).flags).toEqual([]);
    expect((await checkImage(black, ANY_SIZE, settings({ blank: "flag" }))).flags.map((f) => f.mode)).toEqual(["flag"]);
  });
});

describe("the size gate", () => {
  const landscape = () => flat({ r: 90, g: 90, b: 90 }, 1280, 720);

  it.each<[string, QcExpectation, RegExp | null]>([
    ["the size reported and the ratio asked", { width: 1280, height: 720, aspectRatio: "16:9" }, null],
    ["a size other than the job reported", { width: 1920, height: 1080, aspectRatio: "16:9" }, /^image is 1280×720, the job reported 1920×1080$/],
    ["a ratio other than asked", { width: null, height: null, aspectRatio: "1:1" }, /^ratio 1\.778 \(1280×720\) is 77\.8 % off the 1:1 asked for \(tolerance 2 %\)$/],
    ["both", { width: 720, height: 1280, aspectRatio: "9:16" }, /reported 720×1280; ratio .* off the 9:16/],
  ])("%s", async (_name, expectation, message) => {
    const { flags } = await checkImage(await landscape(), expectation, settings({ blank: "off" }));
    expect(flags).toEqual(message === null ? [] : [{ gate: "size", mode: "flag", message: expect.stringMatching(message) }]);
  });

  it("allows a model's rounding within sizeTolerance (1344×768 is 1.6 % off 16:9), not beyond", async () => {
    const image = await flat({ r: 90, g: 90, b: 90 }, 1344, 768);
    const asked: QcExpectation = { width: null, height: null, aspectRatio: "16:9" };
    expect((await checkImage(image, asked, settings({ blank: "off" }))).flags).toEqual([]);
    expect((await checkImage(image, asked, settings({ blank: "off", sizeTolerance: 0.01 }))).flags.map((f) => f.gate)).toEqual(["size"]);
    expect((await checkImage(image, asked, settings({ blank: "off", size: "off", sizeTolerance: 0.01 }))).flags).toEqual([]);
  });
});

describe("near-duplicates within a row", () => {
  it("hashes to 16 hex digits and measures distance in bits", async () => {
    const hash = await perceptualHash(await scene(LANDSCAPE));
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(hammingDistance(hash, hash)).toBe(0);
    expect(hammingDistance("0000000000000000", "ffffffffffffffff")).toBe(64);
    expect(hammingDistance("0000000000000000", "8000000000000003")).toBe(3);
    expect(() => hammingDistance("00", "0000000000000000")).toThrow(/not a 64-bit hex hash/);
  });

  it("flags a brighter copy and a copy with changed pixels, not a different picture", async () => {
    const original = await scene(LANDSCAPE);
    const hashes = {
      original: (await checkImage(original, ANY_SIZE, settings())).phash!,
      brighter: (await checkImage(await decode(sharp(original.data, { raw: original }).linear(1, 14)), ANY_SIZE, settings())).phash!,
      dotted: (await checkImage(withChangedPixels(original, 150), ANY_SIZE, settings())).phash!,
      different: (await checkImage(await scene(BLOCKS), ANY_SIZE, settings())).phash!,
    };
    expect(hammingDistance(hashes.original, hashes.different)).toBeGreaterThan(DEFAULTS.qc.duplicateMaxDistance * 2);
    const row = Object.entries(hashes).map(([key, phash]) => ({ key, phash }));
    const found = duplicatesWithinRow(row, settings());
    expect(found.map(({ key, duplicateOf, flag }) => [key, duplicateOf, flag.gate, flag.mode])).toEqual([
      ["brighter", "original", "duplicate", "flag"],
      ["dotted", "original", "duplicate", "flag"],
    ]);
    expect(duplicatesWithinRow(row, settings({ duplicates: "off" }))).toEqual([]);
  });

  it.each<[string, string[], [string, string, number][]]>([
    ["none alike", ["0000000000000000", "ffffffffffffffff"], []],
    ["the same image twice", ["00000000000000ff", "00000000000000ff"], [["1", "0", 0]]],
    ["the limit itself counts", ["0000000000000000", "00000000000003ff"], [["1", "0", 10]]],
    ["one past the limit", ["0000000000000000", "00000000000007ff"], []],
    ["the nearest earlier one named", ["0000000000000000", "0000000000000003", "0000000000000007"], [["1", "0", 2], ["2", "1", 1]]],
    ["the first one on a tie", ["0000000000000001", "0000000000000002", "0000000000000000"], [["1", "0", 2], ["2", "0", 1]]],
  ])("within a row: %s", (_name, hashes, expected) => {
    const found = duplicatesWithinRow(hashes.map((phash, index) => ({ key: String(index), phash })), settings());
    expect(found.map((f) => [f.key, f.duplicateOf, f.distance])).toEqual(expected);
  });

  it("sees every flat image as the same one, which is why blank images are left out first", async () => {
    const black = await perceptualHash(await flat({ r: 0, g: 0, b: 0 }));
    const red = await perceptualHash(await flat({ r: 200, g: 60, b: 30 }));
    expect([black, red]).toEqual(["0000000000000000", "0000000000000000"]);
  });
});

describe("the manifest's qc section", () => {
  const at = { file: "m.yaml", line: 30 };

  it.each([undefined, null])("gives the defaults for %s", (section) => {
    expect(readQcSection(section, at)).toEqual({ settings: { ...DEFAULTS.qc }, issues: [] });
  });

  it("reads a good section over the defaults", () => {
    const section = parse("qc:\n  blank: flag\n  size: off\n  duplicates: retry\n  maxRetries: 3\n  duplicateMaxDistance: 6\n").qc;
    expect(readQcSection(section, at)).toEqual({
      settings: { ...DEFAULTS.qc, blank: "flag", size: "off", duplicates: "retry", maxRetries: 3, duplicateMaxDistance: 6 },
      issues: [],
    });
    expect(readQcSection({ blank: false }, at).settings.blank).toBe("off"); // YAML 1.1's `off`
  });

  it("reports an unknown key with the known ones, and every bad value, keeping the defaults", () => {
    const { settings: read, issues } = readQcSection(
      { max_retries: 2, blank: "fleg", size: 1, maxRetries: 6, duplicateMaxDistance: 2.5, sizeTolerance: "2%" },
      at,
      { max_retries: 31, blank: 32 },
    );
    expect(read).toEqual(DEFAULTS.qc);
    expect(issues).toEqual([
      { file: "m.yaml", line: 31, field: "qc.max_retries", message: expect.stringMatching(/^"max_retries" is not a known key of qc; did you mean "maxRetries"\? \(known: blank, size, duplicates, maxRetries, blankMaxDeviation, blankMinSharpness, duplicateMaxDistance, sizeTolerance\)$/) },
      { file: "m.yaml", line: 32, field: "qc.blank", message: '"fleg" is not a known qc mode (known: off, flag, retry)' },
      { file: "m.yaml", line: 30, field: "qc.size", message: "must be one of off, flag, retry, not number 1" },
      { file: "m.yaml", line: 30, field: "qc.maxRetries", message: "6 is out of range: must be a whole number from 0 to 5" },
      { file: "m.yaml", line: 30, field: "qc.duplicateMaxDistance", message: "must be a whole number from 0 to 64, not number 2.5" },
      { file: "m.yaml", line: 30, field: "qc.sizeTolerance", message: 'must be a number from 0 to 0.5, not the text "2%"' },
    ]);
  });

  it("refuses a maxRetries that is not a whole number, and a section that is not a mapping", () => {
    expect(readQcSection({ maxRetries: "two" }, at).issues.map((i) => i.message)).toEqual(['must be a whole number from 0 to 5, not the text "two"']);
    expect(readQcSection({ maxRetries: -1 }, at).issues.map((i) => i.message)).toEqual(["-1 is out of range: must be a whole number from 0 to 5"]);
    expect(readQcSection(["blank"], { file: "m.yaml" }).issues).toEqual([
      { file: "m.yaml", field: "qc", message: expect.stringMatching(/^qc must be a mapping of key: value \(keys: blank, .*\), not a list$/) },
    ]);
  });
});
