// The cap on expansion (issue 17): a manifest that expands past 10,000 items (the default;
// the manifest's `maxItems:` or --max-items raise it) is refused with the count per row,
// biggest first, counted arithmetically before anything is built.
import { describe, expect, it } from "vitest";
import { parseManifestText } from "../src/manifest/index.js";
import { rowItemCount } from "../src/manifest/item-cap.js";
import { issuesOf, lines } from "./fixtures/manifests/helpers.js";

const values = (prefix: string, n: number) => `[${Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(", ")}]`;

/** A YAML row of `n` × `m` matrix items times `variants`. */
function gridRow(id: string, n: number, m: number, variants = 1): string[] {
  return [`  - id: ${id}`, `    prompt: "Aurora Pro earbuds, {{a}} and {{b}}"`, ...(variants > 1 ? [`    variants: ${variants}`] : []), "    matrix:", `      a: ${values("a", n)}`, `      b: ${values("b", m)}`];
}

function refusal(fileName: string, text: string, options = {}) {
  try {
    parseManifestText(text, fileName, fileName.endsWith(".csv") ? "csv" : "yaml", options);
  } catch (error) {
    const issues = (error as { issues?: { message: string; field: string; line?: number; row?: number }[] }).issues;
    if (issues) return issues;
    throw error;
  }
  return null;
}

describe("the cap on items", () => {
  it.each([
    ["exactly the default cap", lines("rows:", ...gridRow("g", 100, 100)), {}, 10_000],
    ["one row's variants × matrix, raised by maxItems:", lines("maxItems: 20000", "rows:", ...gridRow("g", 100, 20, 10)), {}, 20_000],
    ["maxItems: written below the rows (read with the whole header)", lines("rows:", ...gridRow("g", 100, 20, 10), "maxItems: 20000"), {}, 20_000],
    ["--max-items raises it", lines("rows:", ...gridRow("g", 110, 100)), { maxItems: 11_000 }, 11_000],
    ["a CSV's # maxItems: directive", lines("# maxItems: 12000", "id,prompt,a,b", `g,"{{a}} {{b}} earbuds",${Array.from({ length: 120 }, (_, i) => `a${i}`).join("|")},${Array.from({ length: 100 }, (_, i) => `b${i}`).join("|")}`), {}, 12_000],
  ])("accepts %s", (_name, text, options, count) => {
    const fileName = text.startsWith("# maxItems") ? "m.csv" : "m.yaml";
    const manifest = parseManifestText(text, fileName, fileName.endsWith(".csv") ? "csv" : "yaml", options);
    expect(manifest.items).toHaveLength(count);
  });

  it.each([
    ["one more than the default", "m.yaml", lines("rows:", ...gridRow("g", 100, 100), "  - id: one", "    prompt: Aurora Pro earbuds on a desk"), {}, 10_001, 10_000],
    ["--max-items below the manifest's maxItems: (the flag wins)", "m.yaml", lines("maxItems: 50000", "rows:", ...gridRow("g", 100, 20, 10)), { maxItems: 1000 }, 20_000, 1000],
    ["a CSV over its # maxItems:", "m.csv", lines("# maxItems: 50", "id,prompt,a", `g,"{{a}} earbuds on a desk",${Array.from({ length: 60 }, (_, i) => `a${i}`).join("|")}`), {}, 60, 50],
  ])("refuses %s, counting without building", (_name, fileName, text, options, total, cap) => {
    const issues = refusal(fileName, text, options);
    expect(issues).toHaveLength(1);
    expect(issues![0]!.message).toMatch(new RegExp(`^the manifest expands to ${total.toLocaleString("en-US")} items, more than the ${cap.toLocaleString("en-US")} allowed; .*maxItems: in the manifest, or --max-items`));
  });

  it("lists the rows that make the most, biggest first, and sums the rest", () => {
    const rows: string[] = [];
    // 12 rows of 1,000 items, one of 5,000 and one of 3,000 in the middle: 17,000 with the two.
    for (let i = 0; i < 12; i++) rows.push(...gridRow(`r${i}`, 10, 100));
    rows.splice(6 * 5, 0, ...gridRow("big", 50, 100), ...gridRow("mid", 30, 100));
    const issues = refusal("m.yaml", lines("rows:", ...rows));
    expect(issues).toHaveLength(1);
    const issue = issues![0]!;
    // Reported at the biggest row: its line and path.
    expect(issue).toMatchObject({ field: "rows[6]", line: 32 });
    const listed = issue.message.split("\n").slice(1).map((l) => l.trim());
    expect(listed[0]).toBe('rows[6] "big" (line 32): 5,000 (a 50 × b 100)');
    expect(listed[1]).toBe('rows[7] "mid" (line 37): 3,000 (a 30 × b 100)');
    expect(listed[2]).toBe('rows[0] "r0" (line 2): 1,000 (a 10 × b 100)');
    expect(listed).toHaveLength(11);
    expect(listed[10]).toBe("4 other rows: 4,000");
    expect(issue.message).toMatch(/^the manifest expands to 20,000 items/);
  });

  it("names CSV rows by number, with the variants that multiply them", () => {
    const text = lines("id,prompt,style,variants", "a,Aurora Pro earbuds on a desk,cartoon|vintage|artistic,100", "b,Aurora Pro earbuds on a beach,,100", "c,Aurora Pro earbuds in the snow,photorealistic|minimalist|cartoon|vintage|artistic|futuristic,100");
    const issues = refusal("m.csv", text, { maxItems: 500 });
    expect(issues![0]).toMatchObject({ row: 3, line: 4 });
    expect(issues![0]!.message.split("\n").slice(1).map((l) => l.trim())).toEqual([
      'row 3 "c" (line 4): 600 (style 6 × variants 100)',
      'row 1 "a" (line 2): 300 (style 3 × variants 100)',
      'row 2 "b" (line 3): 100 (variants 100)',
    ]);
  });

  it.each([
    ["maxItems: 0", "m.yaml", lines("maxItems: 0", "rows:", "  - prompt: Aurora Pro earbuds on a desk"), { field: "maxItems", line: 1, message: "0 is out of range: must be a whole number from 1 to 1000000" }],
    ["maxItems: a word", "m.yaml", lines("maxItems: lots", "rows:", "  - prompt: Aurora Pro earbuds on a desk"), { field: "maxItems", line: 1, message: 'must be a whole number from 1 to 1000000, not the text "lots"' }],
    ["# maxItems: past the limit", "m.csv", lines("# maxItems: 2000000", "id,prompt", "a,Aurora Pro earbuds on a desk"), { field: "maxItems", line: 1, message: '"2000000" is not a whole number from 1 to 1000000' }],
  ])("refuses %s with its line", (_name, fileName, text, expected) => {
    const { issues } = issuesOf(fileName, text);
    expect(issues).toEqual([{ file: fileName, ...expected }]);
  });

  it("counts a row as variants × the size of each axis (10^7 in one multiplication)", () => {
    const manifest = lines("rows:", ...gridRow("g", 1000, 100, 100));
    const issues = refusal("m.yaml", manifest);
    expect(issues![0]!.message).toMatch(/^the manifest expands to 10,000,000 items/);
    const row = { variants: { value: 100 }, matrix: [{ values: { length: 1000 } }, { values: { length: 100 } }] };
    expect(rowItemCount({ defaults: { variants: null } } as never, row as never)).toBe(10_000_000);
  });
});
