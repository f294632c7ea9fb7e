// The hand-off's files: a zip that is the same bytes for the same inputs and lists exactly what
// it was given, a folder export, and nothing left behind when a source is missing or unsafe.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXPORT_CSV, EXPORT_MARKER, ExportError, writeExportFolder, writeExportZip, type ExportEntry } from "../src/assets/export-writer.js";
import { useTempDir } from "./helpers/tmp.js";
import { readZip } from "./helpers/zip.js";

const tempDir = useTempDir();
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const CSV = "key,image\r\nhero-dog--v1,images/hero-dog--v1.png\r\nhero-dog--v2,images/hero-dog--v2.png\r\n";
const MANIFEST = "/manifests/launch.yaml";

/** Two approved items, each an image, its sidecar and a rendition, as files in `root/out`. */
function approved(root: string): ExportEntry[] {
  const out = join(root, "out");
  return ["hero-dog--v2", "hero-dog--v1"].map((key, i) => {
    const files = [
      { name: `images/${key}.png`, bytes: Buffer.alloc(3000 + i, 0x89 + i) },
      { name: `images/${key}.png.json`, bytes: Buffer.from(`${JSON.stringify({ key, note: "x".repeat(200) })}\n`) },
      { name: `renditions/story/${key}.webp`, bytes: Buffer.alloc(500, i) },
    ];
    return {
      key,
      files: files.map(({ name, bytes }) => {
        const source = join(out, name);
        mkdirSync(join(source, ".."), { recursive: true });
        writeFileSync(source, bytes);
        return { name, source, sha256: sha256(bytes) };
      }),
    };
  });
}

const filesOf = (entries: ExportEntry[]) => entries.flatMap((e) => e.files);

async function failure(promise: Promise<unknown>): Promise<ExportError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(ExportError);
  return error as ExportError;
}

