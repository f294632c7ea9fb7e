// YAML read within bounds: rows handed on while the file is parsed (so a 50 MB manifest is
// never one node tree), with the same result as reading the whole tree; nesting and aliases
// bounded with messages that name the line; duplicate keys named.
import { isMap, isSeq, LineCounter } from "yaml";
import { describe, expect, it } from "vitest";
import { MAX_NESTING, parseManifestYaml } from "../src/manifest/yaml-parse.js";
import { MAX_ALIAS_VALUES } from "../src/manifest/yaml-reader.js";
import { issuesOf, lines, parse, portable } from "./fixtures/manifests/helpers.js";

/** `count` rows, one item each; `extra(i)` adds lines to row i. */
function manifest(count: number, { head = ["name: big"], tail = [] as string[], extra = (_i: number): string[] => [] } = {}): string {
  const rows: string[] = [];
  for (let i = 0; i < count; i++) rows.push(`  - id: r${i}`, `    prompt: "Poster number ${i} of a quiet harbour town"`, ...extra(i));
  return lines(...head, "rows:", ...rows, ...tail);
}

/** The same manifest read as one tree: a directive keeps the rows in the parser's tree (it is two lines more: `outcome` takes them off). */
const ONE_TREE = "%YAML 1.2\n---\n";

function outcome(text: string) {
  const shift = text.startsWith(ONE_TREE) ? 2 : 0;
  try {
    const manifest = parse("big.yaml", text);
    const sources = manifest.items.map((item) => item.source.replace(/line (\d+)$/, (_, line: string) => `line ${Number(line) - shift}`));
    return { items: portable(manifest), sources, renditions: manifest.renditions, name: manifest.name };
  } catch {
    return { issues: issuesOf("big.yaml", text).issues.map((issue) => ({ ...issue, line: (issue.line ?? 0) - shift, message: issue.message.replace(/line (\d+)/g, (_, line: string) => `line ${Number(line) - shift}`) })) };
  }
}

function batchesOf(text: string): number {
  let batches = 0;
  parseManifestYaml(text, new LineCounter(), { start() {}, rows: () => batches++ });
  return batches;
}

