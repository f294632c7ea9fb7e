// CSVs as spreadsheets save them: the delimiter detected from the header (comma, semicolon,
// tab), UTF-16 decoded, and the `# key: value` directive lines above the header.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadManifest, type Manifest, ManifestError, type ManifestIssue, requestHash } from "../src/manifest/index.js";
import { FIXTURES, issuesOf, lines, parse } from "./fixtures/manifests/helpers.js";

/** Everything an item is known by: key, row source, matrix, request and its hash. */
function itemsOf(manifest: Manifest) {
  return manifest.items.map((item) => ({
    key: item.key,
    rowId: item.rowId,
    source: item.source.replace(/^[^ ]+ /, ""),
    variant: item.variant,
    matrix: item.matrix,
    request: item.request,
    hash: requestHash(item.request, "pictory"),
  }));
}

async function loadIssues(file: string): Promise<ManifestIssue[]> {
  const error = await loadManifest(file).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ManifestError);
  return (error as ManifestError).issues.map((issue) => ({ ...issue, file: path.basename(issue.file) }));
}

describe("the twins of dialects.csv (comma, UTF-8)", () => {
  let twin: ReturnType<typeof itemsOf>;
  beforeAll(async () => {
    twin = itemsOf(await loadManifest(path.join(FIXTURES, "dialects.csv")));
  });

  it("the comma twin is what the other files are compared with", () => {
    expect(twin.map((item) => item.key)).toEqual([
      "hero--photorealistic--1x1",
      "hero--photorealistic--9x16",
      "hero--minimalist--1x1",
      "hero--minimalist--9x16",
      expect.stringMatching(/^aurora-pro-earbuds-in-a-[0-9a-f]{8}--v1$/),
      expect.stringMatching(/^aurora-pro-earbuds-in-a-[0-9a-f]{8}--v2$/),
      "quote",
      "shelf",
    ]);
    expect(twin[0]?.request.prompt).toBe("The Aurora Pro earbuds on a marble table; warm light, close up");
    expect(twin[6]?.request.prompt).toBe('The "Aurora" case; open, on a desk');
    expect(twin[7]?.request.prompt).toBe("Aurora Pro earbuds\non a shelf, cool light");
  });

  it.each([
    ["dialects-semicolon.csv", "semicolons, CRLF", [0x69, 0x64, 0x3b]],
    ["dialects-tab.csv", "tabs", [0x69, 0x64, 0x09]],
    ["dialects-utf16le.csv", "UTF-16 LE with a byte-order mark, tabs, CRLF (Excel's \"Unicode text\")", [0xff, 0xfe, 0x69, 0x00]],
    ["dialects-utf16be.csv", "UTF-16 BE with a byte-order mark, commas", [0xfe, 0xff, 0x00, 0x69]],
    ["dialects-utf16le-nobom.csv", "UTF-16 LE without a byte-order mark, tabs", [0x69, 0x00, 0x64, 0x00, 0x09, 0x00]],
  ])("%s (%s) loads exactly like it: same items, keys and request hashes", async (name, _what, head) => {
    const bytes = await readFile(path.join(FIXTURES, name));
    expect([...bytes.subarray(0, head.length)]).toEqual(head);
    const manifest = await loadManifest(path.join(FIXTURES, name));
    expect(manifest.name).toBe(name.replace(/\.csv$/, ""));
    expect(itemsOf(manifest)).toEqual(twin);
  });
});

/** `text` saved as a spreadsheet would: its delimiter swapped (no cell holds one) and encoded. */
function saved(text: string, delimiter: string, encoding: "utf8" | "utf16le" | "utf16be"): Buffer {
  const body = text.replaceAll(",", delimiter);
  if (encoding === "utf8") return Buffer.from(body, "utf8");
  const bytes = Buffer.from(`\uFEFF${body}`, "utf16le");
  return encoding === "utf16le" ? bytes : bytes.swap16();
}

