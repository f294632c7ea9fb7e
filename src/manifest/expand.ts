// Rows → items: ids, the matrix cross product, variants, templates, keys, and the rules
// that only hold per item (the filled prompt, a ratio the chosen model supports). A rule
// that fails for several items of one row is reported once for that row.
import { DEFAULT_MODEL, isAspectRatio, isImageModel, MODEL_SPECS, promptProblem } from "../providers/catalog.js";
import type { ImageRequest } from "../providers/provider.js";
import { type DraftManifest, type DraftRow, fieldOf, type IssueList, type Located, REQUEST_FIELDS, type RequestField, type Where } from "./draft.js";
import { canonicalJson, deriveRowId, slugify } from "./slug.js";
import { fillTemplate } from "./template.js";
import type { PlannedItem } from "./types.js";
import { MAX_KEY_LENGTH } from "./values.js";

/** A manifest that would expand past this is refused before anything is built. */
export const MAX_ITEMS = 100_000;

interface RowIdentity {
  row: DraftRow;
  id: string;
  derived: boolean;
  /** Its id is already taken (reported): still checked, but makes no items. */
  duplicate: boolean;
}

export function expandRows(draft: DraftManifest, issues: IssueList): PlannedItem[] {
  const identities = assignIds(draft.rows, issues);
  const total = identities.reduce((sum, { row, duplicate }) => sum + (duplicate ? 0 : itemCount(draft, row)), 0);
  if (total > MAX_ITEMS) {
    const largest = identities.reduce((a, b) => (itemCount(draft, b.row) > itemCount(draft, a.row) ? b : a));
    issues.add(largest.row.at, `the manifest expands to ${total} items, more than the ${MAX_ITEMS} allowed (this row alone makes ${itemCount(draft, largest.row)}); split it`);
    return [];
  }
  const items: PlannedItem[] = [];
  const keys = new Map<string, { key: string; row: DraftRow }>();
  for (const identity of identities) {
    const rowItems = expandRow(draft, identity, issues);
    if (identity.duplicate) continue;
    for (const item of rowItems) {
      // Case-insensitive: keys become file names, and `Hero` and `hero` clash on macOS and Windows.
      const folded = item.key.toLowerCase();
      const earlier = keys.get(folded);
      if (earlier !== undefined) {
        if (earlier.row !== identity.row) {
          issues.add(identity.row.id?.at ?? fieldOf(identity.row, "id"), `item key ${JSON.stringify(item.key)} clashes with ${JSON.stringify(earlier.key)} of ${describeRow(earlier.row)}; change an id`);
          break;
        }
        continue;
      }
      keys.set(folded, { key: item.key, row: identity.row });
      items.push(item);
    }
  }
  return items;
}

function itemCount(draft: DraftManifest, row: DraftRow): number {
  const variants = row.variants?.value ?? draft.defaults.variants?.value ?? 1;
  return row.matrix.reduce((product, axis) => product * axis.values.length, variants);
}

function describeRow(row: DraftRow): string {
  return row.pathPrefix === "" ? `row ${row.at.row} (line ${row.at.line})` : `${row.at.field} (line ${row.at.line})`;
}

/** The row's own content, without its position, so that reordering rows keeps derived ids. */
function rowContent(row: DraftRow): string {
  const fields: Record<string, string> = {};
  for (const field of REQUEST_FIELDS) {
    const located = row.fields[field];
    if (located !== undefined) fields[field] = located.value;
  }
  return canonicalJson({
    prompt: row.prompt?.value,
    fields,
    matrix: row.matrix.map((axis) => [axis.name, axis.values.map((value) => value.value)]),
    variants: row.variants?.value ?? 1,
    vars: Object.fromEntries([...row.vars].map(([name, located]) => [name, located.value])),
  });
}

function assignIds(rows: DraftRow[], issues: IssueList): RowIdentity[] {
  const identities: RowIdentity[] = [];
  const seen = new Map<string, RowIdentity>();
  for (const row of rows) {
    if (row.prompt === null) continue;
    const identity: RowIdentity =
      row.id !== null
        ? { row, id: row.id.value, derived: false, duplicate: false }
        : { row, id: deriveRowId(row.prompt.value, rowContent(row)), derived: true, duplicate: false };
    const folded = identity.id.toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      const where = describeRow(earlier.row);
      issues.add(
        row.id?.at ?? fieldOf(row, "id"),
        identity.derived && earlier.derived
          ? `this row is the same as ${where}, so both get the id ${JSON.stringify(identity.id)}; remove one or give each an id`
          : `id ${JSON.stringify(identity.id)} is already used by ${where}${earlier.id !== identity.id ? ` (as ${JSON.stringify(earlier.id)}; ids that differ only in case clash as file names)` : ""}`,
      );
      identities.push({ ...identity, duplicate: true });
      continue;
    }
    seen.set(folded, identity);
    identities.push(identity);
  }
  return identities;
}

