// Every validation rule, one case each: the issue names the file, the line (or CSV row),
// the field path and what is wrong; and every mistake of a file is reported at once.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { formatIssue, loadManifest, ManifestError } from "../src/manifest/index.js";
import { FIXTURES, issuesOf, lines } from "./fixtures/manifests/helpers.js";
import { useTempDir } from "./helpers/tmp.js";

const ok = "    prompt: Aurora Pro earbuds on a desk";

interface Expected {
  field: string;
  line?: number;
  row?: number;
  message: RegExp;
}

const YAML_CASES: [string, string, Expected][] = [
  // shape and known keys
  ["YAML syntax error: an unclosed bracket, at its own line", lines("rows:", "  - prompt: [unclosed"), { field: "", line: 2, message: /^YAML syntax: .*; the "\[" on this line has no "\]"$/ }],
  ["duplicate YAML key", lines("rows:", "  - prompt: Aurora Pro earbuds on a desk", "    prompt: again"), { field: "rows[0].prompt", line: 3, message: /^key "prompt" appears twice in a row \(first on line 2\); keep one$/ }],
  ["empty file", "", { field: "", line: 1, message: /the file is empty/ }],
  ["top level is not a mapping", lines("- prompt: Aurora Pro earbuds"), { field: "", line: 1, message: /the manifest must be a mapping/ }],
  ["unknown top-level key", lines("colour: red", "rows:", "  - id: a", ok), { field: "colour", line: 1, message: /"colour" is not a known key of the manifest \(known: name, provider, defaults, vars, rows, renditions, thumbnail, qc, maxItems\)/ }],
  ["unknown defaults key, with a suggestion", lines("defaults:", '  aspect_ratio: "1:1"', "rows:", "  - id: a", ok), { field: "defaults.aspect_ratio", line: 2, message: /did you mean "aspectRatio"\? \(known: model, aspectRatio, style, referenceImageUrl, referenceImage, variants, webhook\)/ }],
  ["unknown row key", lines("rows:", "  - id: a", ok, "    colour: red"), { field: "rows[0].colour", line: 4, message: /"colour" is not a known key of a row \(known: id, prompt, model, aspectRatio, style, referenceImageUrl, referenceImage, variants, webhook, matrix, vars\)/ }],
  ["unknown rendition key", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10, crop: yes }"), { field: "renditions[0].crop", line: 5, message: /known: name, width, height, fit, position, format, quality/ }],
  ["unknown thumbnail key", lines("rows:", "  - id: a", ok, "thumbnail:", "  width: 100"), { field: "thumbnail.width", line: 5, message: /known: size, format, quality/ }],
  ["unknown qc key", lines("rows:", "  - id: a", ok, "qc:", "  blurry: flag"), { field: "qc.blurry", line: 5, message: /known: blank, size, duplicates, maxRetries/ }],
  ["bad qc mode", lines("rows:", "  - id: a", ok, "qc:", "  blank: remake"), { field: "qc.blank", line: 5, message: /off, flag, retry/ }],
  ["qc maxRetries out of range", lines("rows:", "  - id: a", ok, "qc:", "  maxRetries: 9"), { field: "qc.maxRetries", line: 5, message: /out of range/ }],
  ["invalid manifest name", lines("name: ../escape", "rows:", "  - id: a", ok), { field: "name", line: 1, message: /"\.\.\/escape" is not a valid id/ }],
  ["unknown provider", lines("provider: Pictory", "rows:", "  - id: a", ok), { field: "provider", line: 1, message: /"Pictory" is not a known provider; did you mean "pictory"\? \(known: local, pictory\)/ }],
  ["rows missing", lines("name: x"), { field: "rows", line: 1, message: /is required/ }],
  ["rows empty", lines("rows: []"), { field: "rows", line: 1, message: /must list at least one row/ }],
  ["rows not a list", lines("rows:", "  prompt: Aurora Pro earbuds"), { field: "rows", line: 2, message: /rows must be a list, not a mapping/ }],
  ["a row that is not a mapping", lines("rows:", "  - Aurora Pro earbuds on a desk"), { field: "rows[0]", line: 2, message: /a row must be a mapping/ }],
  // row fields
  ["prompt missing: reported at the row's line", lines("rows:", "  - id: a", "    style: cartoon"), { field: "rows[0].prompt", line: 2, message: /^is required$/ }],
  ["prompt too short", lines("rows:", "  - id: a", "    prompt: hi"), { field: "rows[0].prompt", line: 3, message: /must be at least 5 characters \(has 2\)/ }],
  ["prompt too long", lines("rows:", "  - id: a", `    prompt: ${"x".repeat(5001)}`), { field: "rows[0].prompt", line: 3, message: /must be at most 5000 characters \(has 5001\)/ }],
  ["filled prompt too short", lines("vars: { w: hi }", "rows:", "  - id: a", "    prompt: '{{w}}'"), { field: "rows[0].prompt", line: 4, message: /the filled prompt must be at least 5 characters \(has 2\): "hi"/ }],
  ["prompt not text", lines("rows:", "  - id: a", "    prompt: [a, b]"), { field: "rows[0].prompt", line: 3, message: /must be text, not a list/ }],
  ["invalid id", lines("rows:", "  - id: ../../etc/passwd", ok), { field: "rows[0].id", line: 2, message: /is not a valid id: it must start with a letter or digit/ }],
  ["id too long", lines("rows:", `  - id: ${"a".repeat(101)}`, ok), { field: "rows[0].id", line: 2, message: /at most 100 characters/ }],
  ["duplicate id names both places", lines("rows:", "  - id: hero", ok, "  - id: hero", ok), { field: "rows[1].id", line: 4, message: /id "hero" is already used by rows\[0\] \(line 2\)/ }],
  ["ids that differ only in case", lines("rows:", "  - id: Hero", ok, "  - id: hero", ok), { field: "rows[1].id", line: 4, message: /already used by rows\[0\] \(line 2\) \(as "Hero"; ids that differ only in case clash as file names\)/ }],
  ["identical rows without an id", lines("rows:", "  - prompt: Aurora Pro earbuds on a desk", "  - prompt: Aurora Pro earbuds on a desk"), { field: "rows[1].id", line: 3, message: /this row is the same as rows\[0\] \(line 2\)/ }],
  ["unknown model", lines("rows:", "  - id: a", ok, "    model: dall-e"), { field: "rows[0].model", line: 4, message: /"dall-e" is not a known model \(known: seedream3\.0, flux-schnell, nanobanana, nanobanana-pro\)/ }],
  ["unknown model in defaults", lines("defaults:", "  model: Flux-Schnell", "rows:", "  - id: a", ok), { field: "defaults.model", line: 2, message: /did you mean "flux-schnell"\?/ }],
  ["unknown aspect ratio", lines("rows:", "  - id: a", ok, '    aspectRatio: "4:3"'), { field: "rows[0].aspectRatio", line: 4, message: /"4:3" is not a known aspect ratio \(known: 1:1, 16:9, 9:16\)/ }],
  ["unknown style", lines("rows:", "  - id: a", ok, "    style: neon"), { field: "rows[0].style", line: 4, message: /^"neon" is not a known style \(known: photorealistic, artistic, cartoon, minimalist, vintage, futuristic\)$/ }],
  ["style in the wrong case", lines("rows:", "  - id: a", ok, "    style: Cartoon"), { field: "rows[0].style", line: 4, message: /^"Cartoon" is not a known style; did you mean "cartoon"\? \(known: / }],
  ["reference not an http(s) URL", lines("rows:", "  - id: a", ok, "    referenceImageUrl: file:///tmp/a.png"), { field: "rows[0].referenceImageUrl", line: 4, message: /"file:\/\/\/tmp\/a\.png" is not an absolute http\(s\) URL/ }],
  ["relative reference", lines("rows:", "  - id: a", ok, "    referenceImageUrl: images/a.png"), { field: "rows[0].referenceImageUrl", line: 4, message: /is not an absolute http\(s\) URL/ }],
  ["variants 0", lines("rows:", "  - id: a", ok, "    variants: 0"), { field: "rows[0].variants", line: 4, message: /0 is out of range: must be a whole number from 1 to 100/ }],
  ["variants 101", lines("rows:", "  - id: a", ok, "    variants: 101"), { field: "rows[0].variants", line: 4, message: /101 is out of range/ }],
  ["variants not whole", lines("rows:", "  - id: a", ok, "    variants: 1.5"), { field: "rows[0].variants", line: 4, message: /must be a whole number from 1 to 100, not number 1\.5/ }],
  ["variants as text", lines("defaults:", "  variants: two", "rows:", "  - id: a", ok), { field: "defaults.variants", line: 2, message: /not the text "two"/ }],
  // matrix
  ["matrix axis not a list", lines("rows:", "  - id: a", ok, "    matrix:", "      style: cartoon"), { field: "rows[0].matrix.style", line: 5, message: /a matrix axis must be a list, not the text "cartoon"/ }],
  ["matrix axis empty", lines("rows:", "  - id: a", ok, "    matrix:", "      style: []"), { field: "rows[0].matrix.style", line: 5, message: /must list at least one value/ }],
  ["matrix value listed twice", lines("rows:", "  - id: a", ok, "    matrix:", "      style: [cartoon, vintage, cartoon]"), { field: "rows[0].matrix.style[2]", line: 5, message: /matrix value "cartoon" of style is listed twice/ }],
  ["matrix values with the same slug", lines("rows:", "  - id: a", "    prompt: Earbuds in {{place}}", "    matrix:", "      place: [New York, new-york]"), { field: "rows[0].matrix.place[1]", line: 5, message: /"New York" and "new-york" of place would give items the same key \(both "new-york"\)/ }],
  ["matrix value without a letter or digit", lines("rows:", "  - id: a", "    prompt: Earbuds in {{place}}", "    matrix:", "      place: [Paris, '???']"), { field: "rows[0].matrix.place[1]", line: 5, message: /has no letter or digit/ }],
  ["matrix value that is not a scalar", lines("rows:", "  - id: a", "    prompt: Earbuds in {{place}}", "    matrix:", "      place: [Paris, [Rome]]"), { field: "rows[0].matrix.place[1]", line: 5, message: /must be non-empty text or a number, not a list/ }],
  ["bad value in a matrix", lines("rows:", "  - id: a", ok, "    matrix:", "      style:", "        - cartoon", "        - neon"), { field: "rows[0].matrix.style[1]", line: 7, message: /"neon" is not a known style/ }],
  ["matrix axis over a variable the prompt does not use", lines("rows:", "  - id: a", ok, "    matrix:", "      tone: [warm, cool]"), { field: "rows[0].matrix.tone", line: 5, message: /matrix axis "tone" is neither a request field .* nor a \{\{tone\}\} placeholder in the prompt/ }],
  ["matrix axis over a row field that is not a request field", lines("rows:", "  - id: a", ok, "    matrix:", "      variants: [1, 2]"), { field: "rows[0].matrix.variants", line: 5, message: /variants cannot be a matrix axis/ }],
  ["field both set and a matrix axis", lines("rows:", "  - id: a", ok, "    style: cartoon", "    matrix:", "      style: [vintage]"), { field: "rows[0].matrix.style", line: 6, message: /style is both set on the row and a matrix axis; keep one/ }],
  ["variable both set and a matrix axis", lines("rows:", "  - id: a", "    prompt: Earbuds, {{tone}} light", "    vars: { tone: warm }", "    matrix:", "      tone: [cool]"), { field: "rows[0].matrix.tone", line: 6, message: /"tone" is both a row variable and a matrix axis/ }],
  // templates and variables
  ["unknown placeholder", lines("rows:", "  - id: a", "    prompt: The {{product}} on a desk"), { field: "rows[0].prompt", line: 3, message: /\{\{product\}\} has no value: it is not a matrix axis, a row field, a row variable or a manifest variable/ }],
  ["empty placeholder", lines("rows:", "  - id: a", "    prompt: The {{ }} on a desk"), { field: "rows[0].prompt", line: 3, message: /"\{\{ \}\}" is an empty placeholder/ }],
  ["unmatched braces", lines("rows:", "  - id: a", "    prompt: The {{product on a desk"), { field: "rows[0].prompt", line: 3, message: /has an unmatched "\{\{" or "\}\}"/ }],
  ["variable named like a row field", lines("vars:", "  style: cartoon", "rows:", "  - id: a", ok), { field: "vars.style", line: 2, message: /"style" is a row field, not a variable name/ }],
  ["row variable named like a row field", lines("rows:", "  - id: a", ok, "    vars: { id: b }"), { field: "rows[0].vars.id", line: 4, message: /"id" is a row field, not a variable name/ }],
  ["variable that is not text", lines("vars:", "  product: [a, b]", "rows:", "  - id: a", ok), { field: "vars.product", line: 2, message: /a variable must be text or a number, not a list/ }],
  // keys
  ["key longer than 200 characters", lines("rows:", `  - id: ${"a".repeat(100)}`, "    prompt: Earbuds in {{place}}", "    matrix:", `      place: [${"b".repeat(99)}]`), { field: "rows[0].id", line: 2, message: /is 201 characters, more than 200/ }],
  ["keys of two rows clash", lines("rows:", "  - id: hero--cartoon", ok, "  - id: hero", ok, "    matrix:", "      style: [cartoon]"), { field: "rows[1].id", line: 4, message: /item key "hero--cartoon" clashes with "hero--cartoon" of rows\[0\] \(line 2\)/ }],
  ["too many items", lines("rows:", "  - id: a", "    prompt: '{{x}} {{y}} {{z}} earbuds'", "    variants: 100", "    matrix:", `      x: [${range(40)}]`, `      y: [${range(40)}]`), { field: "rows[1]", message: /./ }],
  // renditions and thumbnail
  ["rendition missing its size", lines("rows:", "  - id: a", ok, "renditions:", "  - name: square", "    width: 1080"), { field: "renditions[0].height", line: 5, message: /^is required$/ }],
  ["rendition name not id-safe", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: my/story, width: 10, height: 10 }"), { field: "renditions[0].name", line: 5, message: /is not a valid id/ }],
  ["rendition name reserved", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: thumbs, width: 10, height: 10 }"), { field: "renditions[0].name", line: 5, message: /"thumbs" is reserved/ }],
  ["rendition names repeated", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10 }", "  - { name: sq, width: 20, height: 20 }"), { field: "renditions[1].name", line: 6, message: /rendition "sq" is already defined at renditions\[0\]\.name \(line 5\)/ }],
  ["rendition width out of range", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 0, height: 10 }"), { field: "renditions[0].width", line: 5, message: /0 is out of range: must be a whole number from 1 to 8192/ }],
  ["rendition fit unknown", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10, fit: stretch }"), { field: "renditions[0].fit", line: 5, message: /"stretch" is not a known fit \(known: cover, contain\)/ }],
  ["rendition position unknown", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10, position: top }"), { field: "renditions[0].position", line: 5, message: /known: attention, entropy, centre/ }],
  ["rendition format unknown", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10, format: gif }"), { field: "renditions[0].format", line: 5, message: /"gif" is not a known format \(known: jpeg, webp, png, avif\)/ }],
  ["rendition quality out of range", lines("rows:", "  - id: a", ok, "renditions:", "  - { name: sq, width: 10, height: 10, quality: 101 }"), { field: "renditions[0].quality", line: 5, message: /from 1 to 100/ }],
  ["renditions not a list", lines("rows:", "  - id: a", ok, "renditions:", "  name: sq"), { field: "renditions", line: 5, message: /renditions must be a list/ }],
  ["thumbnail size out of range", lines("rows:", "  - id: a", ok, "thumbnail: { size: 8 }"), { field: "thumbnail.size", line: 4, message: /8 is out of range: must be a whole number from 16 to 2048/ }],
  ["thumbnail format unknown", lines("rows:", "  - id: a", ok, "thumbnail: { format: bmp }"), { field: "thumbnail.format", line: 4, message: /"bmp" is not a known format/ }],
];

function range(count: number): string {
  return Array.from({ length: count }, (_, index) => `v${index}`).join(", ");
}

const CSV_CASES: [string, string, Expected][] = [
  ["CSV syntax error", lines("id,prompt", 'a,"unclosed quote'), { field: "", line: 2, message: /^CSV syntax: Quote Not Closed/ }],
  ["empty file", "", { field: "", line: 1, message: /the file is empty; expected a header row/ }],
  ["no prompt column: one issue", lines("id,style", "a,cartoon", "b,vintage"), { field: "prompt", line: 1, message: /the header has no prompt column/ }],
  ["misspelt column", lines("id,prompt,Style", "a,Aurora Pro earbuds,cartoon"), { field: "Style", line: 1, message: /column "Style" looks like "style"; columns are case-sensitive/ }],
  ["duplicate column", lines("id,prompt,tone,tone", "a,Aurora Pro earbuds,warm,cool"), { field: "tone", line: 1, message: /column "tone" appears twice in the header \(columns 3 and 4\)/ }],
  ["nameless column with values", lines("id,prompt,", "a,Aurora Pro earbuds,oops"), { field: "column 3", line: 1, message: /has values but no name/ }],
  ["no data rows", lines("id,prompt"), { field: "", line: 1, message: /has no data rows/ }],
  ["ragged row", lines("id,prompt,style", "a,Aurora Pro earbuds,cartoon", "b,Aurora Pro earbuds"), { field: "", row: 2, line: 3, message: /has 2 cells but the header has 3 columns/ }],
  ["empty prompt", lines("id,prompt", "a,Aurora Pro earbuds", "b,"), { field: "prompt", row: 2, line: 3, message: /^is required$/ }],
  ["bad style", lines("id,prompt,style", "a,Aurora Pro earbuds,Cartoon"), { field: "style", row: 1, line: 2, message: /"Cartoon" is not a known style; did you mean "cartoon"\?/ }],
  ["bad value in a matrix cell", lines("id,prompt,aspectRatio", "a,Aurora Pro earbuds,1:1|4:3"), { field: "aspectRatio", row: 1, line: 2, message: /"4:3" is not a known aspect ratio/ }],
  ["empty matrix value", lines("id,prompt,style", "a,Aurora Pro earbuds,cartoon||vintage"), { field: "style", row: 1, line: 2, message: /has an empty matrix value/ }],
  ["variants not a number", lines("id,prompt,variants", "a,Aurora Pro earbuds,two"), { field: "variants", row: 1, line: 2, message: /"two" is not a whole number from 1 to 100/ }],
  ["variants out of range", lines("id,prompt,variants", "a,Aurora Pro earbuds,500"), { field: "variants", row: 1, line: 2, message: /500 is out of range/ }],
  ["invalid id", lines("id,prompt", "a b,Aurora Pro earbuds"), { field: "id", row: 1, line: 2, message: /"a b" is not a valid id/ }],
  ["duplicate id", lines("id,prompt", "a,Aurora Pro earbuds", "a,Aurora Pro earbuds again"), { field: "id", row: 2, line: 3, message: /id "a" is already used by row 1 \(line 2\)/ }],
  ["unknown placeholder", lines("id,prompt", "a,The {{product}} on a desk"), { field: "prompt", row: 1, line: 2, message: /\{\{product\}\} has no value: it is not a matrix axis, a row field, a column or a manifest variable/ }],
  ["a|b in a column the prompt does not use", lines("id,prompt,notes", "a,Aurora Pro earbuds,fast|cheap"), { field: "notes", row: 1, line: 2, message: /matrix axis "notes" is neither a request field/ }],
  ["line numbers count multi-line cells", lines("id,prompt,style", 'a,"Aurora Pro earbuds', 'on two lines",cartoon', "b,Aurora Pro earbuds,neon"), { field: "style", row: 2, line: 4, message: /"neon" is not a known style/ }],
  ["blank lines keep row numbers", lines("id,prompt,style", "a,Aurora Pro earbuds,cartoon", ",,", "b,Aurora Pro earbuds,neon"), { field: "style", row: 3, line: 4, message: /"neon"/ }],
];

describe.each([
  ["bad.yaml", YAML_CASES],
  ["bad.csv", CSV_CASES],
])("%s", (fileName, cases) => {
  it.each(cases)("%s", (name, text, expected) => {
    const { issues, message } = issuesOf(fileName, text);
    if (name === "too many items") {
      // the size guard: reported once, before anything is built
      expect(issues).toHaveLength(1);
      expect(issues[0]?.message).toMatch(/expands to 160,000 items, more than the 10,000 allowed/);
      expect(issues[0]).toMatchObject({ field: "rows[0]", line: 2 });
      return;
    }
    expect(issues, message).toHaveLength(1);
    const [issue] = issues;
    expect(issue?.file).toBe(fileName);
    expect(issue?.field).toBe(expected.field);
    expect(issue?.line).toBe(expected.line);
    expect(issue?.row).toBe(expected.row);
    expect(issue?.message).toMatch(expected.message);
    const where = expected.row !== undefined ? `${fileName} row ${expected.row} (line ${expected.line})` : `${fileName} line ${expected.line}`;
    expect(message).toBe(`${where}${expected.field === "" ? "" : `, ${expected.field}`}: ${issue?.message}`);
  });
});

// The same CSV cases through the loader the run uses: the file's bytes streamed through
// csv-parse (a syntax error can come after rows were already handed on).
describe("bad.csv read from disk (streamed)", () => {
  const tempDir = useTempDir("imgbatch-csv-");
  it.each(CSV_CASES)("%s", async (_name, text, expected) => {
    const file = path.join(tempDir(), "bad.csv");
    writeFileSync(file, text);
    const error = await loadManifest(file).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ManifestError);
    const issues = (error as ManifestError).issues;
    expect(issues, (error as Error).message).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file, field: expected.field, line: expected.line });
    expect(issues[0]?.row).toBe(expected.row);
    expect(issues[0]?.message).toMatch(expected.message);
  });
});

