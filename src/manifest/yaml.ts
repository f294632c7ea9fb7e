// YAML manifest → a DraftHeader and DraftRows. Shape only (types, known keys, required
// fields); the rules shared with CSV run afterwards on the draft.
import { type Document, isAlias, isScalar, isSeq, LineCounter, type YAMLSeq } from "yaml";
import { PROVIDER_NAMES, type ProviderName } from "../providers/provider.js";
import { type DraftHeader, type DraftRow, type FieldValues, IssueList, type Located, type MatrixAxis, REQUEST_FIELDS, type Where } from "./draft.js";
import { readRenditions, readThumbnail } from "./outputs.js";
import { defaultQcSettings, QC_KEYS, readQcSection, type QcSettings } from "./qc.js";
import { enumProblem, idProblem, MAX_ITEMS_LIMIT, VARIANTS_MAX, VARIANTS_MIN } from "./values.js";
import { YamlAnchors } from "./yaml-anchors.js";
import { parseManifestYaml } from "./yaml-parse.js";
import { describe, type MapEntry, scalarText, YamlReader } from "./yaml-reader.js";

export const TOP_KEYS = ["name", "provider", "defaults", "vars", "rows", "renditions", "thumbnail", "qc", "maxItems"] as const;
export const DEFAULTS_KEYS = [...REQUEST_FIELDS, "variants", "webhook"] as const;
export const ROW_KEYS = ["id", "prompt", ...REQUEST_FIELDS, "variants", "webhook", "matrix", "vars"] as const;

export interface SourceNames {
  /** As given by the user, for issues. */
  file: string;
  /** For PlannedItem.source. */
  base: string;
  /** Used when the manifest names itself nothing. */
  defaultName: string;
}

/** Where a manifest's rows go: given the header, a function that takes each row in order. */
export type RowSink = (header: DraftHeader) => (row: DraftRow) => void;

/**
 * Reads a manifest's header and hands it to `sink`, then each row, in order; returns the
 * header (with what was written below the rows too), or null when the file is unusable (a
 * syntax error, not a mapping): then rows handed on count for nothing.
 *
 * The rows of a long manifest are handed on as they are parsed (yaml-parse.ts), with the
 * header written above `rows:`. When `defaults:` or `vars:` is written below the rows, the
 * rows were read with the wrong header: the file is read a second time with the whole one
 * (`sink` is called again), which doubles the time of that layout only.
 */
export function readYamlManifest(text: string, names: SourceNames, issues: IssueList, sink: RowSink, knownHeader?: DraftHeader): DraftHeader | null {
  const lineCounter = new LineCounter();
  const anchors = new YamlAnchors();
  // The issues of rows read before the end count only if the whole file parses.
  const takenIssues = new IssueList(issues.file);
  let addRow: ((row: DraftRow) => void) | null = null;
  let takenCount = 0;
  const parsed = parseManifestYaml(text, lineCounter, {
    start(before) {
      anchors.add(before.contents);
      addRow = sink(knownHeader ?? readEarlyHeader(before, anchors, lineCounter, names));
    },
    rows(batch) {
      const list = batch.contents;
      if (!isSeq(list) || addRow === null) return;
      anchors.add(list);
      const reader = new YamlReader(anchors, lineCounter, takenIssues);
      for (const item of list.items) {
        const row = readRow(reader, list, item, takenCount++, names.base);
        if (row !== null) addRow(row);
      }
    },
  });
  for (const problem of parsed.problems) issues.add({ field: "", line: problem.line }, problem.message);
  if (parsed.doc === null || parsed.problems.length > 0) return null;
  issues.items.push(...takenIssues.items);

  anchors.add(parsed.doc.contents);
  const reader = new YamlReader(anchors, lineCounter, issues);
  const root = reader.resolve(parsed.doc.contents, "");
  if (root === null || (isScalar(root) && root.value === null)) {
    issues.add({ field: "", line: 1 }, `the file is empty; expected a mapping with at least "rows"`);
    return null;
  }
  const rootText = isScalar(root) && typeof root.value === "string" ? root.value : "";
  if (/prompt/.test(rootText) && /[,;\t]/.test(rootText)) {
    issues.add({ field: "", line: reader.lineOf(root) ?? 1 }, "the file looks like a CSV manifest (a header with a prompt column, then rows), not YAML: name it .csv");
    return null;
  }
  const top = reader.entries(root, { field: "", line: reader.lineOf(root) ?? 1 }, TOP_KEYS, "the manifest");
  if (top === null) return null;
  const header = readHeader(reader, top, names);
  if (addRow !== null && knownHeader === undefined && writtenBelowRows(top)) {
    issues.items.length = 0;
    return readYamlManifest(text, names, issues, sink, header);
  }
  readRows(reader, top.get("rows"), names.base, takenCount, addRow ?? sink(knownHeader ?? header));
  return header;
}

