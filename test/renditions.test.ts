// Renditions, thumbnails and provenance, read back from the files a real run writes.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { DIGITAL_SOURCE_TYPE, readXmp } from "../src/assets/provenance.js";
import { jsonLines, runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

function manifest(renditions: string, thumbnail = "{ size: 200, format: jpeg, quality: 70 }"): string {
  return `name: r
provider: local
rows:
  - id: wide
    prompt: A wide harbour at noon with <b>boats</b> & "gulls"
    aspectRatio: "16:9"
    style: vintage
  - id: tall
    prompt: A tall lighthouse in fog
    aspectRatio: "9:16"
renditions:
${renditions}
thumbnail: ${thumbnail}
`;
}

const RENDITIONS = `  - { name: square, width: 1080, height: 1080, fit: cover, position: attention, format: jpeg, quality: 80 }
  - { name: story, width: 1080, height: 1920, fit: contain, format: webp }
  - { name: card, width: 1200, height: 628, fit: cover, position: entropy, format: png }
  - { name: tiny, width: 320, height: 320, format: avif, quality: 50 }`;

describe("renditions and provenance", () => {
  it("writes each rendition at its exact size and format, with XMP provenance", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "r.yaml"), manifest(RENDITIONS));
    const result = await runCli(["run", "r.yaml"], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const out = join(cwd, "output", "r");
    const expected = { square: [1080, 1080, "jpeg", "jpg"], story: [1080, 1920, "webp", "webp"], card: [1200, 628, "png", "png"], tiny: [320, 320, "heif", "avif"] } as const;
    for (const key of ["wide", "tall"]) {
      for (const [name, [width, height, format, ext]] of Object.entries(expected)) {
        const path = join(out, "renditions", name, `${key}.${ext}`);
        const meta = await sharp(path).metadata();
        expect([meta.width, meta.height, meta.format], path).toEqual([width, height, format]);
        const xmp = readXmp(readFileSync(path)) ?? (meta.xmp ? meta.xmp.toString("utf8") : null);
        expect(xmp, path).toContain(DIGITAL_SOURCE_TYPE);
        expect(xmp).toContain('imgbatch:provider="local"');
        expect(xmp).toContain(`imgbatch:key="${key}"`);
      }
      const thumb = await sharp(join(out, "thumbs", `${key}.jpg`)).metadata();
      expect(thumb.format).toBe("jpeg");
      expect(Math.max(thumb.width!, thumb.height!)).toBe(200);
    }
    // The delivered original carries the prompt, escaped, and still decodes to the same pixels size.
    const original = readFileSync(join(out, "images", "wide.png"));
    const xmp = readXmp(original)!;
    expect(xmp).toContain("A wide harbour at noon with &lt;b&gt;boats&lt;/b&gt; &amp; &quot;gulls&quot;");
    expect(xmp).toContain('imgbatch:model="seedream3.0"');
    expect(xmp).toMatch(/imgbatch:jobId="local-[0-9a-f]+"/);
    expect((await sharp(original).metadata()).xmp?.toString("utf8")).toContain(DIGITAL_SOURCE_TYPE);
    const sidecar = JSON.parse(readFileSync(join(out, "images", "wide.json"), "utf8")) as { renditions: Record<string, string> };
    expect(Object.keys(sidecar.renditions).sort()).toEqual(["card", "square", "story", "tiny"]);
  }, 60_000);

  it("remakes only the renditions whose settings changed", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "r.yaml"), manifest(RENDITIONS));
    expect((await runCli(["run", "r.yaml"], { cwd })).code).toBe(0);
    const out = join(cwd, "output", "r", "renditions");
    const mtime = (p: string) => statSync(join(out, p)).mtimeMs;
    const before = { square: mtime("square/wide.jpg"), story: mtime("story/wide.webp"), card: mtime("card/wide.png") };

    const again = await runCli(["run", "r.yaml"], { cwd });
    expect(again.code).toBe(0);
    expect({ square: mtime("square/wide.jpg"), story: mtime("story/wide.webp"), card: mtime("card/wide.png") }).toEqual(before);

    writeFileSync(join(cwd, "r.yaml"), manifest(RENDITIONS.replace("width: 1200, height: 628", "width: 1200, height: 630")));
    const changed = await runCli(["run", "r.yaml"], { cwd });
    expect(changed.code, changed.stderr).toBe(0);
    expect(jsonLines(changed.stderr).some((l) => /made 2 rendition/.test(String(l.msg)))).toBe(true);
    expect(mtime("card/wide.png")).toBeGreaterThan(before.card);
    expect(mtime("square/wide.jpg")).toBe(before.square);
    expect((await sharp(join(out, "card", "wide.png")).metadata()).height).toBe(630);
  }, 60_000);
});
