// The manifest module's public API: loading files (formats, BOM, encodings), slugs and
// hashes, the example manifests, and YAML/CSV parity.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadManifest, ManifestError, requestHash, slugify } from "../src/manifest/index.js";
import { FIXTURES, issuesOf, parse, portable } from "./fixtures/manifests/helpers.js";

const ROOT = path.resolve(FIXTURES, "../../..");

async function loadError(file: string): Promise<ManifestError> {
  const error = await loadManifest(file).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ManifestError);
  return error as ManifestError;
}

describe("slugify", () => {
  it.each([
    ["9:16", "9x16"],
    ["seedream3.0", "seedream3-0"],
    ["Futuristic City!", "futuristic-city"],
    ["  --Hello__World--  ", "hello-world"],
    ["nanobanana-pro", "nanobanana-pro"],
    ["Ünïcode café", "n-code-caf"],
    ["!!!", ""],
  ])("%j → %j", (text, slug) => {
    expect(slugify(text)).toBe(slug);
  });
});

describe("requestHash", () => {
  const request = { prompt: "A red bicycle at dawn", model: "seedream3.0", aspectRatio: "1:1" } as const;

  it("is sha256 hex and ignores key order and undefined members", () => {
    const reordered = { aspectRatio: "1:1", style: undefined, model: "seedream3.0", prompt: "A red bicycle at dawn" } as const;
    expect(requestHash(request, "local")).toMatch(/^[0-9a-f]{64}$/);
    expect(requestHash(reordered, "local")).toBe(requestHash(request, "local"));
  });

  it.each([
    ["the provider", { ...request }, "pictory"],
    ["the prompt", { ...request, prompt: "A blue bicycle at dawn" }, "local"],
    ["the style", { ...request, style: "vintage" as const }, "local"],
    ["the reference", { ...request, referenceImageUrl: "https://example.com/a.png" }, "local"],
  ])("changes with %s", (_what, changed, provider) => {
    expect(requestHash(changed, provider)).not.toBe(requestHash(request, "local"));
  });

  it("is pinned: a change here supersedes every stored item", () => {
    // sha256 of {"provider":"local","request":{"aspectRatio":"1:1","model":"seedream3.0","prompt":"A red bicycle at dawn"}}
    expect(requestHash(request, "local")).toBe("639c88c5f4427e16ed84ddbf675ff44c8b7cbc647a0efe693921e965199dab68");
  });
});

describe("the example manifests", () => {
  it("example.yaml: 13 items, provider local, three renditions and a thumbnail", async () => {
    const manifest = await loadManifest(path.join(ROOT, "manifests/example.yaml"));
    // Not "example": example.csv takes that name from its file, and the two must not share a database.
    expect(manifest.name).toBe("aurora-launch");
    expect(manifest.provider).toBe("local");
    expect(manifest.items).toHaveLength(13);
    expect(manifest.renditions.map((r) => `${r.name} ${r.width}x${r.height} ${r.format}`)).toEqual([
      "square 1080x1080 jpeg",
      "story 1080x1920 webp",
      "linkcard 1200x628 jpeg",
    ]);
    expect(manifest.thumbnail).toEqual({ size: 320, format: "webp", quality: 80 });
    expect(manifest.file).toBe(path.join(ROOT, "manifests/example.yaml"));
    expect(manifest.items.map((item) => item.key)).toContain("hero--futuristic--9x16");
    expect(manifest.items.map((item) => item.key)).toContain("lifestyle-run--v3");
    expect(manifest.items.find((item) => item.key === "unboxing--cozy")?.source).toBe("example.yaml line 31");
  });

  it("example.csv: 6 items, no provider, the default thumbnail", async () => {
    const manifest = await loadManifest(path.join(ROOT, "manifests/example.csv"));
    expect(manifest.name).toBe("example");
    expect(manifest.provider).toBeNull();
    expect(manifest.renditions).toEqual([]);
    expect(manifest.thumbnail).toEqual({ size: 256, format: "webp", quality: 80 });
    expect(manifest.items.map((item) => item.key)).toEqual([
      "spring-banner--minimalist",
      "spring-banner--vintage",
      expect.stringMatching(/^aurora-pro-earbuds-on-a-[0-9a-f]{8}--1x1$/),
      expect.stringMatching(/^aurora-pro-earbuds-on-a-[0-9a-f]{8}--9x16$/),
      "gift-guide--v1",
      "gift-guide--v2",
    ]);
    expect(manifest.items[0]?.source).toBe("example.csv row 1");
    expect(manifest.items[0]?.request.prompt).toBe("spring collection banner for the Aurora Pro earbuds, soft pastel light");
  });
});

