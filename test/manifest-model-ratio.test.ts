// Ratio support per model. Today every model takes every ratio, so the catalog is replaced
// by one where models differ (as the vendor's notes hint nanobanana might: 1:1 only).
import { describe, expect, it, vi } from "vitest";
import { issuesOf, lines, parse } from "./fixtures/manifests/helpers.js";

vi.mock("../src/providers/catalog.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../src/providers/catalog.js")>();
  return {
    ...original,
    MODEL_SPECS: {
      ...original.MODEL_SPECS,
      "flux-schnell": { aspectRatios: ["16:9", "1:1"], creditsPerImage: 0.6 },
      nanobanana: { aspectRatios: ["1:1"], creditsPerImage: 4 },
    },
  };
});

describe("aspect ratios a model supports", () => {
  it("the default ratio is the model's first", () => {
    const manifest = parse("r.yaml", lines("rows:", "  - prompt: Aurora Pro earbuds on a desk", "    model: flux-schnell"));
    expect(manifest.items[0]?.request.aspectRatio).toBe("16:9");
  });

  it.each([
    [
      "a ratio set on the row",
      lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    model: nanobanana", '    aspectRatio: "9:16"'),
      { field: "rows[0].aspectRatio", line: 5, message: '"9:16" is not supported by model "nanobanana" (supported: 1:1)' },
    ],
    [
      "a ratio from defaults is reported at the row",
      lines("defaults:", '  aspectRatio: "9:16"', "rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    model: nanobanana"),
      { field: "rows[0].aspectRatio", line: 4, message: '"9:16" (from defaults.aspectRatio) is not supported by model "nanobanana" (supported: 1:1)' },
    ],
    [
      "a matrix of ratios, reported once for all its variants",
      lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    model: nanobanana", "    variants: 4", "    matrix:", '      aspectRatio: ["1:1", "16:9"]'),
      { field: "rows[0].matrix.aspectRatio[1]", line: 7, message: '"16:9" is not supported by model "nanobanana" (supported: 1:1)' },
    ],
    [
      "a CSV row",
      lines("id,prompt,model,aspectRatio", "a,Aurora Pro earbuds on a desk,nanobanana,9:16"),
      { field: "aspectRatio", row: 1, line: 2, message: '"9:16" is not supported by model "nanobanana" (supported: 1:1)' },
    ],
  ])("%s", (_name, text, expected) => {
    const { issues } = issuesOf(text.startsWith("id,") ? "r.csv" : "r.yaml", text);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject(expected);
  });
});
