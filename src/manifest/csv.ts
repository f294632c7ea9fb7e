// CSV manifest → DraftManifest. The header names the fields; every other column is a
// variable. A `a|b` cell in a request-field or variable column is a matrix axis, so one
// spreadsheet row can ask for a style × ratio grid just as a YAML row can.
import { Readable } from "node:stream";
import { parse as parseStream } from "csv-parse";
import { CsvError, parse as parseSync } from "csv-parse/sync";
import type { CsvDelimiter, CsvPreamble } from "./csv-preamble.js";
import { type DraftHeader, type DraftRow, type FieldValues, isRequestField, IssueList, type Located, type MatrixAxis, ROW_FIELDS, type Where } from "./draft.js";
import { defaultThumbnail } from "./outputs.js";
import { defaultQcSettings } from "./qc.js";
import { characterProblem, suggestion, variantsProblem, withoutForbiddenCharacters } from "./values.js";
import type { SourceNames } from "./yaml.js";

const KNOWN_COLUMNS: readonly string[] = ROW_FIELDS;

interface Column {
  index: number;
  name: string;
}

/** A manifest-wide part of a CSV manifest: rows, the name and provider of its directives, the defaults of everything else. */
export function csvHeader(names: SourceNames, preamble: CsvPreamble): DraftHeader {
  const maxItems = preamble.maxItems === null ? null : { value: preamble.maxItems.value, at: { field: "maxItems", line: preamble.maxItems.line } };
  return { name: preamble.name ?? names.defaultName, provider: preamble.provider, defaults: { fields: {}, variants: null, webhook: null }, vars: new Map(), renditions: [], thumbnail: defaultThumbnail(), qc: defaultQcSettings(), maxItems };
}

/** A header issue, or a nameless column whose data (if any, anywhere below) makes one. */
type HeaderIssue = { at: Where; message: string } | { namelessColumn: number };

/**
 * CSV records → DraftRows, one record at a time (the first is the header). Issues are added
 * to `issues` by finish(), in the order a whole-file pass finds them: the header's (which
 * depend on every row: a nameless column is a mistake only where it has data), then the rows'.
 */
export class CsvManifestReader {
  private header: { cells: string[]; line: number; columns: Column[] | null } | null = null;
  /** The file is empty: nothing more is read. */
  private empty = false;
  private readonly headerIssues: HeaderIssue[] = [];
  private readonly namelessWithData = new Set<number>();
  private readonly rowIssues: IssueList;
  private previousEnd = 0;
  private dataIndex = 0;
  private rows = 0;

  /** `linesBefore`: the comment lines above the header, which the parser does not see. */
  constructor(
    private readonly names: SourceNames,
    private readonly issues: IssueList,
    private readonly linesBefore = 0,
  ) {
    this.rowIssues = new IssueList(issues.file);
  }

  /** The row a record makes, or null (the header, a blank or malformed record, an unusable header). */
  read(record: string[], parserLines: number): DraftRow | null {
    if (this.empty) return null;
    const lines = parserLines + this.linesBefore;
    if (this.header === null) {
      if (isBlank(record)) {
        this.empty = true;
        return null;
      }
      this.header = { cells: record, line: lines, columns: this.readHeader(record, lines) };
      this.previousEnd = lines;
      return null;
    }
    const header = this.header;
    const index = this.dataIndex++;
    for (const column of this.headerIssues) {
      if ("namelessColumn" in column && (record[column.namelessColumn] ?? "").trim() !== "") this.namelessWithData.add(column.namelessColumn);
    }
    const at: Where = { field: "", row: index + 1, line: this.previousEnd + 1 };
    this.previousEnd = lines;
    if (header.columns === null || isBlank(record)) return null;
    const extra = record.slice(header.cells.length);
    if (record.length < header.cells.length || extra.some((cell) => cell.trim() !== "")) {
      this.rowIssues.add(at, `has ${record.length} cells but the header has ${header.cells.length} columns`);
      return null;
    }
    this.rows++;
    return readRow(record, index, at, header.columns, this.names.base, this.rowIssues);
  }