describe("YAML and CSV parity", () => {
  it("the same manifest in both formats gives the same items, keys and requests", async () => {
    const yaml = await loadManifest(path.join(FIXTURES, "parity.yaml"));
    const csv = await loadManifest(path.join(FIXTURES, "parity.csv"));
    expect(portable(csv)).toEqual(portable(yaml));
    expect(yaml.items).toHaveLength(4 + 4 + 1);
    expect(yaml.name).toBe("parity");
    expect(csv.name).toBe("parity");
  });

  it("a bad value is reported with its place in either format", () => {
    const yaml = issuesOf("p.yaml", "rows:\n  - prompt: A quiet harbour at dawn\n    style: neon\n");
    const csv = issuesOf("p.csv", "prompt,style\nA quiet harbour at dawn,neon\n");
    expect(yaml.message).toBe('p.yaml line 3, rows[0].style: "neon" is not a known style (known: photorealistic, artistic, cartoon, minimalist, vintage, futuristic)');
    expect(csv.message).toBe('p.csv row 1 (line 2), style: "neon" is not a known style (known: photorealistic, artistic, cartoon, minimalist, vintage, futuristic)');
  });
});

describe("loadManifest: reading the file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgbatch-manifest-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(["bom.csv", "bom.yaml"])("accepts UTF-8 with a byte-order mark (%s)", async (name) => {
    const bytes = await readFile(path.join(FIXTURES, name));
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const manifest = await loadManifest(path.join(FIXTURES, name));
    expect(manifest.items.map((item) => [item.key, item.request.prompt, item.request.style])).toEqual([
      ["bom-row", "Aurora Pro earbuds, flat lay", "minimalist"],
    ]);
  });

  it("refuses a file that is not UTF-8, naming the line", async () => {
    const error = await loadError(path.join(FIXTURES, "latin1.csv"));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ line: 3, field: "" });
    expect(error.message).toMatch(/latin1\.csv line 3: is not valid UTF-8/);
  });

  it.each([
    ["notes.txt", /notes\.txt: has the extension "\.txt"; a manifest is \.yaml, \.yml or \.csv/],
    ["Makefile", /Makefile: has no extension/],
  ])("refuses an unknown format (%s)", async (name, message) => {
    const error = await loadError(path.join(dir, name));
    expect(error.message).toMatch(message);
  });

  it("refuses a missing file", async () => {
    const error = await loadError(path.join(dir, "missing.yaml"));
    expect(error.message).toMatch(/missing\.yaml: no such file/);
  });

  it("reads .yml like .yaml, and names the manifest after the file when it says nothing", async () => {
    const file = path.join(dir, "Spring Launch 2025.yml");
    await writeFile(file, "rows:\n  - id: hero\n    prompt: Aurora Pro earbuds on a beach\n");
    const manifest = await loadManifest(file);
    expect(manifest.name).toBe("spring-launch-2025");
    expect(manifest.file).toBe(file);
    expect(manifest.items.map((item) => item.key)).toEqual(["hero"]);
  });

  it("keeps CRLF line endings out of values", () => {
    const manifest = parse("crlf.csv", "id,prompt,style\r\na,Aurora Pro on a desk,cartoon\r\n");
    expect(manifest.items[0]?.request).toEqual({ prompt: "Aurora Pro on a desk", model: "seedream3.0", aspectRatio: "1:1", style: "cartoon" });
  });
});
