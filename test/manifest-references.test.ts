// Local reference images (issue 17): `referenceImage:` names a file relative to the manifest;
// the request carries its sha256 and type (never its path), each file is read once, and every
// mistake is reported with the file, line (CSV: row) and field.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { inspectReferenceFile } from "../src/assets/reference-files.js";
import { loadManifest, ManifestError, type ManifestIssue, parseManifestText, requestHash } from "../src/manifest/index.js";
import type { InspectReference, ReferenceInspection } from "../src/manifest/types.js";
import { lines } from "./fixtures/manifests/helpers.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

/** A table of files by their absolute path, as the port would find them; counts each look. */
function fakeFiles(files: Record<string, ReferenceInspection>): InspectReference & { looks: string[] } {
  const looks: string[] = [];
  const inspect = ((absolute: string) => {
    looks.push(absolute);
    return files[absolute] ?? { ok: false, problem: "does not exist (a path is relative to the manifest's folder)" };
  }) as InspectReference & { looks: string[] };
  inspect.looks = looks;
  return inspect;
}

const png = (sha: string): ReferenceInspection => ({ ok: true, sha256: sha.repeat(64), contentType: "image/png", bytes: 100 });
const jpeg = (sha: string): ReferenceInspection => ({ ok: true, sha256: sha.repeat(64), contentType: "image/jpeg", bytes: 200 });
const at = (name: string) => resolve("campaign", name);