/** Every combination of matrix values, first axis outermost. */
function combinations(row: DraftRow): Located<string>[][] {
  let result: Located<string>[][] = [[]];
  for (const axis of row.matrix) {
    result = result.flatMap((prefix) => axis.values.map((value) => [...prefix, value]));
  }
  return result;
}

function expandRow(draft: DraftManifest, { row, id }: RowIdentity, issues: IssueList): PlannedItem[] {
  const template = row.prompt;
  if (template === null) return [];
  const reported = new Set<string>();
  const reportOnce = (topic: string, at: Where, message: string) => {
    if (reported.has(topic)) return;
    reported.add(topic);
    issues.add(at, message);
  };
  const variants = row.variants?.value ?? draft.defaults.variants?.value ?? 1;
  const items: PlannedItem[] = [];

  for (const combination of combinations(row)) {
    const matrix: Record<string, string> = {};
    const fromMatrix = new Map<string, Located<string>>();
    row.matrix.forEach((axis, index) => {
      const value = combination[index];
      if (value === undefined) return;
      matrix[axis.name] = value.value;
      fromMatrix.set(axis.name, value);
    });
    const pick = (field: RequestField) => fromMatrix.get(field) ?? row.fields[field] ?? draft.defaults.fields[field];

    const model = pick("model")?.value ?? DEFAULT_MODEL;
    const ratio = pick("aspectRatio");
    const supported = isImageModel(model) ? MODEL_SPECS[model].aspectRatios : null;
    const aspectRatio = ratio?.value ?? supported?.[0] ?? "";
    if (ratio !== undefined && supported !== null && isAspectRatio(ratio.value) && !(supported as readonly string[]).includes(ratio.value)) {
      const ownsRatio = ratio === fromMatrix.get("aspectRatio") || ratio === row.fields.aspectRatio;
      reportOnce(
        `ratio:${model}:${ratio.value}`,
        ownsRatio ? ratio.at : fieldOf(row, "aspectRatio"),
        `${JSON.stringify(ratio.value)}${ownsRatio ? "" : ` (from ${ratio.at.field})`} is not supported by model ${JSON.stringify(model)} (supported: ${supported.join(", ")})`,
      );
    }
    const style = pick("style")?.value;
    const referenceImageUrl = pick("referenceImageUrl")?.value;

    const own: Record<string, string | undefined> = { id, model, aspectRatio, style, referenceImageUrl };
    const { text, missing } = fillTemplate(template.value, (name) => {
      if (Object.hasOwn(matrix, name)) return matrix[name];
      if (Object.hasOwn(own, name)) return own[name];
      return row.vars.get(name)?.value ?? draft.vars.get(name)?.value;
    });
    for (const name of missing) {
      reportOnce(
        `placeholder:${name}`,
        template.at,
        `{{${name}}} has no value: it is not a matrix axis, a row field${row.pathPrefix === "" ? ", a column" : ", a row variable"} or a manifest variable`,
      );
    }
    const prompt = text.trim();
    const problem = missing.length > 0 ? null : promptProblem(prompt);
    if (problem !== null) {
      const filled = prompt !== template.value;
      reportOnce("prompt", template.at, `${filled ? "the filled prompt " : ""}${problem}${filled ? `: ${JSON.stringify(prompt)}` : ""}`);
    }

    const request = { prompt, model, aspectRatio } as ImageRequest;
    if (style !== undefined) request.style = style as ImageRequest["style"];
    if (referenceImageUrl !== undefined) request.referenceImageUrl = referenceImageUrl;

    const base = [id, ...combination.map((value) => slugify(value.value))].join("--");
    for (let variant = 1; variant <= variants; variant++) {
      const key = variants > 1 ? `${base}--v${variant}` : base;
      if (key.length > MAX_KEY_LENGTH) {
        reportOnce("key-length", row.id?.at ?? fieldOf(row, "id"), `item key ${JSON.stringify(key)} is ${key.length} characters, more than ${MAX_KEY_LENGTH}; use a shorter id or shorter matrix values`);
      }
      items.push({
        key,
        rowId: id,
        source: row.source,
        variant: variants > 1 ? variant : null,
        matrix: { ...matrix },
        request: { ...request },
      });
    }
  }
  return items;
}