/** Everything but the rows; the issues go to the reader's list. */
function readHeader(reader: YamlReader, top: Map<string, MapEntry>, names: SourceNames): DraftHeader {
  const name = readName(reader, top.get("name")) ?? names.defaultName;
  const defaultsEntry = top.get("defaults");
  const defaultFields = defaultsEntry?.node ? reader.entries(defaultsEntry.node, defaultsEntry.at, DEFAULTS_KEYS, "defaults") : null;
  return {
    name,
    provider: readProvider(reader, top.get("provider")),
    defaults: {
      fields: defaultFields ? readFields(reader, defaultFields) : {},
      variants: readVariants(reader, defaultFields?.get("variants")),
      webhook: readWebhook(reader, defaultFields?.get("webhook")),
    },
    vars: readVars(reader, top.get("vars")),
    renditions: readRenditions(reader, top.get("renditions")),
    thumbnail: readThumbnail(reader, top.get("thumbnail")),
    qc: readQc(reader, top.get("qc")),
    maxItems: readMaxItems(reader, top.get("maxItems")),
  };
}

function readMaxItems(reader: YamlReader, entry: MapEntry | undefined): Located<number> | null {
  const value = reader.integer(entry, 1, MAX_ITEMS_LIMIT);
  return value === undefined || entry === undefined ? null : { value, at: entry.at };
}

/** The `qc:` section: its keys' scalar values, checked by manifest/qc.ts, each issue on its key's line. */
function readQc(reader: YamlReader, entry: MapEntry | undefined): QcSettings {
  if (entry === undefined || entry.node === null) return defaultQcSettings();
  const fields = reader.entries(entry.node, entry.at, QC_KEYS, "qc");
  if (fields === null) return defaultQcSettings();
  const values: Record<string, unknown> = {};
  const keyLines: Record<string, number> = {};
  for (const [key, field] of fields) {
    values[key] = field.node !== null && isScalar(field.node) ? field.node.value : field.node === null ? null : "a mapping or a list";
    if (field.at.line !== undefined) keyLines[key] = field.at.line;
  }
  const read = readQcSection(values, { file: reader.issues.file, ...(entry.at.line === undefined ? {} : { line: entry.at.line }) }, keyLines);
  for (const issue of read.issues) reader.issues.add({ field: issue.field, ...(issue.line === undefined ? {} : { line: issue.line }) }, issue.message);
  return read.settings;
}

/** The header written above `rows:`, for the rows read before the end; its issues are reported with the whole document's. */
function readEarlyHeader(before: Document.Parsed, anchors: YamlAnchors, lineCounter: LineCounter, names: SourceNames): DraftHeader {
  const reader = new YamlReader(anchors, lineCounter, new IssueList(names.file));
  const top = reader.entries(reader.resolve(before.contents, ""), { field: "", line: 1 }, TOP_KEYS, "the manifest");
  return readHeader(reader, top ?? new Map(), names);
}

/** A key the rows are read with (defaults, vars, the cap) is written below the rows. */
function writtenBelowRows(top: Map<string, MapEntry>): boolean {
  const rowsLine = top.get("rows")?.at.line ?? 0;
  return ["defaults", "vars", "maxItems"].some((key) => (top.get(key)?.at.line ?? 0) > rowsLine);
}

function readName(reader: YamlReader, entry: MapEntry | undefined): string | undefined {
  const name = reader.text(entry);
  if (name === undefined || entry === undefined) return undefined;
  const problem = idProblem(name);
  if (problem === null) return name;
  reader.issues.add(entry.at, problem);
  return undefined;
}

function readProvider(reader: YamlReader, entry: MapEntry | undefined): ProviderName | null {
  const value = reader.text(entry);
  if (value === undefined || entry === undefined) return null;
  const problem = enumProblem(value, PROVIDER_NAMES, "provider");
  if (problem === null) return value as ProviderName;
  reader.issues.add(entry.at, problem);
  return null;
}

/** Request fields as text; an empty value counts as not set, as an empty CSV cell does. */
function readFields(reader: YamlReader, entries: Map<string, MapEntry>): FieldValues {
  const fields: FieldValues = {};
  for (const field of REQUEST_FIELDS) {
    const entry = entries.get(field);
    const value = reader.text(entry);
    if (entry !== undefined && value !== undefined && value !== "") fields[field] = { value, at: entry.at };
  }
  return fields;
}

/** Text, as a request field is; an empty value counts as not set. */
function readWebhook(reader: YamlReader, entry: MapEntry | undefined): Located<string> | null {
  const value = reader.text(entry);
  return entry === undefined || value === undefined || value === "" ? null : { value, at: entry.at };
}

