// Rows → items: ids, the matrix cross product, variants, templates, keys, and the rules
// that only hold per item (the filled prompt, a ratio the chosen model supports). A rule
// that fails for several items of one row is reported once for that row.
import { DEFAULT_MODEL, isAspectRatio, isImageModel, MODEL_SPECS, promptProblem } from "../providers/catalog.js";
import type { ImageRequest } from "../providers/provider.js";
import { type DraftHeader, type DraftRow, fieldOf, IssueList, type Located, REQUEST_FIELDS, type RequestField, type Where } from "./draft.js";
import { canonicalJson, deriveRowId, slugify } from "./slug.js";
import { fillTemplate } from "./template.js";
import { ItemCap } from "./item-cap.js";
import { chooseReference, ReferenceResolver } from "./references.js";
import type { InspectReference, ManifestIssue, PlannedItem, ReferenceFile, WebhookPlan } from "./types.js";
import { MAX_KEY_LENGTH } from "./values.js";

interface RowIdentity {
  row: DraftRow;
  id: string;
  derived: boolean;
  /** Its id is already taken (reported): still checked, but makes no items. */
  duplicate: boolean;
}

/** What later rows need of an earlier one: its id and how messages name it (never the row itself). */
interface SeenRow {
  id: string;
  derived: boolean;
  description: string;
}

/**
 * Rows → items one row at a time, so a manifest is never held as rows and items at once.
 * The issues of ids and of expansion are kept apart until finish(), in the order a
 * whole-manifest pass found them (all ids first); a manifest that expands past the cap
 * (item-cap.ts) reports no expansion issue, as when every row was counted before any was
 * expanded: a row is expanded only while the total so far is within the cap.
 */
export class ItemPlanner {
  private readonly items: PlannedItem[] = [];
  private readonly seenIds = new Map<string, SeenRow>();
  private readonly seenKeys = new Map<string, { key: string; row: SeenRow }>();
  /** Rows that name their own webhook (one string per distinct URL: a CSV column repeats it). */
  private readonly webhooks = new Map<string, string>();
  private readonly urls = new Map<string, string>();
  private readonly issues: IssueList;
  private readonly expandIssues: IssueList;
  private readonly cap: ItemCap;
  private readonly references: ReferenceResolver;

  /** `maxItems`: the cap on the items the whole manifest may expand to; `inspect`: how reference files are read. */
  constructor(
    private readonly draft: DraftHeader,
    file: string,
    maxItems: number,
    inspect?: InspectReference,
  ) {
    this.issues = new IssueList(file);
    this.expandIssues = new IssueList(file);
    this.cap = new ItemCap(maxItems);
    this.references = new ReferenceResolver(file, inspect);
  }

  add(row: DraftRow): void {
    const identity = this.assignId(row);
    if (identity === null) return;
    // A duplicate row makes no items: it is checked, not counted.
    if (!identity.duplicate && !this.cap.add(this.draft, row, identity.id)) {
      this.items.length = 0; // refused as a whole: build nothing more
      return;
    }
    if (this.cap.exceeded) return;
    const rowItems = expandRow(this.draft, identity, this.expandIssues, this.references);
    if (identity.duplicate) return;
    if (row.webhook !== null) {
      const url = this.urls.get(row.webhook.value) ?? row.webhook.value;
      this.urls.set(url, url);
      this.webhooks.set(identity.id, url);
    }
    const self = this.seenIds.get(identity.id.toLowerCase())!;
    for (const item of rowItems) {
      // Case-insensitive: keys become file names, and `Hero` and `hero` clash on macOS and Windows.
      const folded = item.key.toLowerCase();
      const earlier = this.seenKeys.get(folded);
      if (earlier !== undefined) {
        if (earlier.row !== self) {
          this.expandIssues.add(row.id?.at ?? fieldOf(row, "id"), `item key ${JSON.stringify(item.key)} clashes with ${JSON.stringify(earlier.key)} of ${earlier.row.description}; change an id`);
          break;
        }
        continue;
      }
      this.seenKeys.set(folded, { key: item.key, row: self });
      this.items.push(item);
    }
  }

  /** The items and their reference files, the rows' own webhooks, and the issues of ids then expansion (or of ids then the one issue of the cap). */
  finish(): { items: PlannedItem[]; references: ReferenceFile[]; issues: ManifestIssue[]; webhooks: WebhookPlan["byRow"] } {
    const webhooks = this.webhooks;
    const refusal = this.cap.refusal();
    if (refusal !== null) {
      this.issues.add(refusal.at, refusal.message);
      return { items: [], references: [], issues: this.issues.items, webhooks };
    }
    return { items: this.items, references: this.references.referenceFiles(), issues: [...this.issues.items, ...this.expandIssues.items], webhooks };
  }

  private assignId(row: DraftRow): RowIdentity | null {
    if (row.prompt === null) return null;
    const identity: RowIdentity =
      row.id !== null
        ? { row, id: row.id.value, derived: false, duplicate: false }
        : { row, id: deriveRowId(row.prompt.value, rowContent(row)), derived: true, duplicate: false };
    const folded = identity.id.toLowerCase();
    const earlier = this.seenIds.get(folded);
    if (earlier !== undefined) {
      const where = earlier.description;
      this.issues.add(
        row.id?.at ?? fieldOf(row, "id"),
        identity.derived && earlier.derived
          ? `this row is the same as ${where}, so both get the id ${JSON.stringify(identity.id)}; remove one or give each an id`
          : `id ${JSON.stringify(identity.id)} is already used by ${where}${earlier.id !== identity.id ? ` (as ${JSON.stringify(earlier.id)}; ids that differ only in case clash as file names)` : ""}`,
      );
      return { ...identity, duplicate: true };
    }
    this.seenIds.set(folded, { id: identity.id, derived: identity.derived, description: describeRow(row) });
    return identity;
  }
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

/** Every combination of matrix values, first axis outermost. */
function combinations(row: DraftRow): Located<string>[][] {
  let result: Located<string>[][] = [[]];
  for (const axis of row.matrix) {
    result = result.flatMap((prefix) => axis.values.map((value) => [...prefix, value]));
  }
  return result;
}

function expandRow(draft: DraftHeader, { row, id }: RowIdentity, issues: IssueList, references: ReferenceResolver): PlannedItem[] {
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
    const reference = chooseReference(pick("referenceImage"), pick("referenceImageUrl"), draft.defaults.fields);
    const referenceImageUrl = reference.url?.value;
    const referenceImage = reference.image === undefined ? null : references.resolve(reference.image, reportOnce);

    const own: Record<string, string | undefined> = { id, model, aspectRatio, style, referenceImageUrl, referenceImage: reference.image?.value };
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
    if (referenceImage !== null) request.referenceImage = referenceImage;

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