describe("writeExportZip", () => {
  it("gives byte-identical zips for the same inputs, in any time zone", async () => {
    const root = tempDir();
    const entries = approved(root);
    const zone = process.env.TZ;
    try {
      process.env.TZ = "UTC";
      await writeExportZip(entries, CSV, join(root, "a.zip"));
      process.env.TZ = "Pacific/Kiritimati"; // UTC+14: a Unix timestamp would differ by a day
      await writeExportZip([...entries].reverse(), CSV, join(root, "b", "b.zip"));
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    expect(sha256(readFileSync(join(root, "b", "b.zip")))).toBe(sha256(readFileSync(join(root, "a.zip"))));
  });

  it("lists exactly the given files plus export.csv, sorted, with their bytes, fixed times and modes", async () => {
    const root = tempDir();
    const entries = approved(root);
    await writeExportZip(entries, CSV, join(root, "handoff.zip"));
    const zip = readZip(join(root, "handoff.zip"));
    const expected = [...filesOf(entries).map((f) => f.name), EXPORT_CSV].sort();
    expect(zip.map((e) => e.name)).toEqual(expected);
    for (const file of filesOf(entries)) expect(sha256(zip.find((e) => e.name === file.name)!.data)).toBe(file.sha256);
    expect(zip.find((e) => e.name === EXPORT_CSV)!.data.toString("utf8")).toBe(CSV);
    // Images stored as they are, text deflated.
    expect(Object.fromEntries(zip.map((e) => [e.name.split(".").pop(), e.method]))).toEqual({ png: 0, webp: 0, json: 8, csv: 8 });
    for (const entry of zip) expect({ date: entry.dosDate, time: entry.dosTime, mode: entry.mode }).toEqual({ date: (1 << 5) | 2, time: 0, mode: 0o100644 });
    expect(readdirSync(root).sort()).toEqual(["handoff.zip", "out"]); // no temporary file left
  });

  it("fails naming the key and path of a missing source, and leaves no zip behind", async () => {
    const root = tempDir();
    const entries = approved(root);
    const gone = entries[1]!.files[2]!;
    entries[1]!.files[2] = { ...gone, source: join(root, "out", "nowhere.webp") };
    const error = await failure(writeExportZip(entries, CSV, join(root, "handoff.zip")));
    expect(error.problems.map((p) => [p.code, p.key])).toEqual([["SOURCE_MISSING", "hero-dog--v1"]]);
    expect(error.message).toBe(`hero-dog--v1: ${join(root, "out", "nowhere.webp")} is missing (for renditions/story/hero-dog--v1.webp)`);
    expect(readdirSync(root)).toEqual(["out"]);
  });

  it("fails when a source changed since its sha256 was recorded, while streaming, and leaves nothing", async () => {
    const root = tempDir();
    const entries = approved(root);
    writeFileSync(entries[0]!.files[0]!.source, "not the image that was approved");
    const error = await failure(writeExportZip(entries, CSV, join(root, "handoff.zip")));
    expect(error.problems.map((p) => [p.code, p.key])).toEqual([["SOURCE_CHANGED", "hero-dog--v2"]]);
    expect(readdirSync(root)).toEqual(["out"]);
  });
});

describe("unsafe and duplicate names", () => {
  it.each([
    ["images/../../etc/passwd", "UNSAFE_NAME"],
    ["/etc/passwd", "UNSAFE_NAME"],
    ["images\\hero.png", "UNSAFE_NAME"],
    ["C:evil.png", "UNSAFE_NAME"],
    ["images//hero.png", "UNSAFE_NAME"],
    ["images/HERO-DOG--V2.png", "DUPLICATE_NAME"], // one file on macOS and Windows
    ["EXPORT.CSV", "DUPLICATE_NAME"],
  ])("refuses %s (%s) before writing anything", async (name, code) => {
    const root = tempDir();
    const entries = approved(root);
    entries[0]!.files.push({ name, source: entries[0]!.files[0]!.source });
    for (const write of [() => writeExportZip(entries, CSV, join(root, "handoff.zip")), () => writeExportFolder(entries, CSV, join(root, "handoff"), { manifest: MANIFEST })]) {
      const error = await failure(write());
      expect(error.problems.map((p) => [p.code, p.key])).toEqual([[code, "hero-dog--v2"]]);
    }
    expect(readdirSync(root)).toEqual(["out"]);
  });
});

describe("writeExportFolder", () => {
  const listed = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();

  it("copies the files, export.csv and the marker, and nothing else", async () => {
    const root = tempDir();
    const entries = approved(root);
    await writeExportFolder(entries, CSV, join(root, "handoff"), { manifest: MANIFEST });
    const dir = join(root, "handoff");
    expect(listed(dir)).toEqual([...filesOf(entries).map((f) => f.name), EXPORT_CSV, EXPORT_MARKER].sort());
    for (const file of filesOf(entries)) expect(sha256(readFileSync(join(dir, file.name)))).toBe(file.sha256);
    expect(readFileSync(join(dir, EXPORT_CSV), "utf8")).toBe(CSV);
    expect(readdirSync(root).sort()).toEqual(["handoff", "out"]);
  });

  it("replaces an earlier export of the same manifest whole, and refuses any other non-empty folder", async () => {
    const root = tempDir();
    const entries = approved(root);
    const dir = join(root, "handoff");
    await writeExportFolder(entries, CSV, dir, { manifest: MANIFEST });
    await writeExportFolder(entries.slice(0, 1), CSV, dir, { manifest: MANIFEST }); // one no longer approved
    expect(listed(dir)).toEqual([...entries[0]!.files.map((f) => f.name), EXPORT_CSV, EXPORT_MARKER].sort());

    expect((await failure(writeExportFolder(entries, CSV, dir, { manifest: "/manifests/other.yaml" }))).problems[0]!.code).toBe("TARGET_IN_USE");
    writeFileSync(join(dir, "images", "notes.txt"), "someone's own file");
    expect((await failure(writeExportFolder(entries, CSV, dir, { manifest: MANIFEST }))).message).toContain("images/notes.txt");
    mkdirSync(join(root, "photos"));
    writeFileSync(join(root, "photos", "holiday.jpg"), "x");
    expect((await failure(writeExportFolder(entries, CSV, join(root, "photos"), { manifest: MANIFEST }))).problems[0]!.code).toBe("TARGET_IN_USE");
    expect(readdirSync(join(root, "photos"))).toEqual(["holiday.jpg"]);

    mkdirSync(join(root, "empty"));
    await writeExportFolder(entries, CSV, join(root, "empty"), { manifest: MANIFEST });
    expect(listed(join(root, "empty"))).toHaveLength(8);
  });

  it("fails naming the key and path of a missing source, and leaves no folder behind", async () => {
    const root = tempDir();
    const entries = approved(root);
    const source = join(root, "out", "images", "hero-dog--v1.png");
    rmSync(source);
    const error = await failure(writeExportFolder(entries, CSV, join(root, "handoff"), { manifest: MANIFEST }));
    expect(error.problems.map((p) => [p.code, p.key])).toEqual([["SOURCE_MISSING", "hero-dog--v1"]]);
    expect(error.message).toBe(`hero-dog--v1: ${source} is missing (for images/hero-dog--v1.png)`);
    expect(readdirSync(root)).toEqual(["out"]);
  });

  it("removes its temporary folder when a source changed while copying", async () => {
    const root = tempDir();
    const entries = approved(root);
    writeFileSync(entries[1]!.files[2]!.source, "changed");
    const error = await failure(writeExportFolder(entries, CSV, join(root, "handoff"), { manifest: MANIFEST }));
    expect(error.problems.map((p) => p.code)).toEqual(["SOURCE_CHANGED"]);
    expect(existsSync(join(root, "handoff"))).toBe(false);
    expect(readdirSync(root)).toEqual(["out"]);
  });
});