describe("validation reads the same in every dialect", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgbatch-csv-dialects-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const BAD = lines(
    "# a campaign sheet",
    "# provider: pictory",
    "id,prompt,style,aspectRatio",
    "a,Aurora Pro earbuds on a desk,cartoon,1:1",
    "b,Aurora Pro earbuds on a desk,neon,1:1",
    "",
    "c,,vintage,4:3",
    "d,Aurora Pro earbuds,cartoon",
  );

  it.each([
    [";", "utf8"],
    ["\t", "utf8"],
    ["\t", "utf16le"],
    [",", "utf16be"],
    [";", "utf16be"],
  ] as const)("delimiter %j in %s: the issues of the comma UTF-8 twin (file, row, line, column)", async (delimiter, encoding) => {
    await writeFile(path.join(dir, "bad.csv"), saved(BAD, ",", "utf8"));
    const expected = await loadIssues(path.join(dir, "bad.csv"));
    expect(expected).toEqual([
      { file: "bad.csv", row: 2, line: 5, field: "style", message: expect.stringMatching(/^"neon" is not a known style/) },
      { file: "bad.csv", row: 4, line: 7, field: "prompt", message: "is required" },
      { file: "bad.csv", row: 4, line: 7, field: "aspectRatio", message: expect.stringMatching(/^"4:3" is not a known aspect ratio/) },
      { file: "bad.csv", row: 5, line: 8, field: "", message: "has 3 cells but the header has 4 columns" },
    ]);
    await writeFile(path.join(dir, "bad.csv"), saved(BAD, delimiter, encoding));
    expect(await loadIssues(path.join(dir, "bad.csv"))).toEqual(expected);
  });

  // Mostly CJK: too few NUL bytes to tell UTF-16 without its byte-order mark.
  const CJK = lines("id,prompt", `garden,${"日本庭園の石の上にワイヤレスイヤホン、柔らかな朝の光、浅い被写界深度".repeat(3)}`);

  it.each(["utf16le", "utf16be"] as const)("reads %s text that is mostly CJK by its byte-order mark", async (encoding) => {
    await writeFile(path.join(dir, "cjk.csv"), saved(CJK, ",", encoding));
    expect(itemsOf(await loadManifest(path.join(dir, "cjk.csv")))).toEqual(itemsOf(parse("cjk.csv", CJK)));
  });

  it("refuses UTF-16 it cannot tell without a byte-order mark, saying how to save as UTF-8", async () => {
    await writeFile(path.join(dir, "cjk.csv"), saved(CJK, ",", "utf16le").subarray(2));
    expect(await loadIssues(path.join(dir, "cjk.csv"))).toEqual([
      { file: "cjk.csv", line: 2, field: "", message: 'is not valid UTF-8 (it looks like UTF-16 without a byte-order mark); save the file as UTF-8 (in Excel: "CSV UTF-8")' },
    ]);
  });

  it("refuses UTF-16 that does not decode, naming the line and how to save as UTF-8", async () => {
    const bytes = Buffer.concat([saved(lines("id,prompt", "a,Aurora Pro earbuds"), ",", "utf16le"), Buffer.from([0x00, 0xd8, 0x61, 0x00])]);
    await writeFile(path.join(dir, "broken.csv"), bytes);
    expect(await loadIssues(path.join(dir, "broken.csv"))).toEqual([
      { file: "broken.csv", line: 3, field: "", message: 'is not valid UTF-16; save the file as UTF-8 (in Excel: "CSV UTF-8")' },
    ]);
  });

  it("reads a UTF-16 YAML manifest like its UTF-8 twin", async () => {
    const yaml = lines("provider: pictory", "rows:", "  - id: café", "    prompt: Aurora Pro earbuds in a café");
    await writeFile(path.join(dir, "twin.yaml"), yaml);
    await writeFile(path.join(dir, "twin16.yaml"), saved(yaml, ",", "utf16le"));
    expect(await loadIssues(path.join(dir, "twin16.yaml"))).toEqual((await loadIssues(path.join(dir, "twin.yaml"))).map((issue) => ({ ...issue, file: "twin16.yaml" })));
  });
});

