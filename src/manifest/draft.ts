// The manifest after parsing and normalising, before rules and expansion. YAML and CSV
// both read into this shape, so every later step (rules, templates, keys) is shared and
// the two formats cannot drift apart. Every value keeps where it was written.
import type { ProviderName } from "../providers/provider.js";
import type { QcSettings } from "./qc.js";
import type { ManifestIssue, RenditionSpec, ThumbnailSpec } from "./types.js";

/** Enough to point at a value: the field path plus the YAML line or the CSV row and line. */
export interface Where {
  field: string;
  line?: number;
  row?: number;
}

export interface Located<T> {
  value: T;
  at: Where;
}

/**
 * Row fields that go into the request (the prompt goes through templates; `referenceImage`, a
 * file path, goes in as the file's sha256: references.ts).
 */
export const REQUEST_FIELDS = ["model", "aspectRatio", "style", "referenceImageUrl", "referenceImage"] as const;
export type RequestField = (typeof REQUEST_FIELDS)[number];

export function isRequestField(name: string): name is RequestField {
  return (REQUEST_FIELDS as readonly string[]).includes(name);
}

/**
 * Every field a row has; none of them can be a variable name. `webhook` is where the service
 * reports a finished job: sent with the submit, never part of the request (its hash, the key).
 */
export const ROW_FIELDS = ["id", "prompt", ...REQUEST_FIELDS, "variants", "webhook"] as const;

export interface MatrixAxis {
  name: string;
  at: Where;
  values: Located<string>[];
}

export type FieldValues = Partial<Record<RequestField, Located<string>>>;

export interface DraftRow {
  /** 0-based position in the file. */
  index: number;
  /** Where the row starts (for a missing field). */
  at: Where;
  /** Prefix of this row's field paths: `rows[3].` in YAML, "" in CSV (the column is the path). */
  pathPrefix: string;
  /** For PlannedItem.source: `example.yaml line 12`, `example.csv row 4`. */
  source: string;
  id: Located<string> | null;
  prompt: Located<string> | null;
  fields: FieldValues;
  variants: Located<number> | null;
  webhook: Located<string> | null;
  /** In declared order: the order of the key's slugs. */
  matrix: MatrixAxis[];
  vars: Map<string, Located<string>>;
}

/** Everything of a manifest but its rows, which are read, checked and expanded one at a time. */
export interface DraftHeader {
  name: string;
  provider: ProviderName | null;
  defaults: { fields: FieldValues; variants: Located<number> | null; webhook: Located<string> | null };
  vars: Map<string, Located<string>>;
  renditions: RenditionSpec[];
  thumbnail: ThumbnailSpec;
  qc: QcSettings;
  /** The manifest's own cap on its items (`maxItems:`, `# maxItems:`), or null for the default. */
  maxItems: Located<number> | null;
}

export interface DraftManifest extends DraftHeader {
  /** YAML's rows, read from the whole parsed document (CSV rows are streamed past this shape: csv.ts). */
  rows: Iterable<DraftRow>;
}

/** Collects issues for one file; steps add to it and carry on, so every mistake is reported. */
export class IssueList {
  readonly items: ManifestIssue[] = [];
  constructor(readonly file: string) {}

  add(at: Where, message: string): void {
    const issue: ManifestIssue = { file: this.file, field: at.field, message };
    if (at.line !== undefined) issue.line = at.line;
    if (at.row !== undefined) issue.row = at.row;
    this.items.push(issue);
  }

  /** By line in the file, keeping the order of discovery within a line. */
  sorted(): ManifestIssue[] {
    const position = (issue: ManifestIssue) => issue.line ?? 0;
    return this.items
      .map((issue, order) => ({ issue, order }))
      .sort((a, b) => position(a.issue) - position(b.issue) || a.order - b.order)
      .map(({ issue }) => issue);
  }
}

export function fieldOf(row: DraftRow, name: string): Where {
  return { ...row.at, field: `${row.pathPrefix}${name}` };
}