  /** Adds the issues found; returns false when the file gave no usable header (nothing else counts). */
  finish(): boolean {
    if (this.header === null) {
      const expected = "expected a header row with at least a prompt column";
      if (this.linesBefore === 0) this.issues.add({ field: "", line: 1 }, `the file is empty; ${expected}`);
      else this.issues.add({ field: "", line: this.linesBefore + 1 }, `has only comment lines; ${expected} below them`);
      return false;
    }
    const { line, columns } = this.header;
    for (const issue of this.headerIssues) {
      if (!("namelessColumn" in issue)) this.issues.add(issue.at, issue.message);
      else if (this.namelessWithData.has(issue.namelessColumn)) this.issues.add({ field: `column ${issue.namelessColumn + 1}`, line }, "has values but no name in the header");
    }
    if (columns === null) return false;
    this.issues.items.push(...this.rowIssues.items);
    if (this.rows === 0 && this.issues.items.length === 0) this.issues.add({ field: "", line }, "has no data rows below the header");
    return true;
  }

  /** Known and variable columns; notes nameless, repeated and misspelt columns. */
  private readHeader(cells: string[], line: number): Column[] | null {
    const columns: Column[] = [];
    const seen = new Map<string, number>();
    const misspelt = new Set<string>();
    const add = (at: Where, message: string) => this.headerIssues.push({ at, message });
    cells.forEach((cell, index) => {
      const name = cell.trim();
      const at: Where = { field: name, line };
      const badCharacter = characterProblem(cell);
      if (badCharacter !== null) {
        // Named by its position: the name itself would print the character.
        add({ field: `column ${index + 1}`, line }, `the column name ${JSON.stringify(cell)} ${badCharacter}`);
        const cleaned = withoutForbiddenCharacters(cell).trim();
        if (KNOWN_COLUMNS.includes(cleaned)) misspelt.add(cleaned); // not also "no prompt column"
        return;
      }
      if (name === "") {
        // Spreadsheets export trailing empty columns; only a nameless column with data is a mistake.
        this.headerIssues.push({ namelessColumn: index });
        return;
      }
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        add(at, `column ${JSON.stringify(name)} appears twice in the header (columns ${earlier + 1} and ${index + 1})`);
        return;
      }
      seen.set(name, index);
      const close = KNOWN_COLUMNS.includes(name) ? undefined : suggestion(name, KNOWN_COLUMNS);
      if (close !== undefined) {
        misspelt.add(close);
        add(at, `column ${JSON.stringify(name)} looks like ${JSON.stringify(close)}; columns are case-sensitive (known: ${KNOWN_COLUMNS.join(", ")}; any other column is a variable)`);
        return;
      }
      columns.push({ index, name });
    });
    if (!seen.has("prompt")) {
      if (misspelt.has("prompt")) return null;
      add({ field: "prompt", line }, `the header has no prompt column (known columns: ${KNOWN_COLUMNS.join(", ")}; any other column is a variable)${headerHint(cells)}`);
      return null;
    }
    return columns;
  }
}

/** Why a header without a prompt column may not be a header at all. */
function headerHint(cells: string[]): string {
  const first = (cells[0] ?? "").trim();
  if (cells.length === 1 && /^(name|provider|defaults|vars|rows|renditions|thumbnail|qc)\s*:/.test(first)) return "; the file looks like a YAML manifest: name it .yaml";
  return "";
}

function csvOptions(delimiter: CsvDelimiter) {
  return { info: true, bom: true, delimiter, relax_column_count: true, skip_empty_lines: false } as const;
}

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

function syntaxIssue(error: unknown, issues: IssueList, linesBefore: number): void {
  if (!(error instanceof CsvError)) throw error;
  const line = (error as CsvError & { lines?: number }).lines;
  issues.add(line === undefined ? { field: "" } : { field: "", line: line + linesBefore }, `CSV syntax: ${error.message}`);
}

/**
 * Pure: reads the rows of a CSV text (its preamble read: csv-preamble.ts) into `onRow`.
 * Returns false when nothing but the issues of the file itself count (a syntax error, no
 * usable header): then no row was handed on that should be reported.
 */
