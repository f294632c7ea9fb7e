// The hand-off of approved images (issue 16): the given files plus export.csv, as a folder or
// as a zip, named by key. No store access: the export command gathers the entries and builds
// the CSV (with report/results.ts's csvCell: report sits above assets, so the text comes in).
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, extname, join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import yazl from "yazl";
import { fsyncDir, tempPathFor, writeFileAtomicSync } from "./atomic-file.js";

export interface ExportFile {
  /** Path inside the export, `/`-separated: `images/<key>.png`, `images/<key>.png.json`, `renditions/story/<key>.jpg`. */
  name: string;
  /** Absolute path on disk. */
  source: string;
  /** When given, the bytes read must hash to this (hex): a file changed since it was recorded fails the export. */
  sha256?: string;
}

export interface ExportEntry {
  key: string;
  files: ExportFile[];
}

export const EXPORT_CSV = "export.csv";
/** In a folder export only: names the manifest and the files, so that a later export may replace it. */
export const EXPORT_MARKER = ".imgbatch-export.json";

export type ExportProblemCode = "UNSAFE_NAME" | "DUPLICATE_NAME" | "SOURCE_MISSING" | "SOURCE_CHANGED" | "TARGET_IN_USE";

export interface ExportProblem {
  code: ExportProblemCode;
  key: string | null;
  message: string;
}

/** Every problem found before anything was written, or the one met while writing. */
export class ExportError extends Error {
  override name = "ExportError";
  constructor(readonly problems: readonly ExportProblem[]) {
    super(problems.map((p) => p.message).join("\n"));
  }
}

interface PlannedFile extends ExportFile {
  key: string;
}

// Names come from keys, which the manifest already keeps filename-safe; this is defence in
// depth against a path that climbs out of the folder or means something else on Windows.
// A `.` or `..` segment is refused; a key may hold dots (`hero..v2` is a valid row id).
const UNSAFE_NAME = /(^|\/)\.\.?(\/|$)|^\/|\\|:|\0|\/\/|\/$|^$/;

/**
 * The files sorted by name (code units, not locale, so every machine sorts alike), with every
 * unsafe or duplicate name and missing source collected into one ExportError.
 */
export async function planExport(entries: readonly ExportEntry[]): Promise<PlannedFile[]> {
  const problems: ExportProblem[] = [];
  // Folded: on macOS and Windows `A.png` and `a.png` are one file.
  const seen = new Map<string, string>([[EXPORT_CSV, "(export.csv)"], [EXPORT_MARKER.toLowerCase(), "(marker)"]]);
  const files: PlannedFile[] = [];
  for (const { key, files: own } of entries) {
    for (const file of own) {
      const earlier = seen.get(file.name.toLowerCase());
      if (UNSAFE_NAME.test(file.name)) problems.push({ code: "UNSAFE_NAME", key, message: `${key}: unsafe name in the export: ${JSON.stringify(file.name)}` });
      else if (earlier !== undefined) problems.push({ code: "DUPLICATE_NAME", key, message: `${key}: ${file.name} is already taken by ${earlier}` });
      else files.push({ ...file, key });
      seen.set(file.name.toLowerCase(), key);
    }
  }
  const found = await Promise.all(files.map((f) => stat(f.source).then((s) => s.isFile(), () => false)));
  files.forEach((f, i) => {
    if (!found[i]) problems.push(missing(f));
  });
  if (problems.length > 0) throw new ExportError(problems);
  return files.sort(byName);
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const missing = (f: PlannedFile): ExportProblem => ({ code: "SOURCE_MISSING", key: f.key, message: `${f.key}: ${f.source} is missing (for ${f.name})` });

/** The source's bytes, hashed on the way; fails (ExportError) when missing or not as recorded. */
function readVerified(file: PlannedFile): Readable {
  const hash = createHash("sha256");
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = hash.digest("hex");
      if (file.sha256 === undefined || actual === file.sha256.toLowerCase()) return done();
      done(new ExportError([{ code: "SOURCE_CHANGED", key: file.key, message: `${file.key}: ${file.source} changed since it was recorded (sha256 ${actual}, expected ${file.sha256})` }]));
    },
  });
  const read = createReadStream(file.source);
  read.on("error", (error) => check.destroy((error as { code?: string }).code === "ENOENT" ? new ExportError([missing(file)]) : error));
  check.on("close", () => read.destroy()); // a failed export closes its files at once
  return read.pipe(check);
}

// Images are compressed already: deflating them costs time and gains nothing.
const STORED = new Set([".png", ".jpg", ".jpeg", ".webp", ".avif"]);
// Local midnight, DOS timestamps only: the date fields read the same in any time zone (a Unix
// timestamp extra field would shift with TZ), so the Date is made per call, in the zone of the
// moment. The 2nd, not the 1st: yazl clamps to its own 1980-01-01, made when it loaded.
const zipEntry = () => ({ mtime: new Date(1980, 0, 2), mode: 0o100644, forceDosTimestamp: true });
const levelFor = (name: string): number => (STORED.has(extname(name).toLowerCase()) ? 0 : 6);

/**
 * A zip of the files and export.csv, entries sorted by name, fixed times and modes: the same
 * inputs give the same bytes (on the same zlib). Streamed to a temporary file beside `zipPath`,
 * renamed over it only when whole; on any failure nothing is left.
 */