describe("the delimiter is the one found most often outside quotes in the header", () => {
  it.each([
    ["a quoted header cell full of commas", lines('id;prompt;"notes, in, a, list"', "a;Aurora Pro earbuds, flat lay;x"), ";", "Aurora Pro earbuds, flat lay"],
    ["a quoted cell holding the other delimiter", lines("id,prompt,style", 'a,"Aurora Pro earbuds; flat lay",cartoon'), ",", "Aurora Pro earbuds; flat lay"],
    ["a quoted semicolon cell holding commas", lines("id;prompt;style", 'a;"Aurora Pro earbuds, flat lay; close";cartoon'), ";", "Aurora Pro earbuds, flat lay; close"],
    ["tabs, cells with commas and semicolons unquoted", lines("id\tprompt\tstyle", "a\tAurora Pro earbuds, flat lay; close\tcartoon"), "\t", "Aurora Pro earbuds, flat lay; close"],
    ["a tie goes to the comma", lines("prompt,a;b", "Aurora Pro earbuds; flat lay,x"), ",", "Aurora Pro earbuds; flat lay"],
    ["then to the semicolon", lines("prompt;a\tb", "Aurora Pro earbuds\tflat lay;x"), ";", "Aurora Pro earbuds\tflat lay"],
    ["one column: no delimiter at all, so a comma", lines("prompt", '"Aurora Pro earbuds, flat lay"'), ",", "Aurora Pro earbuds, flat lay"],
  ])("%s", (_name, text, _delimiter, prompt) => {
    expect(parse("d.csv", text).items[0]?.request.prompt).toBe(prompt);
  });

  it("a ragged row keeps the message's shape", () => {
    const { message } = issuesOf("d.csv", lines("id;prompt;style", "a;Aurora Pro earbuds"));
    expect(message).toBe("d.csv row 1 (line 2): has 2 cells but the header has 3 columns");
  });
});