describe("referenceImage in the request", () => {
  it("carries each file's sha256 and type, reads each file once, and lists the files", () => {
    const files = fakeFiles({ [at("refs/earbuds.png")]: png("a"), [at("refs/case.jpg")]: jpeg("b") });
    const text = lines(
      "rows:",
      "  - id: hero",
      "    prompt: Aurora Pro earbuds on a marble table",
      "    referenceImage: ./refs/earbuds.png",
      "    variants: 3",
      "  - id: beach",
      "    prompt: Aurora Pro earbuds on a beach",
      "    referenceImage: refs/earbuds.png",
      "  - id: case",
      "    prompt: The Aurora Pro charging case on a desk",
      "    referenceImage: ./refs/case.jpg",
    );
    const manifest = parseManifestText(text, join("campaign", "spring.yaml"), "yaml", { inspectReference: files });
    expect(manifest.items.map((i) => [i.key, i.request.referenceImage])).toEqual([
      ["hero--v1", { sha256: "a".repeat(64), contentType: "image/png" }],
      ["hero--v2", { sha256: "a".repeat(64), contentType: "image/png" }],
      ["hero--v3", { sha256: "a".repeat(64), contentType: "image/png" }],
      ["beach", { sha256: "a".repeat(64), contentType: "image/png" }],
      ["case", { sha256: "b".repeat(64), contentType: "image/jpeg" }],
    ]);
    expect(manifest.items.every((i) => i.request.referenceImageUrl === undefined)).toBe(true);
    expect(manifest.references).toEqual([
      { sha256: "a".repeat(64), contentType: "image/png", bytes: 100, path: at("refs/earbuds.png") },
      { sha256: "b".repeat(64), contentType: "image/jpeg", bytes: 200, path: at("refs/case.jpg") },
    ]);
    // One look per file, however many items and rows use it.
    expect(files.looks).toEqual([at("refs/earbuds.png"), at("refs/case.jpg")]);
  });

  it("hashes the file's bytes, not its path: a moved file is the same request, a changed one another", () => {
    const parse = (path: string, files: Record<string, ReferenceInspection>) =>
      parseManifestText(lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", `    referenceImage: ${path}`), join("campaign", "m.yaml"), "yaml", { inspectReference: fakeFiles(files) }).items[0]!.request;
    const before = parse("refs/a.png", { [at("refs/a.png")]: png("a") });
    const moved = parse("shots/renamed.png", { [at("shots/renamed.png")]: png("a") });
    const changed = parse("refs/a.png", { [at("refs/a.png")]: png("c") });
    expect(requestHash(moved, "pictory")).toBe(requestHash(before, "pictory"));
    expect(requestHash(changed, "pictory")).not.toBe(requestHash(before, "pictory"));
    // A request without a reference hashes as it always did (no new member).
    const plain = { prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0" as const, aspectRatio: "1:1" as const };
    expect(requestHash(plain, "local")).toBe(requestHash({ ...plain, referenceImage: undefined }, "local"));
  });

  it.each([
    [
      "a matrix of files (one item per product)",
      lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", "      referenceImage: [refs/a.png, refs/b.jpg]"),
      [["hero--refs-a-png", "a"], ["hero--refs-b-jpg", "b"]],
    ],
    [
      "the defaults' file for every row, a row's URL hiding it",
      lines("defaults:", "  referenceImage: refs/a.png", "rows:", "  - id: one", "    prompt: Aurora Pro earbuds on a desk", "  - id: two", "    prompt: Aurora Pro earbuds on a beach", "    referenceImageUrl: https://example.com/b.png"),
      [["one", "a"], ["two", null]],
    ],
    [
      "the defaults' URL, a row's file hiding it",
      lines("defaults:", "  referenceImageUrl: https://example.com/b.png", "rows:", "  - id: one", "    prompt: Aurora Pro earbuds on a desk", "    referenceImage: refs/b.jpg"),
      [["one", "b"]],
    ],
  ])("%s", (_name, text, expected) => {
    const files = fakeFiles({ [at("refs/a.png")]: png("a"), [at("refs/b.jpg")]: jpeg("b") });
    const manifest = parseManifestText(text, join("campaign", "m.yaml"), "yaml", { inspectReference: files });
    expect(manifest.items.map((i) => [i.key, i.request.referenceImage?.sha256.slice(0, 1) ?? null])).toEqual(expected);
    const two = manifest.items.find((i) => i.key === "two");
    if (two) expect(two.request.referenceImageUrl).toBe("https://example.com/b.png");
    expect(manifest.items.every((i) => !(i.request.referenceImage && i.request.referenceImageUrl))).toBe(true);
  });

  it("reads a CSV's referenceImage column, a | making it a matrix axis", () => {
    const files = fakeFiles({ [at("refs/a.png")]: png("a"), [at("refs/b.jpg")]: jpeg("b") });
    const text = lines("id,prompt,referenceImage", "hero,Aurora Pro earbuds on a desk,refs/a.png", "pair,Aurora Pro earbuds on a beach,refs/a.png|refs/b.jpg");
    const manifest = parseManifestText(text, join("campaign", "m.csv"), "csv", { inspectReference: files });
    expect(manifest.items.map((i) => [i.key, i.request.referenceImage?.contentType])).toEqual([
      ["hero", "image/png"],
      ["pair--refs-a-png", "image/png"],
      ["pair--refs-b-jpg", "image/jpeg"],
    ]);
  });
});

describe("referenceImage mistakes", () => {
  /** A folder with a manifest and real files: a PNG, a JPEG, a WebP, a text file, an empty file, a folder. */
  async function project(): Promise<string> {
    const dir = tempDir();
    mkdirSync(join(dir, "refs", "folder"), { recursive: true });
    const base = sharp({ create: { width: 8, height: 8, channels: 3, background: "#c33" } });
    writeFileSync(join(dir, "refs", "earbuds.png"), await base.clone().png().toBuffer());
    writeFileSync(join(dir, "refs", "case.jpg"), await base.clone().jpeg().toBuffer());
    writeFileSync(join(dir, "refs", "box.webp"), await base.clone().webp().toBuffer());
    writeFileSync(join(dir, "refs", "notes.png"), "not an image, whatever its name says\n");
    writeFileSync(join(dir, "refs", "empty.png"), "");
    return dir;
  }

  async function issuesOfFile(dir: string, name: string, text: string, maxBytes?: number): Promise<ManifestIssue[]> {
    const file = join(dir, name);
    writeFileSync(file, text);
    try {
      await loadManifest(file, { inspectReference: (p) => inspectReferenceFile(p, maxBytes) });
    } catch (error) {
      if (error instanceof ManifestError) return error.issues.map((i) => ({ ...i, file: i.file.replace(`${dir}/`, ""), message: i.message.replaceAll(dir, "<dir>") }));
      throw error;
    }
    return [];
  }

  it("accepts PNG, JPEG and WebP by their bytes", async () => {
    const dir = await project();
    const file = join(dir, "ok.yaml");
    writeFileSync(file, lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", "      referenceImage: [refs/earbuds.png, refs/case.jpg, refs/box.webp]"));
    const manifest = await loadManifest(file, { inspectReference: (p) => inspectReferenceFile(p) });
    expect(manifest.references.map((r) => r.contentType)).toEqual(["image/png", "image/jpeg", "image/webp"]);
    expect(manifest.references.every((r) => /^[0-9a-f]{64}$/.test(r.sha256))).toBe(true);
  });

  const ok = "    prompt: Aurora Pro earbuds on a desk";
  it.each([
    ["a file that is not there", lines("rows:", "  - id: a", ok, "    referenceImage: ./refs/earbud.png"), { line: 4, field: "rows[0].referenceImage", message: '"./refs/earbud.png" (<dir>/refs/earbud.png) does not exist (a path is relative to the manifest\'s folder)' }],
    ["a text file named .png", lines("rows:", "  - id: a", ok, "    referenceImage: refs/notes.png"), { line: 4, field: "rows[0].referenceImage", message: '"refs/notes.png" (<dir>/refs/notes.png) is not a PNG, JPEG or WebP image (by its first bytes, whatever its name says)' }],
    ["an empty file", lines("rows:", "  - id: a", ok, "    referenceImage: refs/empty.png"), { line: 4, field: "rows[0].referenceImage", message: '"refs/empty.png" (<dir>/refs/empty.png) is empty (0 bytes)' }],
    ["a folder", lines("rows:", "  - id: a", ok, "    referenceImage: refs/folder"), { line: 4, field: "rows[0].referenceImage", message: '"refs/folder" (<dir>/refs/folder) is a folder, not an image file' }],
    ["a URL", lines("rows:", "  - id: a", ok, "    referenceImage: https://example.com/a.png"), { line: 4, field: "rows[0].referenceImage", message: '"https://example.com/a.png" is a URL, not a file: give it as referenceImageUrl (referenceImage is a path relative to the manifest)' }],
    ["a path as referenceImageUrl", lines("rows:", "  - id: a", ok, "    referenceImageUrl: refs/earbuds.png"), { line: 4, field: "rows[0].referenceImageUrl", message: '"refs/earbuds.png" is not an absolute http(s) URL; a file on this computer is given as referenceImage' }],
    ["both on a row", lines("rows:", "  - id: a", ok, "    referenceImage: refs/earbuds.png", "    referenceImageUrl: https://example.com/a.png"), { line: 4, field: "rows[0].referenceImage", message: "referenceImage and referenceImageUrl are both given; keep one (a referenceImage file is uploaded for you)" }],
    ["both in the defaults", lines("defaults:", "  referenceImage: refs/earbuds.png", "  referenceImageUrl: https://example.com/a.png", "rows:", "  - id: a", ok), { line: 2, field: "defaults.referenceImage", message: "referenceImage and referenceImageUrl are both given; keep one (a referenceImage file is uploaded for you)" }],
    ["a matrix of files and a URL", lines("rows:", "  - id: a", ok, "    referenceImageUrl: https://example.com/a.png", "    matrix:", "      referenceImage: [refs/earbuds.png, refs/case.jpg]"), { line: 6, field: "rows[0].matrix.referenceImage", message: "referenceImage and referenceImageUrl are both given; keep one (a referenceImage file is uploaded for you)" }],
  ])("YAML: %s", async (_name, text, expected) => {
    const dir = await project();
    expect(await issuesOfFile(dir, "m.yaml", text)).toEqual([{ file: "m.yaml", ...expected }]);
  });

  it("YAML: a file over the size limit", async () => {
    const dir = await project();
    const issues = await issuesOfFile(dir, "m.yaml", lines("rows:", "  - id: a", ok, "    referenceImage: refs/earbuds.png"), 10);
    expect(issues).toEqual([{ file: "m.yaml", line: 4, field: "rows[0].referenceImage", message: expect.stringMatching(/^"refs\/earbuds\.png" \(<dir>\/refs\/earbuds\.png\) is 0\.0 MB, more than the 0\.0 MB a reference image may be; make it smaller$/) }]);
  });

  it("reports a missing file once per row that uses it, at that row, with the other problems", async () => {
    const dir = await project();
    const text = lines("rows:", "  - id: a", ok, "    referenceImage: refs/gone.png", "    variants: 4", "  - id: b", ok, "    style: neon", "    referenceImage: refs/gone.png");
    const issues = await issuesOfFile(dir, "m.yaml", text);
    expect(issues.map((i) => [i.line, i.field, i.message.slice(0, 40)])).toEqual([
      [4, "rows[0].referenceImage", '"refs/gone.png" (<dir>/refs/gone.png) do'],
      [8, "rows[1].style", '"neon" is not a known style (known: phot'],
      [9, "rows[1].referenceImage", '"refs/gone.png" (<dir>/refs/gone.png) do'],
    ]);
  });

  it("CSV: names the row, its line and the column", async () => {
    const dir = await project();
    const text = lines("id,prompt,referenceImage", "a,Aurora Pro earbuds on a desk,refs/earbuds.png", "b,Aurora Pro earbuds on a beach,refs/notes.png|refs/case.jpg");
    expect(await issuesOfFile(dir, "m.csv", text)).toEqual([
      { file: "m.csv", row: 2, line: 3, field: "referenceImage", message: '"refs/notes.png" (<dir>/refs/notes.png) is not a PNG, JPEG or WebP image (by its first bytes, whatever its name says)' },
    ]);
  });
});