export async function writeExportZip(entries: readonly ExportEntry[], csv: string, zipPath: string): Promise<void> {
  const files = await planExport(entries);
  await mkdir(dirname(zipPath), { recursive: true });
  const temp = tempPathFor(zipPath);
  const zip = new yazl.ZipFile();
  const out = createWriteStream(temp, { flags: "wx", flush: true });
  const reading: Readable[] = [];
  const entry = zipEntry();
  try {
    await new Promise<void>((resolve, reject) => {
      // yazl does not watch the streams it is given: their errors come here, or the zip would stall.
      zip.on("error", reject);
      out.on("error", reject);
      out.on("close", resolve);
      zip.outputStream.pipe(out);
      const all = [...files.map((f) => ({ name: f.name, file: f as PlannedFile | null })), { name: EXPORT_CSV, file: null }];
      for (const { name, file } of all.sort(byName)) {
        if (file === null) zip.addBuffer(Buffer.from(csv, "utf8"), name, { ...entry, compressionLevel: 6 });
        else
          zip.addReadStreamLazy(name, { ...entry, compressionLevel: levelFor(name) }, (give) => {
            const stream = readVerified(file).on("error", reject);
            reading.push(stream);
            give(null, stream);
          });
      }
      zip.end();
    });
    await rename(temp, zipPath);
  } catch (error) {
    for (const stream of reading) stream.destroy();
    zip.outputStream.unpipe(out);
    out.destroy();
    await rm(temp, { force: true });
    throw error;
  }
  fsyncDir(dirname(zipPath));
}

/**
 * Copies the files, export.csv and the marker into `dir`. They are written into a temporary
 * folder beside it, each file under a temporary name then renamed, and the folder is renamed
 * into place only when whole. `manifest` identifies what is exported (the lead passes the
 * manifest's absolute path); the folder may already exist only when it is empty or holds an
 * earlier export of the same manifest and nothing else: that one is replaced whole, so an
 * image no longer approved does not linger, and a file someone added there is never deleted.
 */
export async function writeExportFolder(entries: readonly ExportEntry[], csv: string, dir: string, options: { manifest: string }): Promise<void> {
  const files = await planExport(entries);
  const existing = await existingTarget(dir, options.manifest);
  await mkdir(dirname(dir), { recursive: true });
  const temp = tempPathFor(dir);
  try {
    const folders = new Set<string>([temp]);
    for (const file of files) {
      const target = join(temp, file.name);
      for (let d = dirname(target); d !== temp; d = dirname(d)) folders.add(d);
      await mkdir(dirname(target), { recursive: true });
      const part = tempPathFor(target);
      await pipeline(readVerified(file), createWriteStream(part, { flags: "wx", flush: true }));
      await rename(part, target);
    }
    const marker = { manifest: options.manifest, files: files.map((f) => f.name) };
    writeFileAtomicSync(join(temp, EXPORT_CSV), csv, "file-only");
    writeFileAtomicSync(join(temp, EXPORT_MARKER), `${JSON.stringify(marker, null, 2)}\n`, "file-only");
    for (const folder of folders) fsyncDir(folder);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  if (existing === "earlier export") await replaceFolder(dir, temp);
  else {
    if (existing === "empty") await rmdir(dir);
    await rename(temp, dir);
  }
  fsyncDir(dirname(dir));
}

/** Two renames: the old export aside, the new one in; the old one is put back if the second fails. */
async function replaceFolder(dir: string, temp: string): Promise<void> {
  const aside = tempPathFor(dir);
  await rename(dir, aside);
  try {
    await rename(temp, dir);
  } catch (error) {
    await rename(aside, dir);
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

async function existingTarget(dir: string, manifest: string): Promise<"none" | "empty" | "earlier export"> {
  let names: string[];
  try {
    names = await readdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ENOENT") return "none";
    if (code === "ENOTDIR") throw inUse(dir, "is a file");
    throw error;
  }
  if (names.length === 0) return "empty";
  const marker = await readMarker(dir);
  if (marker === null) throw inUse(dir, "is not empty and holds no earlier export");
  if (marker.manifest !== manifest) throw inUse(dir, `holds an export of another manifest (${String(marker.manifest)})`);
  const ours = new Set([EXPORT_CSV, EXPORT_MARKER, ...(Array.isArray(marker.files) ? marker.files : [])]);
  const foreign: string[] = [];
  for (const name of names.map((n) => n.split("\\").join("/"))) {
    if (!ours.has(name) && !(await stat(join(dir, name))).isDirectory()) foreign.push(name);
  }
  if (foreign.length > 0) throw inUse(dir, `holds files the earlier export did not write (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""})`);
  return "earlier export";
}

async function readMarker(dir: string): Promise<{ manifest?: unknown; files?: unknown } | null> {
  try {
    const marker: unknown = JSON.parse(await readFile(join(dir, EXPORT_MARKER), "utf8"));
    return typeof marker === "object" && marker !== null ? marker : null;
  } catch {
    return null;
  }
}

const inUse = (dir: string, why: string): ExportError =>
  new ExportError([{ code: "TARGET_IN_USE", key: null, message: `${dir} ${why}: choose a new or empty folder. Nothing was written.` }]);
