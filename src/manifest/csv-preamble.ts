// What comes before a CSV's data: a spreadsheet's `sep=;` line, comment lines at the top,
// some of them directives (`# provider: pictory`, `# name: spring-launch`), then the header,
// whose delimiter is detected here so that a spreadsheet's export reads as it is, whatever
// its locale.
import { PROVIDER_NAMES, type ProviderName } from "../providers/provider.js";
import type { IssueList } from "./draft.js";
import { enumProblem, idProblem, MAX_ITEMS_LIMIT, unknownKeyMessage } from "./values.js";

/** In order of preference on a tie. `|` separates matrix values, so it is never one. */
export const CSV_DELIMITERS = [",", ";", "\t"] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

export const CSV_DIRECTIVES = ["name", "provider", "maxItems"] as const;

export interface CsvPreamble {
  /** Characters of the text before the header: a byte-order mark, comment and blank lines. */
  headerStart: number;
  /** Lines before the header, added to the parser's line numbers. */
  linesBefore: number;
  delimiter: CsvDelimiter;
  /** From `# name:`, checked; null when not given (or not valid). */
  name: string | null;
  provider: ProviderName | null;
  /** From `# maxItems:`, checked, with its line; null when not given (or not valid). */
  maxItems: { value: number; line: number } | null;
}

interface Line {
  text: string;
  number: number;
}

/** Pure: the preamble of a whole CSV text. */
export function readCsvPreamble(text: string, issues: IssueList): CsvPreamble {
  // The whole text: the header ends within it (at the latest with the text), so never null.
  return scanPreamble(text, true, issues) as CsvPreamble;
}

/** The text is decoded this much at a time, until the header ends within it. */
const PREFIX_BYTES = 64 * 1024;

/** The preamble of a file's UTF-8 bytes and the byte where its header starts; decodes only about as far as the header. */
export function readCsvPreambleOfBytes(bytes: Uint8Array, issues: IssueList): { preamble: CsvPreamble; headerByte: number } {
  for (let size = PREFIX_BYTES; ; size *= 4) {
    const whole = size >= bytes.length;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(size, bytes.length)).toString("utf8");
    const preamble = scanPreamble(text, whole, issues);
    if (preamble !== null) return { preamble, headerByte: Buffer.byteLength(text.slice(0, preamble.headerStart)) };
  }
}

/**
 * `whole`: `text` is the whole file; otherwise a prefix of it, and null means the header does
 * not end within the prefix (call again with more). Issues are added only when the preamble
 * is returned.
 *
 * The rules: lines at the top that start with `#` are comments (blank lines among and after
 * them too), except a `#` followed at once by a delimiter, which is a header with a column
 * named `#`. A comment of the form `# key: value` is a directive. The header is the first
 * other line; its delimiter is the candidate (`,` `;` tab) found most often outside double
 * quotes in it, a tie going to the earlier of `,` `;` tab (so none at all is a comma).
 */
function scanPreamble(text: string, whole: boolean, issues: IssueList): CsvPreamble | null {
  let position = text.startsWith("\uFEFF") ? 1 : 0;
  const comments: Line[] = [];
  let number = 1;
  let sawComment = false;
  // A spreadsheet's delimiter line (`sep=;`), read by Excel when it is the first line.
  const firstEnd = lineEnd(text, position, whole);
  if (firstEnd === null && !whole) return null;
  const sepLine = SEP_LINE.exec(text.slice(position, firstEnd?.at ?? text.length));
  const sep = sepLine === null ? null : (sepLine[1] ?? "");
  if (sep !== null) {
    position = firstEnd?.next ?? text.length;
    number++;
  }
  for (;;) {
    const end = lineEnd(text, position, whole);
    if (end === null && !whole) return null;
    const line = text.slice(position, end?.at ?? text.length);
    const comment = commentText(line);
    const blank = isBlankLine(line);
    if (comment === null && !(blank && sawComment)) break;
    if (comment !== null) {
      comments.push({ text: comment, number });
      sawComment = true;
    }
    if (end === null) {
      position = text.length;
      break;
    }
    position = end.next;
    number++;
  }
  const detected = headerDelimiter(text, position, whole);
  if (detected === null) return null;
  let delimiter = detected;
  if (sep !== null) {
    if ((CSV_DELIMITERS as readonly string[]).includes(sep)) delimiter = sep as CsvDelimiter;
    else issues.add({ field: "sep", line: 1 }, `${JSON.stringify(`sep=${sep}`)} names a delimiter imgbatch does not read (comma, semicolon or tab); delete the line to have it found from the header`);
  }
  return { headerStart: position, linesBefore: number - 1, delimiter, ...readDirectives(comments, issues) };
}