describe("reporting", () => {
  it("collects every mistake of a file into one ManifestError, in file order", async () => {
    const file = path.join(FIXTURES, "several-mistakes.yaml");
    const error = await loadManifest(file).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ManifestError);
    const issues = (error as ManifestError).issues;
    expect(issues.map((issue) => `${issue.line} ${issue.field}`)).toEqual([
      "1 name",
      "2 provider",
      "5 rows[0].prompt",
      "6 rows[0].style",
      "7 rows[1].id",
      "8 rows[1].prompt",
      "9 rows[1].aspectRatio",
      "11 rows[2].variants",
      "12 rows[2].colour",
      "14 renditions[0].format",
    ]);
    expect((error as ManifestError).message.split("\n")).toEqual(issues.map(formatIssue));
    expect((error as ManifestError).message).toContain(`${file} line 6, rows[0].style: "Cartoon" is not a known style; did you mean "cartoon"?`);
  });

  it("reports a failing item rule once per row, not once per matrix item or variant", () => {
    const { issues } = issuesOf(
      "once.yaml",
      lines("rows:", "  - id: a", "    prompt: '{{who}} {{what}}'", "    variants: 5", "    matrix:", "      style: [cartoon, vintage, artistic]", '      aspectRatio: ["1:1", "9:16"]'),
    );
    expect(issues.map((issue) => issue.message)).toEqual([
      expect.stringMatching(/^\{\{who\}\} has no value/),
      expect.stringMatching(/^\{\{what\}\} has no value/),
    ]);
  });

  it("the same mistakes in a CSV are each reported with their row", () => {
    const { issues } = issuesOf("many.csv", lines("id,prompt,style,variants", "a,Aurora Pro earbuds,neon,2", "a,hi,,0", ",,,", "c b,Aurora Pro {{x}},Vintage,"));
    expect(issues.map((issue) => `${issue.row} ${issue.field}`)).toEqual(["1 style", "2 variants", "2 id", "2 prompt", "4 id", "4 style", "4 prompt"]);
  });
});