function readVariants(reader: YamlReader, entry: MapEntry | undefined): Located<number> | null {
  const value = reader.integer(entry, VARIANTS_MIN, VARIANTS_MAX);
  return value === undefined || entry === undefined ? null : { value, at: entry.at };
}

function readVars(reader: YamlReader, entry: MapEntry | undefined): Map<string, Located<string>> {
  const vars = new Map<string, Located<string>>();
  if (entry === undefined || entry.node === null) return vars;
  const entries = reader.entries(entry.node, entry.at, null, "vars");
  for (const [key, varEntry] of entries ?? []) {
    if (varEntry.refused) continue;
    const value = varEntry.node === null ? undefined : scalarText(varEntry.node);
    if (value === undefined) reader.issues.add(varEntry.at, `a variable must be text or a number, not ${describe(varEntry.node)}`);
    else {
      // Kept when refused, so that its placeholder is not also reported as having no value.
      reader.checked(value, varEntry.at);
      vars.set(key, { value, at: varEntry.at });
    }
  }
  return vars;
}

/** `takenCount`: rows the parser handed on before the end, which come before those left in the list. */
function readRows(reader: YamlReader, entry: MapEntry | undefined, base: string, takenCount: number, addRow: (row: DraftRow) => void): void {
  if (entry === undefined || entry.node === null) {
    if (!entry?.refused) reader.issues.add(entry?.at ?? { field: "rows", line: 1 }, "is required: a list of rows, each with at least a prompt");
    return;
  }
  const list = reader.sequence(entry, "rows");
  if (list === null) return;
  if (takenCount + list.items.length === 0) reader.issues.add(entry.at, "must list at least one row");
  list.items.forEach((item, index) => {
    const row = readRow(reader, list, item, takenCount + index, base);
    if (row !== null) addRow(row);
  });
}

function readRow(reader: YamlReader, list: YAMLSeq, item: unknown, index: number, base: string): DraftRow | null {
  const path = `rows[${index}]`;
  const node = reader.resolve(item, path);
  if (node === null && isAlias(item)) return null; // refused, reported
  const at: Where = reader.where(path, node ?? item, reader.lineOf(list));
  const entries = reader.entries(node, at, ROW_KEYS, "a row");
  if (entries === null) return null;

  const idEntry = entries.get("id");
  const id = reader.text(idEntry);
  const promptEntry = entries.get("prompt");
  const prompt = reader.text(promptEntry)?.trim();
  if (prompt === undefined || prompt === "") {
    if ((promptEntry?.node == null && !promptEntry?.refused) || prompt === "") {
      const comment = promptEntry?.comment;
      const hint = comment === undefined ? "" : `; the text after "#" is a comment: write the prompt in quotes, as in prompt: ${JSON.stringify(`#${comment}`)}`;
      reader.issues.add(promptEntry?.at ?? { ...at, field: `${path}.prompt` }, `is required${hint}`);
    }
  }
  return {
    index,
    at,
    pathPrefix: `${path}.`,
    source: `${base} line ${at.line ?? "?"}`,
    id: id === undefined || id === "" || idEntry === undefined ? null : { value: id, at: idEntry.at },
    prompt: prompt === undefined || prompt === "" || promptEntry === undefined ? null : { value: prompt, at: promptEntry.at },
    fields: readFields(reader, entries),
    variants: readVariants(reader, entries.get("variants")),
    webhook: readWebhook(reader, entries.get("webhook")),
    matrix: readMatrix(reader, entries.get("matrix")),
    vars: readVars(reader, entries.get("vars")),
  };
}

function readMatrix(reader: YamlReader, entry: MapEntry | undefined): MatrixAxis[] {
  if (entry === undefined || entry.node === null) return [];
  const axes: MatrixAxis[] = [];
  for (const [name, axisEntry] of reader.entries(entry.node, entry.at, null, "matrix") ?? []) {
    if (axisEntry.refused) continue;
    if (axisEntry.node === null) {
      reader.issues.add(axisEntry.at, "a matrix axis must list at least one value");
      continue;
    }
    const list = reader.sequence(axisEntry, "a matrix axis");
    if (list === null) continue;
    const values: Located<string>[] = [];
    list.items.forEach((item, index) => {
      const field = `${axisEntry.at.field}[${index}]`;
      const valueNode = reader.resolve(item, field);
      if (valueNode === null && isAlias(item)) return; // refused, reported
      const at = reader.where(field, valueNode ?? item, axisEntry.at.line);
      const value = scalarText(valueNode);
      if (value === undefined || value === "") reader.issues.add(at, `a matrix value must be non-empty text or a number, not ${describe(valueNode)}`);
      else {
        reader.checked(value, at); // kept when refused: the axis is not also empty
        values.push({ value, at });
      }
    });
    axes.push({ name, at: axisEntry.at, values });
  }
  return axes;
}
