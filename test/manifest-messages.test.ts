// Messages that point the right way: a mistake that a format's own parser words in its own
// terms ("Unexpected scalar at node end", "no prompt column") says what the user did and
// what to write instead.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifest, ManifestError } from "../src/manifest/index.js";
import { issuesOf, lines, parse } from "./fixtures/manifests/helpers.js";
import { useTempDir } from "./helpers/tmp.js";

describe("YAML: a text value that YAML reads as something else", () => {
  it.each([
    ["a prompt starting with a placeholder", "    prompt: {{product}} on a desk", 'YAML syntax: Unexpected scalar at node end; a value that starts with { must be written in quotes, as in prompt: "{{product}} on a desk"'],
    ["a colon and a space", "    prompt: Sale: half price today", 'YAML syntax: Nested mappings are not allowed in compact mappings; a value that holds ": " must be written in quotes, as in prompt: "Sale: half price today"'],
    ["a reserved first character", "    prompt: @home on a desk today", 'YAML syntax: Plain value cannot start with reserved character @; a value that starts with @ must be written in quotes, as in prompt: "@home on a desk today"'],
    ["a quote inside double quotes", '    prompt: "say "hi" to the cat"', `YAML syntax: Unexpected scalar at node end; a quote inside a quoted value ends it early: inside "…" write \\", inside '…' write ''`],
    ["a quote inside single quotes", "    prompt: 'it's a cat'", `YAML syntax: Unexpected scalar at node end; a quote inside a quoted value ends it early: inside "…" write \\", inside '…' write ''`],
  ])("%s: the syntax error says to quote it", (_name, line, message) => {
    const { issues } = issuesOf("bad.yaml", lines("rows:", "  - id: a", line));
    expect(issues[0]).toEqual({ file: "bad.yaml", field: "", line: 3, message });
  });

  it("a prompt that is only a placeholder reads as a mapping: the message says so", () => {
    expect(issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: {{product}}")).issues).toEqual([
      { file: "bad.yaml", field: "rows[0].prompt", line: 3, message: 'must be text, not a mapping; YAML reads a value that starts with { as a mapping: write the whole value in quotes (prompt: "{{…}} …")' },
    ]);
  });

  it("a prompt starting with # is a comment: the missing prompt says so", () => {
    expect(issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: #1 best seller on a desk")).issues).toEqual([
      { file: "bad.yaml", field: "rows[0].prompt", line: 3, message: 'is required; the text after "#" is a comment: write the prompt in quotes, as in prompt: "#1 best seller on a desk"' },
    ]);
  });

  it("a bracket never closed is reported at its own line, not where the file ends", () => {
    const { issues } = issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: A lighthouse at dusk", "    matrix:", "      style: [cartoon, vintage", "", "# the end"));
    expect(issues).toEqual([
      { file: "bad.yaml", field: "", line: 5, message: 'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]; the "[" on this line has no "]"' },
    ]);
  });

  it("a key indented under the value above it: the message says which line and how to fix it", () => {
    const { issues } = issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: A lighthouse at dusk", "      style: cartoon"));
    expect(issues[0]).toEqual({
      file: "bad.yaml",
      field: "",
      line: 3,
      message: 'YAML syntax: Nested mappings are not allowed in compact mappings; line 4 is indented further than "prompt", so YAML reads it as more of this value: start "style" in the same column as "prompt"',
    });
  });

  it("a bracket after a key whose value is a mapping or list is meant: no hint to quote it", () => {
    const { issues } = issuesOf("bad.yaml", lines("rows:", "  - id: a", "    prompt: A lighthouse at dusk", "    matrix: { style: [cartoon, vintage] } and more"));
    expect(issues).toEqual([{ file: "bad.yaml", field: "", line: 4, message: "YAML syntax: Unexpected scalar at node end" }]);
  });

  it("a syntax error on a line that is not `key: value` gets no hint", () => {
    expect(issuesOf("bad.yaml", lines("rows:", "  - prompt: [unclosed")).issues[0]?.message).not.toMatch(/quotes/);
  });

  it("a CSV saved as .yaml is named as CSV", () => {
    expect(issuesOf("sheet.yaml", lines("id,prompt", "a,A lighthouse at dusk")).issues).toEqual([
      { file: "sheet.yaml", field: "", line: 1, message: "the file looks like a CSV manifest (a header with a prompt column, then rows), not YAML: name it .csv" },
    ]);
  });
});

describe("CSV", () => {
  it("a YAML manifest saved as .csv is named as YAML", () => {
    expect(issuesOf("m.csv", lines("name: spring", "rows:", "  - prompt: A lighthouse at dusk")).issues).toEqual([
      expect.objectContaining({ field: "prompt", line: 1, message: expect.stringMatching(/the header has no prompt column .*; the file looks like a YAML manifest: name it \.yaml$/) }),
    ]);
  });

  it.each([
    ["sep=;", lines("sep=;", "id;prompt;style", "a;A lighthouse, at dusk;cartoon")],
    ["sep=, then a comment line", lines("sep=,", "# name: spring", "id,prompt", "a,A lighthouse at dusk")],
    ["sep=<tab>, CRLF", "sep=\t\r\nid\tprompt\r\na\tA lighthouse at dusk\r\n"],
  ])("a spreadsheet's first line %s sets the delimiter and counts as a line", (_name, text) => {
    const manifest = parse("m.csv", text);
    expect(manifest.items).toHaveLength(1);
    expect(manifest.items[0]?.request.prompt).toMatch(/^A lighthouse,? at dusk$/);
  });

  it("line numbers count the sep= line", () => {
    expect(issuesOf("m.csv", lines("sep=;", "id;prompt;style", "a;A lighthouse at dusk;neon")).issues).toEqual([expect.objectContaining({ row: 1, line: 3, field: "style" })]);
  });

  it("sep= with a character that is not a delimiter is named", () => {
    expect(issuesOf("m.csv", lines("sep=|", "id,prompt", "a,A lighthouse at dusk")).issues).toEqual([
      { file: "m.csv", field: "sep", line: 1, message: '"sep=|" names a delimiter imgbatch does not read (comma, semicolon or tab); delete the line to have it found from the header' },
    ]);
  });
});

describe("a file of another kind", () => {
  const tempDir = useTempDir("imgbatch-kind-");
  it.each([
    ["m.json", '(JSON is YAML: a .json manifest reads as it is once renamed to .yaml)'],
    ["m.tsv", "(a tab-separated file reads as it is once renamed to .csv)"],
    ["m.xlsx", '(save the sheet as "CSV UTF-8" and give that file)'],
  ])("%s: says what to do", async (name, hint) => {
    const file = path.join(tempDir(), name);
    writeFileSync(file, "{}");
    const error = await loadManifest(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).issues[0]?.message).toContain(hint);
  });
});