describe("rows handed on while parsing", () => {
  it("takes finished rows out of the parser's tree in batches: the tree at the end holds only the last few", () => {
    const text = manifest(1000);
    const batches: number[] = [];
    let before: string[] | null = null;
    const parsed = parseManifestYaml(text, new LineCounter(), {
      start(doc) {
        before = isMap(doc.contents) ? doc.contents.items.map((pair) => String(pair.key)) : [];
      },
      rows(batch) {
        batches.push(isSeq(batch.contents) ? batch.contents.items.length : -1);
      },
    });
    expect(parsed.problems).toEqual([]);
    expect(before).toEqual(["name"]);
    expect(batches.length).toBeGreaterThan(5);
    const rows = isMap(parsed.doc?.contents) ? parsed.doc.contents.get("rows") : null;
    expect(isSeq(rows)).toBe(true);
    const left = (rows as { items: unknown[] }).items.length;
    expect(left).toBeLessThan(100);
    expect(batches.reduce((sum, n) => sum + n, 0) + left).toBe(1000);
  });

  it("keeps every row in the tree when the file has a directive (%YAML 1.1 changes how every scalar reads)", () => {
    expect(batchesOf(ONE_TREE + manifest(1000))).toBe(0);
    expect(batchesOf(manifest(1000))).toBeGreaterThan(5);
  });

  it.each([
    ["plain rows", manifest(700)],
    ["defaults, vars and renditions below the rows (read again with the whole header)", manifest(700, {
      tail: ["defaults:", "  style: cartoon", "  variants: 2", "vars:", "  town: Whitby", "renditions:", "  - { name: sq, width: 64, height: 64 }"],
      extra: (i) => (i % 100 === 5 ? ['    aspectRatio: "16:9"'] : []),
    })],
    ["a block scalar with an indentation indicator and a blank first line", manifest(300, { extra: (i) => (i === 150 ? ["    vars:", "      note: |2-", "", "        two lines", "        here"] : []) })],
    ["comments and blank lines between rows", manifest(300, { extra: (i) => (i % 7 === 0 ? ["", "  # a comment between rows", "    # an indented one"] : []) })],
    ["mistakes spread over the rows", manifest(700, { extra: (i) => (i % 97 === 3 ? ["    style: Cartoon"] : i === 640 ? ["    colour: red"] : []) })],
    ["anchors in the header and in early rows, aliases in later rows", manifest(700, {
      head: ["name: big", "vars:", "  town: &town Whitby"],
      extra: (i) => (i === 3 ? ["    matrix:", "      style: &styles [cartoon, vintage]"] : i === 400 ? ["    matrix: { style: *styles }", "    vars: { where: *town }"] : i === 650 ? ["    vars: &late { where: *town }"] : i === 690 ? ["    vars: *late"] : []),
    })],
    ["an anchor named again: each alias takes the nearest one above it", manifest(700, {
      extra: (i) => (i === 2 ? ["    style: &s cartoon"] : i === 300 ? ["    style: *s"] : i === 400 ? ["    style: &s vintage"] : i === 600 ? ["    style: *s"] : []),
    })],
    ["a billion laughs written in early rows, used in a late one", manifest(700, {
      extra: (i) => (i < 9 ? [`    vars: { v: &l${i} [${Array(9).fill(i === 0 ? "lol" : `*l${i - 1}`).join(", ")}] }`] : i === 600 ? ["    vars: { v: *l8 }"] : []),
    })],
    ["an id used twice far apart", manifest(700, { extra: (i) => (i === 650 ? ["    vars: { x: y }"] : []) }).replace("id: r650", "id: r2")],
  ])("%s: the same items and issues as one tree", (_name, text) => {
    const streamed = outcome(text);
    expect(batchesOf(text)).toBeGreaterThan(2);
    expect(streamed).toEqual(outcome(ONE_TREE + text));
  });

  it("reports a syntax error far down with its line, and none of the rows' mistakes read before it", () => {
    const text = manifest(700, { extra: (i) => (i === 10 ? ["    style: Cartoon"] : i === 600 ? ["    style: [unclosed"] : []) });
    const { issues } = issuesOf("big.yaml", text);
    const line = text.split("\n").indexOf("    style: [unclosed") + 1;
    expect(issues.every((issue) => issue.message.startsWith("YAML syntax:"))).toBe(true);
    expect(issues[0]?.line).toBeGreaterThanOrEqual(line);
  });

  it("a second rows: key is named, and its rows are not read", () => {
    const text = manifest(300) + lines("rows:", "  - id: late", '    prompt: "a row of the second list"');
    const { issues } = issuesOf("big.yaml", text);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ field: "rows", line: 603, message: 'key "rows" appears twice in the manifest (first on line 2); keep one' });
  });

  it("a second document is named at its line", () => {
    const { issues } = issuesOf("two.yaml", lines("rows:", "  - prompt: A lighthouse at dusk", "---", "rows:", "  - prompt: Another one here"));
    expect(issues).toEqual([expect.objectContaining({ line: 3, field: "", message: expect.stringMatching(/^a second YAML document starts here/) })]);
  });
});

describe("nesting", () => {
  it.each([
    ["flow lists", lines("rows:", "  - prompt: hello there", "    vars:", `      x: ${"[".repeat(10_000)}${"]".repeat(10_000)}`), 4],
    ["block mappings", lines("rows:", "  - prompt: hello there", "    vars:", ...Array.from({ length: 10_000 }, (_, i) => `${"  ".repeat(i + 3)}k:`)), MAX_NESTING],
  ])("10,000 levels of %s: one issue naming the line, not a stack overflow", (_name, text, line) => {
    const { issues } = issuesOf("deep.yaml", text);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toBe(`is nested more than ${MAX_NESTING} levels deep, where a manifest needs about 7; check the indentation and the brackets down to this line`);
    expect(issues[0]?.line).toBe(line);
  });

  it(`${MAX_NESTING} levels are not the limit of a real manifest`, () => {
    expect(parse("ok.yaml", lines("rows:", "  - prompt: a {{mood}} lighthouse", "    matrix:", "      mood: [calm, stormy]")).items).toHaveLength(2);
  });
});

