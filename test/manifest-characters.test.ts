// Characters no manifest text may hold (NUL, other controls but tab and line breaks, DEL, C1,
// a byte-order mark inside text, U+FFFE/U+FFFF, half a surrogate pair) are refused where
// they are written, naming the field and the line or row, in YAML and CSV alike.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifest, ManifestError } from "../src/manifest/index.js";
import { characterProblem } from "../src/manifest/values.js";
import { issuesOf, lines, parse } from "./fixtures/manifests/helpers.js";
import { useTempDir } from "./helpers/tmp.js";

describe("characterProblem", () => {
  it.each([
    ["a\u0000b", "a NUL character (U+0000) at character 2"],
    ["\u0001start", "a control character (U+0001) at character 1"],
    ["vertical\u000Btab", "a control character (U+000B) at character 9"],
    ["form\u000Cfeed", "a control character (U+000C) at character 5"],
    ["escape\u001B[31m", "a control character (U+001B) at character 7"],
    ["del\u007F", "a control character (U+007F) at character 4"],
    ["next line\u0085", "a control character (U+0085) at character 10"],
    ["c1\u009F", "a control character (U+009F) at character 3"],
    ["joined\uFEFFfiles", "a byte-order mark (U+FEFF) at character 7"],
    ["not\uFFFEa char", "a non-character (U+FFFE) at character 4"],
    ["lone \uD800 high", "half of a UTF-16 surrogate pair (U+D800) at character 6"],
    ["lone \uDC00 low", "half of a UTF-16 surrogate pair (U+DC00) at character 6"],
    ["😀😀\u0000", "a NUL character (U+0000) at character 3"],
    ["\uDC00 first, then \u0001", "half of a UTF-16 surrogate pair (U+DC00) at character 1"],
    ["\u0001 first, then \uDC00", "a control character (U+0001) at character 1"],
  ])("%j: %s", (text, what) => {
    expect(characterProblem(text)).toBe(`contains ${what}; remove it (tab and line breaks are the only control characters allowed)`);
  });

  it.each([["plain text"], ["tab\tand\nlines\r\nhere"], ["emoji 😀 and accents café"], ["U+00A0\u00A0no-break space"], ["zero\u200Bwidth"]])("%j is allowed", (text) => {
    expect(characterProblem(text)).toBeNull();
  });
});

const NUL = "\u0000";
const problem = (what: string, at: number) => `contains ${what} at character ${at}; remove it (tab and line breaks are the only control characters allowed)`;