export function readCsvRows(text: string, preamble: CsvPreamble, names: SourceNames, issues: IssueList, onRow: (row: DraftRow) => void): boolean {
  let records: CsvRecord[];
  try {
    records = parseSync(text.slice(preamble.headerStart), csvOptions(preamble.delimiter)) as unknown as CsvRecord[];
  } catch (error) {
    syntaxIssue(error, issues, preamble.linesBefore);
    return false;
  }
  const reader = new CsvManifestReader(names, issues, preamble.linesBefore);
  for (const { record, info } of records) {
    const row = reader.read(record, info.lines);
    if (row !== null) onRow(row);
  }
  return reader.finish();
}

/** Text is fed to the parser in pieces this big, so that records come out a few at a time. */
const FEED_BYTES = 16 * 1024;

/**
 * Like readCsvRows, from the UTF-8 bytes from the header on through csv-parse's stream: one
 * record at a time, so a 20,000-row file is never 20,000 records (and rows) in memory. A
 * syntax error found after some rows were handed on returns false with only that issue, as
 * the whole-text parse reports it.
 */
export async function streamCsvRows(bytes: Uint8Array, preamble: CsvPreamble, names: SourceNames, issues: IssueList, onRow: (row: DraftRow) => void): Promise<boolean> {
  const reader = new CsvManifestReader(names, issues, preamble.linesBefore);
  const parser = Readable.from(pieces(bytes), { objectMode: false }).pipe(parseStream(csvOptions(preamble.delimiter)));
  try {
    for await (const { record, info } of parser as AsyncIterable<CsvRecord>) {
      const row = reader.read(record, info.lines);
      if (row !== null) onRow(row);
    }
  } catch (error) {
    // Rows' issues wait in the reader until finish(), so the syntax error is the only one.
    syntaxIssue(error, issues, preamble.linesBefore);
    return false;
  }
  return reader.finish();
}

function* pieces(bytes: Uint8Array): Generator<Buffer> {
  for (let start = 0; start < bytes.length; start += FEED_BYTES) yield Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.min(FEED_BYTES, bytes.length - start));
}

function isBlank(record: string[]): boolean {
  return record.every((cell) => cell.trim() === "");
}

function readRow(record: string[], index: number, rowAt: Where, columns: Column[], base: string, issues: IssueList): DraftRow {
  const row: DraftRow = {
    index,
    at: rowAt,
    pathPrefix: "",
    source: `${base} row ${rowAt.row}`,
    id: null,
    prompt: null,
    fields: {} as FieldValues,
    variants: null,
    webhook: null as Located<string> | null,
    matrix: [] as MatrixAxis[],
    vars: new Map<string, Located<string>>(),
  };
  for (const column of columns) {
    const cell = record[column.index] ?? "";
    const at: Where = { ...rowAt, field: column.name };
    // Before trimming, which would hide a vertical tab, a form feed or a byte-order mark at either end.
    const badCharacter = characterProblem(cell);
    if (badCharacter !== null) {
      issues.add(at, badCharacter);
      // A variable is kept, so that its placeholder is not also reported as having no value.
      if (!(KNOWN_COLUMNS as readonly string[]).includes(column.name)) row.vars.set(column.name, { value: cell, at });
      continue;
    }
    const value = cell.trim();
    if (column.name === "prompt") {
      if (value === "") issues.add(at, "is required");
      else row.prompt = { value, at };
      continue;
    }
    if (value === "") continue;
    if (column.name === "id") {
      row.id = { value, at };
    } else if (column.name === "variants") {
      const count = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      const problem = Number.isNaN(count) ? `${JSON.stringify(value)} is not a whole number from 1 to 100` : variantsProblem(count);
      if (problem !== null) issues.add(at, problem);
      else row.variants = { value: count, at };
    } else if (column.name === "webhook") {
      // A URL may hold a "|": a webhook is never a matrix axis.
      row.webhook = { value, at };
    } else if (value.includes("|")) {
      const parts = value.split("|").map((part) => part.trim());
      if (parts.some((part) => part === "")) {
        issues.add(at, `${JSON.stringify(value)} has an empty matrix value; write values separated by "|" (a|b|c)`);
        continue;
      }
      row.matrix.push({ name: column.name, at, values: parts.map((part) => ({ value: part, at })) });
    } else if (isRequestField(column.name)) {
      row.fields[column.name] = { value, at };
    } else {
      row.vars.set(column.name, { value, at });
    }
  }
  return row;
}