describe("aliases", () => {
  const laughs = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (const [index, name] of [..."bcdefghi"].entries()) laughs.push(`${name}: &${name} [${Array(9).fill(`*${"abcdefghi"[index]}`).join(", ")}]`);

  it("a billion laughs is refused at the alias, naming how many values it stands for", () => {
    const text = lines("vars:", ...laughs.map((line) => `  ${line}`), "rows:", "  - id: x", "    prompt: *i");
    const { issues } = issuesOf("bomb.yaml", text);
    const bomb = issues.find((issue) => issue.field === "rows[0].prompt");
    expect(bomb).toMatchObject({ line: 13 });
    expect(bomb?.message).toMatch(new RegExp(`^alias \\*i stands for \\d+ values, more than the ${MAX_ALIAS_VALUES} allowed`));
    expect(issues.filter((issue) => issue.field === "rows[0].prompt")).toHaveLength(1); // not also "is required"
  });

  it("an alias within its limit reads as its anchor's value, in any row", () => {
    const text = manifest(600, { head: ["name: big", "vars:", "  town: &town Whitby"], extra: (i) => (i === 250 ? ["    matrix:", "      place: &places [harbour, pier]"] : i === 299 ? ["    vars: { where: *town }"] : []) });
    const withPlaces = text.replace('prompt: "Poster number 250 of a quiet harbour town"', 'prompt: "Poster number 250 of the {{place}}"');
    const items = parse("big.yaml", withPlaces).items;
    expect(items.filter((item) => item.rowId === "r250").map((item) => item.request.prompt)).toEqual(["Poster number 250 of the harbour", "Poster number 250 of the pier"]);
    expect(items).toHaveLength(601);
  });

  it("an anchor named again: each alias stands for the nearest one above it, across batches", () => {
    const text = manifest(700, { extra: (i) => (i === 2 ? ["    style: &s cartoon"] : i === 300 ? ["    style: *s"] : i === 400 ? ["    style: &s vintage"] : i === 600 ? ["    style: *s"] : []) });
    const styles = Object.fromEntries(parse("big.yaml", text).items.map((item) => [item.rowId, item.request.style]));
    expect([styles.r2, styles.r300, styles.r400, styles.r600]).toEqual(["cartoon", "cartoon", "vintage", "vintage"]);
  });

  it("an alias in the header does not stand for an anchor in a row below it, though that row was read first", () => {
    const text = manifest(300, { head: ["name: big", "vars: { where: *town }"], extra: (i) => (i === 5 ? ["    vars: { t: &town Whitby }"] : []) });
    expect(batchesOf(text)).toBeGreaterThan(0);
    expect(issuesOf("big.yaml", text).issues).toEqual([expect.objectContaining({ field: "vars.where", line: 2, message: "alias *town has no anchor &town above it" })]);
  });

  it.each([
    ["an alias above its anchor", lines("rows:", "  - id: a", "    prompt: *later", "  - id: b", "    prompt: &later A lighthouse at dusk"), { field: "rows[0].prompt", line: 3, message: "alias *later has no anchor &later above it" }],
    ["an alias with no anchor", lines("rows:", "  - id: a", "    prompt: *nowhere"), { field: "rows[0].prompt", line: 3, message: "alias *nowhere has no anchor &nowhere above it" }],
    ["an alias inside its own anchor", lines("rows: &r", "  - id: a", "    prompt: hello there", "    matrix: { x: *r }"), { field: "rows[0].matrix.x", line: 4, message: "alias *r is inside the value its anchor &r names, so it never ends" }],
  ])("%s is named", (_name, text, expected) => {
    const { issues } = issuesOf("alias.yaml", text);
    expect(issues).toContainEqual(expect.objectContaining(expected));
  });
});

describe("duplicate keys", () => {
  it.each([
    ["at the top", lines("name: a", "name: b", "rows:", "  - prompt: A lighthouse at dusk"), { field: "name", line: 2, message: 'key "name" appears twice in the manifest (first on line 1); keep one' }],
    ["in defaults", lines("defaults:", "  style: cartoon", "  style: anime", "rows:", "  - prompt: A lighthouse at dusk"), { field: "defaults.style", line: 3, message: 'key "style" appears twice in defaults (first on line 2); keep one' }],
    ["in a row far down", manifest(300, { extra: (i) => (i === 280 ? ["    id: again"] : []) }), { field: "rows[280].id", line: 565, message: 'key "id" appears twice in a row (first on line 563); keep one' }],
    ["in a flow mapping", lines("rows:", "  - { prompt: A lighthouse at dusk, prompt: again }"), { field: "rows[0].prompt", line: 2, message: 'key "prompt" appears twice in a row (first on line 2); keep one' }],
  ])("%s: named with both lines", (_name, text, expected) => {
    expect(issuesOf("dup.yaml", text).issues).toEqual([expect.objectContaining(expected)]);
  });
});