describe("YAML", () => {
  it.each([
    ["a raw NUL in a prompt", lines("rows:", "  - id: a", `    prompt: a cat${NUL} on a mat`), "rows[0].prompt", 3, problem("a NUL character (U+0000)", 6)],
    ["an escaped NUL in a quoted prompt", lines("rows:", "  - id: a", '    prompt: "a cat\\0 on a mat"'), "rows[0].prompt", 3, problem("a NUL character (U+0000)", 6)],
    ["a control character in a block scalar prompt", lines("rows:", "  - id: a", "    prompt: |", "      first line", "      second\u0007line"), "rows[0].prompt", 3, problem("a control character (U+0007)", 18)],
    ["a vertical tab before the prompt (trimming would hide it)", lines("rows:", "  - id: a", '    prompt: "\\va cat on a mat"'), "rows[0].prompt", 3, problem("a control character (U+000B)", 1)],
    ["an escaped lone surrogate", lines("rows:", "  - id: a", '    prompt: "a cat \\uD800 on a mat"'), "rows[0].prompt", 3, problem("half of a UTF-16 surrogate pair (U+D800)", 7)],
    ["an id", lines("rows:", '  - id: "a\\x01"', "    prompt: a cat on a mat"), "rows[0].id", 2, problem("a control character (U+0001)", 2)],
    ["a style", lines("rows:", "  - id: a", "    prompt: a cat on a mat", '    style: "anime\\0"'), "rows[0].style", 4, problem("a NUL character (U+0000)", 6)],
    ["a row variable", lines("rows:", "  - id: a", "    prompt: a {{pet}} on a mat", '    vars: { pet: "cat\\e" }'), "rows[0].vars.pet", 4, problem("a control character (U+001B)", 4)],
    ["a manifest variable", lines('vars: { pet: "ca\\x7Ft" }', "rows:", "  - id: a", "    prompt: a {{pet}} on a mat"), "vars.pet", 1, problem("a control character (U+007F)", 3)],
    ["a matrix value", lines("rows:", "  - id: a", "    prompt: a {{pet}} on a mat", "    matrix:", '      pet: [cat, "dog\\x85"]'), "rows[0].matrix.pet[1]", 5, problem("a control character (U+0085)", 4)],
    ["a default", lines("defaults:", '  model: "flux\\x00"', "rows:", "  - prompt: a cat on a mat"), "defaults.model", 2, problem("a NUL character (U+0000)", 5)],
    ["the manifest's name", lines('name: "spring\\ufeff"', "rows:", "  - prompt: a cat on a mat"), "name", 1, problem("a byte-order mark (U+FEFF)", 7)],
    ["a rendition's name", lines("rows:", "  - prompt: a cat on a mat", "renditions:", '  - { name: "sq\\x1b", width: 10, height: 10 }'), "renditions[0].name", 4, problem("a control character (U+001B)", 3)],
  ])("%s: refused at its field and line", (_name, text, field, line, message) => {
    expect(issuesOf("bad.yaml", text).issues).toEqual([{ file: "bad.yaml", field, line, message }]);
  });

  it("a key with a control character is named by its mapping, printed escaped", () => {
    expect(issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: a cat on a mat", '    "st\\x01yle": anime')).issues).toEqual([
      { file: "bad.yaml", field: "rows[0]", line: 4, message: `a row has the key "st\\u0001yle", which ${problem("a control character (U+0001)", 3)}` },
    ]);
  });

  it("tabs and line breaks in a prompt are kept", () => {
    const manifest = parse("ok.yaml", lines("rows:", "  - id: a", "    prompt: |", "      a cat\ton a mat", "      on two lines"));
    expect(manifest.items[0]?.request.prompt).toBe("a cat\ton a mat\non two lines");
  });
});

describe("CSV", () => {
  const tempDir = useTempDir("imgbatch-chars-");

  it.each([
    ["a NUL in a prompt", lines("id,prompt", `a,a cat${NUL} on a mat`), "prompt", 1, 2, problem("a NUL character (U+0000)", 6)],
    ["a control character in a quoted multi-line prompt", lines("id,prompt", 'a,"a cat', 'on a\u0007mat"'), "prompt", 1, 2, problem("a control character (U+0007)", 11)],
    ["a form feed at the end of an id (trimming would hide it)", lines("id,prompt", "a\u000C,a cat on a mat"), "id", 1, 2, problem("a control character (U+000C)", 2)],
    ["a byte-order mark in a row: two files joined", lines("id,prompt", "a,a cat on a mat", "\uFEFFid,prompt", "b,a dog on a mat"), "id", 2, 3, problem("a byte-order mark (U+FEFF)", 1)],
    ["a variable column", lines("id,prompt,pet", "a,a {{pet}} on a mat,ca\u007Ft"), "pet", 1, 2, problem("a control character (U+007F)", 3)],
    ["a matrix cell", lines("id,prompt,style", "a,a cat on a mat,anime|cartoon\u0085"), "style", 1, 2, problem("a control character (U+0085)", 14)],
  ])("%s: refused at its column and row", async (_name, text, field, row, line, message) => {
    const expected = [{ file: "bad.csv", field, row, line, message }];
    expect(issuesOf("bad.csv", text).issues).toEqual(expected);
    // The streamed loader the run uses says the same.
    const file = path.join(tempDir(), "bad.csv");
    writeFileSync(file, text);
    const error = await loadManifest(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).issues).toEqual(expected.map((issue) => ({ ...issue, file })));
  });

  it("a header cell with a control character is named by its column, and is not also a missing prompt column", () => {
    expect(issuesOf("bad.csv", lines("id,pro\u0001mpt", "a,a cat on a mat")).issues).toEqual([
      { file: "bad.csv", field: "column 2", line: 1, message: `the column name "pro\\u0001mpt" ${problem("a control character (U+0001)", 4)}` },
    ]);
  });
});
