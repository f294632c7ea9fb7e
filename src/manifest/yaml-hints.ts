// The yaml package's syntax errors, worded for the people who write manifests: most come
// from a text value that YAML reads as something else (`prompt: {{product}} on a desk`, a
// `: ` inside a value, a quote inside quotes), from a bracket never closed (reported where
// the file ends, so it is moved to the line of the bracket), or from a key indented so far
// that it continues the value above it.
import type { LineCounter, YAMLError } from "yaml";

export interface YamlProblem {
  line: number;
  message: string;
}

/** `key: value` on a line, a list's dash before it allowed. */
const KEY_VALUE_LINE = /^(\s*(?:-\s+)?)([A-Za-z_][\w-]*):[ \t]+(\S.*?)\s*$/;
/** A plain value YAML reads as something else: a flow mapping or list, an alias, a tag, a block scalar, a reserved character, a dash. */
const SPECIAL_START = /^[{[\]}&*!|>%@`,?-]/;
/** Keys whose value is a mapping or a list: a bracket there is meant. */
const COLLECTION_KEYS = new Set(["rows", "defaults", "vars", "matrix", "renditions", "thumbnail"]);
const UNCLOSED = /^Flow (?:sequence|map) in block collection must be sufficiently indented and end with a ([\]}])/;
const OPENING: Record<string, string> = { "]": "[", "}": "{" };

export function syntaxProblems(errors: readonly YAMLError[], text: string, lineCounter: LineCounter): YamlProblem[] {
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  const textOf = (line: number) => lineText(text, lineCounter.lineStarts[line - 1]);
  const hinted = new Set<number>();
  return errors.map((error) => {
    let line = lineOf(error.pos[0]);
    let hint: string | null = null;
    const unclosed = UNCLOSED.exec(error.message);
    if (unclosed !== null) {
      const closing = unclosed[1] ?? "]";
      const opening = openingBefore(text, error.pos[0], OPENING[closing] ?? "[", closing);
      if (opening !== null) {
        line = lineOf(opening);
        hint = `the "${OPENING[closing]}" on this line has no "${closing}"`;
      }
    } else if (!hinted.has(line)) {
      hint = quotingHint(textOf(line)) ?? indentHint(textOf(line), textOf(line + 1), line + 1);
    }
    if (hint !== null) hinted.add(line);
    return { line, message: `YAML syntax: ${error.message}${hint === null ? "" : `; ${hint}`}` };
  });
}

function lineText(text: string, start: number | undefined): string {
  if (start === undefined) return "";
  const end = text.indexOf("\n", start);
  return text.slice(start, end === -1 ? text.length : end).replace(/\r$/, "");
}

/**
 * What to do about a syntax error on a line like `prompt: {{product}} on a desk`: quotes
 * make it text. Null when the line does not look like that.
 */
function quotingHint(line: string): string | null {
  const match = KEY_VALUE_LINE.exec(line);
  if (match === null) return null;
  const [, , key = "", value = ""] = match;
  if (COLLECTION_KEYS.has(key)) return null;
  if (/^["']/.test(value)) return `a quote inside a quoted value ends it early: inside "…" write \\", inside '…' write ''`;
  if (!SPECIAL_START.test(value) && !value.includes(": ")) return null;
  const what = SPECIAL_START.test(value) ? `a value that starts with ${value[0]}` : 'a value that holds ": "';
  return `${what} must be written in quotes, as in ${key}: ${JSON.stringify(value)}`;
}

/** `prompt: …` followed by a `style: …` indented further: YAML reads the second line as more of the value. */
function indentHint(line: string, next: string, nextNumber: number): string | null {
  const here = KEY_VALUE_LINE.exec(line);
  const below = KEY_VALUE_LINE.exec(next);
  if (here === null || below === null) return null;
  const keyColumn = (here[1] ?? "").length;
  const nextColumn = (below[1] ?? "").length;
  if (nextColumn <= keyColumn) return null;
  return `line ${nextNumber} is indented further than "${here[2]}", so YAML reads it as more of this value: start "${below[2]}" in the same column as "${here[2]}"`;
}

/** Where the bracket a "must end with a ]" error is about was opened: the nearest unclosed one before `offset` (quotes not followed). */
function openingBefore(text: string, offset: number, opening: string, closing: string): number | null {
  let depth = 0;
  for (let at = Math.min(offset, text.length) - 1; at >= 0; at--) {
    const char = text[at];
    if (char === closing) depth++;
    else if (char === opening) {
      if (depth === 0) return at;
      depth--;
    }
  }
  return null;
}