/** Where the line starting at `from` ends and the next begins; null when it runs to the end of the text. */
function lineEnd(text: string, from: number, whole: boolean): { at: number; next: number } | null {
  for (let at = from; at < text.length; at++) {
    const char = text[at];
    if (char === "\n") return { at, next: at + 1 };
    if (char === "\r") {
      // "\r" at the very end of a prefix may be the first half of "\r\n": count it with the next piece.
      if (at + 1 === text.length && !whole) return null;
      return { at, next: text[at + 1] === "\n" ? at + 2 : at + 1 };
    }
  }
  return null;
}

const TRAILING_EMPTY_CELLS = /[\s,;\t]+$/;
/** `sep=;` and the like: the character after `=` (a tab too) is the delimiter. */
const SEP_LINE = /^sep=([^\r\n]?)[ \r]*$/i;

/**
 * A comment's text without its `#`, or null when the line is not a comment. A spreadsheet
 * exports a comment typed in the first cell with the row's empty cells after it
 * (`# provider: pictory;;;`), and in quotes when it holds a delimiter or a quote.
 */
function commentText(line: string): string | null {
  if (line.startsWith("#")) {
    const next = line[1];
    if (next !== undefined && (CSV_DELIMITERS as readonly string[]).includes(next)) return null;
    return line.slice(1).replace(TRAILING_EMPTY_CELLS, "");
  }
  if (!line.startsWith('"#')) return null;
  let cell = "";
  for (let at = 1; at < line.length; at++) {
    const char = line[at];
    if (char !== '"') {
      cell += char;
    } else if (line[at + 1] === '"') {
      cell += '"';
      at++;
    } else {
      // The quoted cell ends here; anything but empty cells after it makes the line a header.
      return line.slice(at + 1).replace(TRAILING_EMPTY_CELLS, "") === "" ? cell.slice(1).trimEnd() : null;
    }
  }
  return null;
}

function isBlankLine(line: string): boolean {
  return line.replace(TRAILING_EMPTY_CELLS, "") === "";
}

/** The header's delimiter, or null when the header does not end within a prefix. */
function headerDelimiter(text: string, from: number, whole: boolean): CsvDelimiter | null {
  const counts = new Map<CsvDelimiter, number>(CSV_DELIMITERS.map((delimiter) => [delimiter, 0]));
  let quoted = false;
  let at = from;
  for (; at < text.length; at++) {
    const char = text[at] ?? "";
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === "\n" || char === "\r")) break;
    else if (!quoted && counts.has(char as CsvDelimiter)) counts.set(char as CsvDelimiter, (counts.get(char as CsvDelimiter) ?? 0) + 1);
  }
  if (at === text.length && !whole) return null;
  let best: CsvDelimiter = ",";
  for (const delimiter of CSV_DELIMITERS) {
    if ((counts.get(delimiter) ?? 0) > (counts.get(best) ?? 0)) best = delimiter;
  }
  return best;
}

const DIRECTIVE = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*:(.*)$/;

/** The same rules as YAML's `name:`, `provider:` and `maxItems:`; each issue names the line and the key. */
function readDirectives(comments: Line[], issues: IssueList): Pick<CsvPreamble, "name" | "provider" | "maxItems"> {
  const found: Pick<CsvPreamble, "name" | "provider" | "maxItems"> = { name: null, provider: null, maxItems: null };
  const seen = new Map<string, number>();
  for (const comment of comments) {
    const match = DIRECTIVE.exec(comment.text);
    if (match === null) continue;
    const key = match[1] ?? "";
    const value = (match[2] ?? "").trim();
    const at = { field: key, line: comment.number };
    if (!(CSV_DIRECTIVES as readonly string[]).includes(key)) {
      issues.add(at, `${unknownKeyMessage(key, CSV_DIRECTIVES, 'the "# key: value" lines above the header')}; a plain comment must not start with a word and a colon`);
      continue;
    }
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      issues.add(at, `is already set on line ${earlier}; keep one`);
      continue;
    }
    seen.set(key, comment.number);
    if (key === "maxItems") {
      const count = /^\d+$/.test(value) ? Number(value) : NaN;
      if (Number.isInteger(count) && count >= 1 && count <= MAX_ITEMS_LIMIT) found.maxItems = { value: count, line: comment.number };
      else issues.add(at, `${JSON.stringify(value)} is not a whole number from 1 to ${MAX_ITEMS_LIMIT}`);
      continue;
    }
    const problem = key === "name" ? idProblem(value) : enumProblem(value, PROVIDER_NAMES, "provider");
    if (problem !== null) issues.add(at, problem);
    else if (key === "name") found.name = value;
    else found.provider = value as ProviderName;
  }
  return found;
}
