// Rows → items: variants, matrix, templates, derived ids, defaults, keys.
import { describe, expect, it } from "vitest";
import { lines, parse } from "./fixtures/manifests/helpers.js";

const keysOf = (fileName: string, text: string) => parse(fileName, text).items.map((item) => item.key);

describe("keys", () => {
  it.each([
    ["one row, one item", lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk"), ["hero"]],
    ["variants add --vN", lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", "    variants: 3"), ["hero--v1", "hero--v2", "hero--v3"]],
    ["variants: 1 adds nothing", lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", "    variants: 1"), ["hero"]],
    [
      "a matrix adds one slug per axis, in declared order, first axis outermost",
      lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", "      style: [futuristic, vintage]", '      aspectRatio: ["9:16", "1:1"]'),
      ["hero--futuristic--9x16", "hero--futuristic--1x1", "hero--vintage--9x16", "hero--vintage--1x1"],
    ],
    [
      "matrix and variants together (the DESIGN example)",
      lines("rows:", "  - id: hero-city", "    prompt: A city skyline at night", "    variants: 2", "    matrix:", "      style: [futuristic]", '      aspectRatio: ["9:16"]'),
      ["hero-city--futuristic--9x16--v1", "hero-city--futuristic--9x16--v2"],
    ],
    [
      "model values are slugged (seedream3.0 → seedream3-0)",
      lines("rows:", "  - id: m", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", "      model: [seedream3.0, nanobanana-pro]"),
      ["m--seedream3-0", "m--nanobanana-pro"],
    ],
    [
      "defaults.variants applies to rows that say nothing",
      lines("defaults:", "  variants: 2", "rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "  - id: b", "    prompt: Aurora Pro earbuds on a desk", "    variants: 1"),
      ["a--v1", "a--v2", "b"],
    ],
    [
      "a CSV row with a|b cells: column order is axis order",
      lines("id,prompt,aspectRatio,style", "hero,Aurora Pro earbuds on a desk,16:9|1:1,cartoon|vintage"),
      ["hero--16x9--cartoon", "hero--16x9--vintage", "hero--1x1--cartoon", "hero--1x1--vintage"],
    ],
  ])("%s", (_name, text, keys) => {
    const fileName = text.startsWith("id,") ? "keys.csv" : "keys.yaml";
    expect(keysOf(fileName, text)).toEqual(keys);
  });

  it("an item records its row, variant and matrix choice", () => {
    const [first, , , last] = parse(
      "k.yaml",
      lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk", "    variants: 2", "    matrix:", "      style: [cartoon, vintage]"),
    ).items;
    expect(first).toMatchObject({ key: "hero--cartoon--v1", rowId: "hero", variant: 1, matrix: { style: "cartoon" }, source: "k.yaml line 2" });
    expect(last).toMatchObject({ key: "hero--vintage--v2", rowId: "hero", variant: 2, matrix: { style: "vintage" } });
    expect(parse("k.yaml", lines("rows:", "  - id: hero", "    prompt: Aurora Pro earbuds on a desk")).items[0]).toMatchObject({ variant: null, matrix: {} });
  });
});

describe("derived ids", () => {
  const rowA = ["  - prompt: A lighthouse on a cliff in a storm at night, dramatic", "    style: artistic"];
  const rowB = ["  - prompt: Aurora Pro earbuds on a desk", "    variants: 2"];

  it("slug of the first words + 8 hex of the row's content", () => {
    const [key] = keysOf("d.yaml", lines("rows:", ...rowA));
    expect(key).toMatch(/^a-lighthouse-on-a-cliff-[0-9a-f]{8}$/);
  });

  it("reordering rows keeps every key", () => {
    const forward = keysOf("d.yaml", lines("rows:", ...rowA, ...rowB));
    const backward = keysOf("d.yaml", lines("rows:", ...rowB, ...rowA));
    expect([...backward].sort()).toEqual([...forward].sort());
  });

  it.each([
    ["the style", ["  - prompt: A lighthouse on a cliff in a storm at night, dramatic", "    style: vintage"]],
    ["the prompt", ["  - prompt: A lighthouse on a cliff in a storm at noon, dramatic", "    style: artistic"]],
    ["a variable", ["  - prompt: A lighthouse on a cliff in a storm at night, dramatic", "    style: artistic", "    vars: { mood: calm }"]],
  ])("changing %s of the row changes its id", (_what, changed) => {
    expect(keysOf("d.yaml", lines("rows:", ...changed))).not.toEqual(keysOf("d.yaml", lines("rows:", ...rowA)));
  });

  it("does not change when only the defaults change (the request hash catches that)", () => {
    const plain = keysOf("d.yaml", lines("rows:", ...rowA));
    const withDefaults = keysOf("d.yaml", lines("defaults:", "  model: nanobanana", "rows:", ...rowA));
    expect(withDefaults).toEqual(plain);
  });

  it("stays short for a long first word run, and is 'row-<hash>' when the prompt has no letters", () => {
    const [long] = keysOf("d.yaml", lines("rows:", "  - prompt: Supercalifragilisticexpialidocious extraordinarily magnificent earbuds"));
    expect(long).toMatch(/^supercalifragilisticexpialidocious-[0-9a-f]{8}$/);
    const [symbols] = keysOf("d.yaml", lines("rows:", '  - prompt: "!!! ??? ..."'));
    expect(symbols).toMatch(/^row-[0-9a-f]{8}$/);
  });
});

describe("requests and defaults", () => {
  it.each([
    [
      "nothing set: the default model and its first ratio, no style",
      lines("rows:", "  - prompt: Aurora Pro earbuds on a desk"),
      { prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0", aspectRatio: "1:1" },
    ],
    [
      "defaults fill what the row leaves out",
      lines("defaults:", "  model: flux-schnell", "  style: cartoon", '  aspectRatio: "16:9"', "  referenceImageUrl: https://example.com/ref.png", "rows:", "  - prompt: Aurora Pro earbuds on a desk"),
      { prompt: "Aurora Pro earbuds on a desk", model: "flux-schnell", aspectRatio: "16:9", style: "cartoon", referenceImageUrl: "https://example.com/ref.png" },
    ],
    [
      "the row wins over defaults",
      lines("defaults:", "  model: flux-schnell", "  style: cartoon", "rows:", "  - prompt: Aurora Pro earbuds on a desk", "    model: nanobanana", "    style: vintage", "    aspectRatio: 9:16"),
      { prompt: "Aurora Pro earbuds on a desk", model: "nanobanana", aspectRatio: "9:16", style: "vintage" },
    ],
    [
      "an empty value means not set",
      lines("defaults:", "  style: cartoon", "rows:", "  - prompt: Aurora Pro earbuds on a desk", '    style: ""'),
      { prompt: "Aurora Pro earbuds on a desk", model: "seedream3.0", aspectRatio: "1:1", style: "cartoon" },
    ],
    [
      "the prompt is trimmed (a YAML block scalar ends with a newline)",
      lines("rows:", "  - prompt: |", "      Aurora Pro earbuds", "      on a desk"),
      { prompt: "Aurora Pro earbuds\non a desk", model: "seedream3.0", aspectRatio: "1:1" },
    ],
  ])("%s", (_name, text, request) => {
    expect(parse("r.yaml", text).items[0]?.request).toEqual(request);
  });
});

describe("templates", () => {
  it.each([
    ["a manifest variable", lines("vars: { product: Aurora Pro }", "rows:", "  - prompt: The {{product}} on a desk"), ["The Aurora Pro on a desk"]],
    ["spaces inside the braces", lines("vars: { product: Aurora Pro }", "rows:", "  - prompt: The {{  product }} on a desk"), ["The Aurora Pro on a desk"]],
    [
      "a row variable beats a manifest variable",
      lines("vars: { product: Aurora Pro }", "rows:", "  - prompt: The {{product}} on a desk", "    vars: { product: Aurora Mini }"),
      ["The Aurora Mini on a desk"],
    ],
    ["numbers keep their spelling", lines("vars: { price: 149.90 }", "rows:", "  - prompt: Earbuds for only {{price}} euros"), ["Earbuds for only 149.90 euros"]],
    [
      "the row's own fields, defaults applied",
      lines("rows:", "  - id: hero", "    prompt: '{{id}} shot, {{style}} style, {{aspectRatio}} frame, by {{model}}'", "    style: vintage"),
      ["hero shot, vintage style, 1:1 frame, by seedream3.0"],
    ],
    [
      "a matrix over a variable used in the prompt",
      lines("rows:", "  - prompt: Aurora Pro earbuds in a {{season}} park", "    matrix:", "      season: [spring, winter]"),
      ["Aurora Pro earbuds in a spring park", "Aurora Pro earbuds in a winter park"],
    ],
    [
      "the matrix value beats the row's variables and the manifest's",
      lines("vars: { mood: calm }", "rows:", "  - prompt: A {{mood}} beach with earbuds, {{style}}", "    matrix:", "      style: [cartoon]", "      mood: [wild]"),
      ["A wild beach with earbuds, cartoon"],
    ],
    [
      "values are inserted as they are, not expanded again",
      lines("vars: { a: '{{b}}', b: loop }", "rows:", "  - prompt: Earbuds and {{a}} braces"),
      ["Earbuds and {{b}} braces"],
    ],
    [
      "CSV extra columns are variables; a|b in one is a matrix axis",
      lines("id,prompt,season,product", "p,{{product}} in a {{season}} park,spring|winter,Aurora Pro"),
      ["Aurora Pro in a spring park", "Aurora Pro in a winter park"],
    ],
  ])("%s", (_name, text, prompts) => {
    const fileName = text.startsWith("id,") ? "t.csv" : "t.yaml";
    expect(parse(fileName, text).items.map((item) => item.request.prompt)).toEqual(prompts);
  });
});

describe("manifest settings", () => {
  it("name, provider, renditions with their defaults and a thumbnail", () => {
    const manifest = parse(
      "s.yaml",
      lines(
        "name: spring-2025",
        "provider: pictory",
        "rows:",
        "  - prompt: Aurora Pro earbuds on a desk",
        "renditions:",
        "  - { name: square, width: 1080, height: 1080 }",
        "  - { name: story, width: 1080, height: 1920, fit: contain, position: center, format: webp, quality: 90 }",
        "thumbnail: { size: 512 }",
      ),
    );
    expect(manifest).toMatchObject({ name: "spring-2025", provider: "pictory", file: expect.stringMatching(/s\.yaml$/) });
    expect(manifest.renditions).toEqual([
      { name: "square", width: 1080, height: 1080, fit: "cover", position: "centre", format: "jpeg", quality: 82 },
      { name: "story", width: 1080, height: 1920, fit: "contain", position: "centre", format: "webp", quality: 90 },
    ]);
    expect(manifest.thumbnail).toEqual({ size: 512, format: "webp", quality: 80 });
  });

  it("defaults: name from the file, no provider, no renditions, the default thumbnail", () => {
    const manifest = parse("My Launch.yaml", lines("rows:", "  - prompt: Aurora Pro earbuds on a desk"));
    expect(manifest).toMatchObject({ name: "my-launch", provider: null, renditions: [], thumbnail: { size: 256, format: "webp", quality: 80 } });
  });

  it("anchors and aliases are followed", () => {
    const manifest = parse(
      "a.yaml",
      lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", "      style: &looks [cartoon, vintage]", "  - id: b", "    prompt: Aurora Pro earbuds on a shelf", "    matrix:", "      style: *looks"),
    );
    expect(manifest.items.map((item) => item.key)).toEqual(["a--cartoon", "a--vintage", "b--cartoon", "b--vintage"]);
  });
});