describe("comment and directive lines above the header", () => {
  it("# provider: and # name: set the manifest's provider and name", () => {
    const manifest = parse("d.csv", lines("# provider: pictory", "# name: spring-launch", "id,prompt", "a,Aurora Pro earbuds"));
    expect(manifest.provider).toBe("pictory");
    expect(manifest.name).toBe("spring-launch");
  });

  it("without them: no provider, the file's name", () => {
    const manifest = parse("d.csv", lines("# just a comment", "id,prompt", "a,Aurora Pro earbuds"));
    expect(manifest.provider).toBeNull();
    expect(manifest.name).toBe("d");
  });

  it("as a spreadsheet exports a comment typed in the first cell: empty cells after it, quotes, blank rows", () => {
    const text = lines("# provider: pictory;;", '"# Spring campaign; v2, final";;', ";;", "#name:spring-launch", "id;prompt;style", "a;Aurora Pro earbuds;cartoon");
    const manifest = parse("d.csv", text);
    expect(manifest).toMatchObject({ provider: "pictory", name: "spring-launch" });
    expect(manifest.items[0]?.source).toBe("d.csv row 1");
  });

  it("a bad provider is an issue naming the line and the field, listing the known providers", () => {
    const { issues, message } = issuesOf("d.csv", lines("# for the spring launch", "# provider: Pictory", "id,prompt", "a,Aurora Pro earbuds"));
    expect(issues).toEqual([{ file: "d.csv", line: 2, field: "provider", message: '"Pictory" is not a known provider; did you mean "pictory"? (known: local, pictory)' }]);
    expect(message).toBe('d.csv line 2, provider: "Pictory" is not a known provider; did you mean "pictory"? (known: local, pictory)');
  });

  it.each([
    ["an unknown key", lines("# provdier: pictory", "id,prompt", "a,Aurora Pro earbuds"), { line: 1, field: "provdier", message: /^"provdier" is not a known key of .*\(known: name, provider\); a plain comment must not start with a word and a colon$/ }],
    ["an empty provider", lines("# provider:", "id,prompt", "a,Aurora Pro earbuds"), { line: 1, field: "provider", message: /^"" is not a known provider \(known: local, pictory\)$/ }],
    ["a name that is not an id", lines("# name: spring launch", "id,prompt", "a,Aurora Pro earbuds"), { line: 1, field: "name", message: /^"spring launch" is not a valid id/ }],
    ["a directive given twice", lines("# provider: local", "#", "# provider: pictory", "id,prompt", "a,Aurora Pro earbuds"), { line: 3, field: "provider", message: /^is already set on line 1; keep one$/ }],
    ["only comments", lines("# provider: pictory", "# nothing else"), { line: 3, field: "", message: /^has only comment lines; expected a header row with at least a prompt column below them$/ }],
  ])("%s", (_name, text, expected) => {
    const { issues } = issuesOf("d.csv", text);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ ...expected, file: "d.csv" });
  });

  it("row numbers count data rows only; line numbers count the comment lines", () => {
    const { issues } = issuesOf("d.csv", lines("# provider: pictory", "", "# spring", "id,prompt,style", "a,Aurora Pro earbuds,cartoon", "b,Aurora Pro earbuds,neon", 'c,"Aurora Pro', 'earbuds",cartoon', "d,Aurora Pro earbuds,Vintage"));
    expect(issues.map(({ row, line, field }) => ({ row, line, field }))).toEqual([
      { row: 2, line: 6, field: "style" },
      { row: 4, line: 9, field: "style" },
    ]);
  });

  it("a syntax error's line counts the comment lines", () => {
    const { issues } = issuesOf("d.csv", lines("# provider: pictory", "id,prompt", 'a,"unclosed quote'));
    expect(issues).toEqual([{ file: "d.csv", line: 3, field: "", message: expect.stringMatching(/^CSV syntax: Quote Not Closed/) }]);
  });

  it.each([
    ["a first column named #", lines("#,prompt", "1,Aurora Pro earbuds {{#}}")],
    ["a quoted first column named #", lines('"#";prompt', "1;Aurora Pro earbuds {{#}}")],
  ])("a header is not a comment: %s", (_name, text) => {
    const [item] = parse("d.csv", text).items;
    expect(item).toMatchObject({ source: "d.csv row 1", request: { prompt: "Aurora Pro earbuds 1" } });
  });

  it("# lines below the header are data, not comments", () => {
    const manifest = parse("d.csv", lines("id,prompt", "a,# provider: pictory on a poster"));
    expect(manifest.provider).toBeNull();
    expect(manifest.items[0]?.request.prompt).toBe("# provider: pictory on a poster");
  });
});

describe("loadManifest reads the directives of a streamed file", () => {
  it("a semicolon file with directives, as Excel exports it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "imgbatch-csv-directives-"));
    try {
      const file = path.join(dir, "sheet.csv");
      await writeFile(file, `\uFEFF# provider: pictory;;\r\n# name: spring-launch;;\r\nid;prompt;style\r\na;Aurora Pro earbuds;cartoon\r\nb;Aurora Pro earbuds;neon\r\n`);
      expect(await loadIssues(file)).toEqual([{ file: "sheet.csv", row: 2, line: 5, field: "style", message: expect.stringMatching(/^"neon" is not a known style/) }]);
      await writeFile(file, `\uFEFF# provider: pictory;;\r\n# name: spring-launch;;\r\nid;prompt;style\r\na;Aurora Pro earbuds;cartoon\r\n`);
      const manifest = await loadManifest(file);
      expect(manifest).toMatchObject({ provider: "pictory", name: "spring-launch" });
      expect(manifest.items.map((item) => item.key)).toEqual(["a"]);
      // Comments longer than the first piece decoded (64 KiB), cut inside a two-byte character.
      await writeFile(file, `# ${"é".repeat(40_000)}\n# provider: pictory\nid;prompt\na;Aurora Pro earbuds, flat lay\nb;\n`);
      expect(await loadIssues(file)).toEqual([{ file: "sheet.csv", row: 2, line: 5, field: "prompt", message: "is required" }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
