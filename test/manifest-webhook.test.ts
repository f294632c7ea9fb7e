// The manifest's `webhook` (issue 19): where it is written (defaults, a row, a CSV column), how it
// is checked, and that it is no part of an item's identity (its request, its hash, its key).
import { describe, expect, it } from "vitest";
import { requestHash, webhookOf } from "../src/manifest/index.js";
import { issuesOf, lines, parse } from "./fixtures/manifests/helpers.js";

const HOOK = "https://hooks.example.com/imgbatch?channel=launch";
const OTHER = "https://automation.example.org/catch/123/abc";

describe("webhook in a manifest", () => {
  it("applies defaults.webhook to every row that names none; a row's own wins", () => {
    const manifest = parse(
      "hooks.yaml",
      lines("defaults:", `  webhook: ${HOOK}`, "rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "  - id: b", "    prompt: Aurora Pro earbuds on a shelf", `    webhook: ${OTHER}`),
    );
    expect(webhookOf(manifest.webhooks, "a")).toBe(HOOK);
    expect(webhookOf(manifest.webhooks, "b")).toBe(OTHER);
    // Not on the request: what decides the image (and its hash) does not hold it.
    for (const item of manifest.items) expect(item.request).not.toHaveProperty("webhook");
  });

  it("has no webhook for a row when neither the row nor the defaults name one", () => {
    const manifest = parse("plain.yaml", lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk"));
    expect(webhookOf(manifest.webhooks, "a")).toBeNull();
  });

  it("reads a CSV webhook column per row; a '|' in it is part of the URL, not a matrix", () => {
    const manifest = parse("hooks.csv", lines("id,prompt,webhook", `a,Aurora Pro earbuds on a desk,${OTHER}|x`, "b,Aurora Pro earbuds on a shelf,"));
    expect(manifest.items.map((i) => i.key)).toEqual(["a", "b"]);
    expect(webhookOf(manifest.webhooks, "a")).toBe(`${OTHER}|x`);
    expect(webhookOf(manifest.webhooks, "b")).toBeNull();
  });

  it("keeps one string per distinct URL, however many rows repeat it", () => {
    const rows = Array.from({ length: 50 }, (_, i) => `r${i},Aurora Pro earbuds number ${i},${OTHER}`);
    const manifest = parse("many.csv", lines("id,prompt,webhook", ...rows));
    const urls = new Set([...manifest.webhooks.byRow.values()]);
    expect(urls.size).toBe(1);
    expect(manifest.webhooks.byRow.size).toBe(50);
  });

  it("changes no key, request or derived id: a row's webhook is not its identity", () => {
    const without = parse("a.yaml", lines("rows:", "  - prompt: Aurora Pro earbuds on a desk", "    variants: 2"));
    const withHook = parse("a.yaml", lines("defaults:", `  webhook: ${HOOK}`, "rows:", "  - prompt: Aurora Pro earbuds on a desk", "    variants: 2", `    webhook: ${OTHER}`));
    expect(withHook.items.map((i) => i.key)).toEqual(without.items.map((i) => i.key));
    expect(withHook.items.map((i) => requestHash(i.request, "pictory"))).toEqual(without.items.map((i) => requestHash(i.request, "pictory")));
  });

  it.each([
    ["defaults", lines("defaults:", "  webhook: ftp://example.com/hook", "rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk"), { field: "defaults.webhook", line: 2 }],
    ["a row", lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    webhook: /hooks/local"), { field: "rows[0].webhook", line: 4 }],
  ])("refuses a webhook in %s that is not an absolute http(s) URL, naming file, line and field", (_where, text, at) => {
    const { issues } = issuesOf("bad.yaml", text);
    expect(issues).toEqual([{ file: "bad.yaml", ...at, message: expect.stringMatching(/is not an absolute http\(s\) URL$/) }]);
  });

  it("refuses a bad CSV webhook naming its row and column, with every other issue", () => {
    const { issues } = issuesOf("bad.csv", lines("id,prompt,webhook,style", "a,Aurora Pro earbuds on a desk,hooks.example.com/x,neon"));
    expect(issues).toEqual([
      { file: "bad.csv", row: 1, line: 2, field: "style", message: expect.stringMatching(/"neon" is not a known style/) },
      { file: "bad.csv", row: 1, line: 2, field: "webhook", message: '"hooks.example.com/x" is not an absolute http(s) URL' },
    ]);
  });

  it("is no matrix axis and no variable name", () => {
    const axis = issuesOf("m.yaml", lines("rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk", "    matrix:", `      webhook: [${HOOK}, ${OTHER}]`));
    expect(axis.issues).toEqual([expect.objectContaining({ field: "rows[0].matrix.webhook", message: expect.stringMatching(/^webhook cannot be a matrix axis/) })]);
    const variable = issuesOf("v.yaml", lines("vars:", `  webhook: ${HOOK}`, "rows:", "  - id: a", "    prompt: Aurora Pro earbuds on a desk"));
    expect(variable.issues).toEqual([expect.objectContaining({ field: "vars.webhook", message: expect.stringMatching(/is a row field, not a variable name/) })]);
  });
});
