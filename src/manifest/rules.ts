// Rules on the draft that do not need the rows expanded: each value is checked where it
// is written (a bad style in a matrix is reported once, at the matrix, not per item).
import { type DraftHeader, type DraftRow, type FieldValues, type IssueList, isRequestField, type Located, REQUEST_FIELDS, ROW_FIELDS, type Where } from "./draft.js";
import { slugify } from "./slug.js";
import { parseTemplate } from "./template.js";
import { idProblem, requestValueProblem, webhookProblem } from "./values.js";

const RESERVED_VARS: readonly string[] = ROW_FIELDS;

/** The manifest-wide parts (defaults, variables); rows are checked one by one with checkRow. */
export function checkHeader(draft: DraftHeader, issues: IssueList): void {
  checkFields(draft.defaults.fields, issues);
  checkWebhook(draft.defaults.webhook, issues);
  checkVarNames(draft.vars, issues);
  const { referenceImage, referenceImageUrl } = draft.defaults.fields;
  if (referenceImage && referenceImageUrl) issues.add(referenceImage.at, BOTH_REFERENCES);
}

const BOTH_REFERENCES = "referenceImage and referenceImageUrl are both given; keep one (a referenceImage file is uploaded for you)";

/** A row's reference of each kind, as a field or a matrix axis: both on one row is refused. */
function checkOneReference(row: DraftRow, issues: IssueList): void {
  const of = (field: "referenceImage" | "referenceImageUrl") => row.fields[field]?.at ?? row.matrix.find((axis) => axis.name === field)?.at;
  const image = of("referenceImage");
  if (image !== undefined && of("referenceImageUrl") !== undefined) issues.add(image, BOTH_REFERENCES);
}

function checkWebhook(webhook: Located<string> | null, issues: IssueList): void {
  const problem = webhook === null ? null : webhookProblem(webhook.value);
  if (problem !== null) issues.add(webhook!.at, problem);
}

function checkFields(fields: FieldValues, issues: IssueList): void {
  for (const field of REQUEST_FIELDS) {
    const located = fields[field];
    if (located === undefined) continue;
    const problem = requestValueProblem(field, located.value);
    if (problem !== null) issues.add(located.at, problem);
  }
}

function checkVarNames(vars: Map<string, Located<string>>, issues: IssueList): void {
  for (const [name, located] of vars) {
    if (RESERVED_VARS.includes(name)) {
      issues.add(located.at, `${JSON.stringify(name)} is a row field, not a variable name; set it as a field (or in defaults) instead`);
    }
  }
}

export function checkRow(row: DraftRow, issues: IssueList): void {
  if (row.id !== null) {
    const problem = idProblem(row.id.value);
    if (problem !== null) issues.add(row.id.at, problem);
  }
  checkFields(row.fields, issues);
  checkOneReference(row, issues);
  checkWebhook(row.webhook, issues);
  checkVarNames(row.vars, issues);
  if (row.prompt !== null) {
    for (const problem of parseTemplate(row.prompt.value).problems) issues.add(row.prompt.at, problem);
  }
  const placeholders = row.prompt === null ? null : parseTemplate(row.prompt.value).names;
  for (const axis of row.matrix) {
    if (isRequestField(axis.name)) {
      if (row.fields[axis.name] !== undefined) {
        issues.add(axis.at, `${axis.name} is both set on the row and a matrix axis; keep one`);
      }
      for (const value of axis.values) {
        const problem = requestValueProblem(axis.name, value.value);
        if (problem !== null) issues.add(value.at, problem);
      }
    } else if (ROW_FIELDS.includes(axis.name as (typeof ROW_FIELDS)[number])) {
      issues.add(axis.at, `${axis.name} cannot be a matrix axis (axes: ${REQUEST_FIELDS.join(", ")}, or a variable used in the prompt)`);
      continue;
    } else {
      if (row.vars.has(axis.name)) issues.add(axis.at, `${JSON.stringify(axis.name)} is both a row variable and a matrix axis; keep one`);
      if (placeholders !== null && !placeholders.includes(axis.name)) {
        issues.add(
          axis.at,
          `matrix axis ${JSON.stringify(axis.name)} is neither a request field (${REQUEST_FIELDS.join(", ")}) nor a {{${axis.name}}} placeholder in the prompt, so its items would all be the same`,
        );
      }
    }
    checkAxisValues(axis.name, axis.values, axis.at, issues);
  }
}

function checkAxisValues(axis: string, values: Located<string>[], at: Where, issues: IssueList): void {
  if (values.length === 0) {
    issues.add(at, "a matrix axis must list at least one value");
    return;
  }
  const bySlug = new Map<string, Located<string>>();
  for (const value of values) {
    const slug = slugify(value.value);
    const earlier = bySlug.get(slug);
    if (slug === "") {
      issues.add(value.at, `matrix value ${JSON.stringify(value.value)} of ${axis} has no letter or digit, so it cannot name an item`);
    } else if (earlier !== undefined) {
      const same = earlier.value === value.value;
      issues.add(
        value.at,
        same
          ? `matrix value ${JSON.stringify(value.value)} of ${axis} is listed twice`
          : `matrix values ${JSON.stringify(earlier.value)} and ${JSON.stringify(value.value)} of ${axis} would give items the same key (both "${slug}")`,
      );
    } else {
      bySlug.set(slug, value);
    }
  }
}
