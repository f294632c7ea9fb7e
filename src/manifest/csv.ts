// CSV manifest → DraftManifest. The header names the fields; every other column is a
// variable. A `a|b` cell in a request-field or variable column is a matrix axis, so one
// spreadsheet row can ask for a style × ratio grid just as a YAML row can.
import { CsvError, parse } from "csv-parse/sync";
import { type DraftManifest, type DraftRow, type FieldValues, isRequestField, type IssueList, type Located, type MatrixAxis, ROW_FIELDS, type Where } from "./draft.js";
import { defaultThumbnail } from "./outputs.js";
import { suggestion, variantsProblem } from "./values.js";
import type { SourceNames } from "./yaml.js";

const KNOWN_COLUMNS: readonly string[] = ROW_FIELDS;

interface Column {
  index: number;
  name: string;
}

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

export function readCsvManifest(text: string, names: SourceNames, issues: IssueList): DraftManifest | null {
  let records: CsvRecord[];
  try {
    records = parse(text, { info: true, bom: true, relax_column_count: true, skip_empty_lines: false }) as unknown as CsvRecord[];
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = (error as CsvError & { lines?: number }).lines;
    issues.add(line === undefined ? { field: "" } : { field: "", line }, `CSV syntax: ${error.message}`);
    return null;
  }
  const [header, ...data] = records;
  if (header === undefined || isBlank(header.record)) {
    issues.add({ field: "", line: 1 }, "the file is empty; expected a header row with at least a prompt column");
    return null;
  }
  const headerLine = header.info.lines;
  const columns = readHeader(header.record, data, headerLine, issues);
  if (columns === null) return null;

  const rows: DraftRow[] = [];
  let previousEnd = headerLine;
  data.forEach(({ record, info }, index) => {
    const at: Where = { field: "", row: index + 1, line: previousEnd + 1 };
    previousEnd = info.lines;
    if (isBlank(record)) return;
    const extra = record.slice(header.record.length);
    if (record.length < header.record.length || extra.some((cell) => cell.trim() !== "")) {
      issues.add(at, `has ${record.length} cells but the header has ${header.record.length} columns`);
      return;
    }
    rows.push(readRow(record, index, at, columns, names.base, issues));
  });
  if (rows.length === 0 && issues.items.length === 0) issues.add({ field: "", line: headerLine }, "has no data rows below the header");

  return {
    name: names.defaultName,
    provider: null,
    defaults: { fields: {}, variants: null },
    vars: new Map(),
    rows,
    renditions: [],
    thumbnail: defaultThumbnail(),
  };
}

function isBlank(record: string[]): boolean {
  return record.every((cell) => cell.trim() === "");
}

/** Known and variable columns; reports nameless, repeated and misspelt columns. */
function readHeader(cells: string[], data: CsvRecord[], line: number, issues: IssueList): Column[] | null {
  const columns: Column[] = [];
  const seen = new Map<string, number>();
  const misspelt = new Set<string>();
  cells.forEach((cell, index) => {
    const name = cell.trim();
    const at: Where = { field: name, line };
    if (name === "") {
      // Spreadsheets export trailing empty columns; only a nameless column with data is a mistake.
      if (data.some(({ record }) => (record[index] ?? "").trim() !== "")) {
        issues.add({ field: `column ${index + 1}`, line }, "has values but no name in the header");
      }
      return;
    }
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      issues.add(at, `column ${JSON.stringify(name)} appears twice in the header (columns ${earlier + 1} and ${index + 1})`);
      return;
    }
    seen.set(name, index);
    const close = KNOWN_COLUMNS.includes(name) ? undefined : suggestion(name, KNOWN_COLUMNS);
    if (close !== undefined) {
      misspelt.add(close);
      issues.add(at, `column ${JSON.stringify(name)} looks like ${JSON.stringify(close)}; columns are case-sensitive (known: ${KNOWN_COLUMNS.join(", ")}; any other column is a variable)`);
      return;
    }
    columns.push({ index, name });
  });
  if (!seen.has("prompt")) {
    if (misspelt.has("prompt")) return null;
    issues.add({ field: "prompt", line }, `the header has no prompt column (known columns: ${KNOWN_COLUMNS.join(", ")}; any other column is a variable)`);
    return null;
  }
  return columns;
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
    matrix: [] as MatrixAxis[],
    vars: new Map<string, Located<string>>(),
  };
  for (const column of columns) {
    const value = (record[column.index] ?? "").trim();
    const at: Where = { ...rowAt, field: column.name };
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
