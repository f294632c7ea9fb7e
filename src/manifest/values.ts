// Checks of single values and the wording of their messages, shared by YAML and CSV.
import { ASPECT_RATIOS, IMAGE_MODELS, isHttpUrl, STYLES } from "../providers/catalog.js";
import type { RequestField } from "./draft.js";

/** Ids, manifest and rendition names: filename-safe, cannot climb out of a folder. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const ID_RULE = "must start with a letter or digit and use only letters, digits, '.', '_' and '-' (at most 100 characters)";
export const MAX_KEY_LENGTH = 200;
export const VARIANTS_MIN = 1;
export const VARIANTS_MAX = 100;
/**
 * The most items `maxItems:` or `--max-items` may allow: the items of a manifest are in memory
 * while it is read and synced (about 1 KB each), so past this a manifest is split instead.
 */
export const MAX_ITEMS_LIMIT = 1_000_000;

/**
 * Characters no text of a manifest may hold: C0 controls but tab, line feed and carriage
 * return (a YAML block scalar or a quoted CSV cell may hold a line break: a prompt can be
 * several lines), DEL, C1 controls, a byte-order mark inside text (two files joined), the
 * non-characters U+FFFE and U+FFFF, and half of a UTF-16 surrogate pair (only a YAML escape
 * such as "\uD800" can write one). NUL passed validation and then failed every render.
 */
const FORBIDDEN_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFEFF\uFFFE\uFFFF]/;
/** Matched on UTF-16 code units (no `u` flag), so that a lone surrogate is seen. */
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a text's characters, naming the first bad one and where it is; null when nothing is. */
export function characterProblem(text: string): string | null {
  // The usual text has none: one scan without look-arounds (the look-behind doubled the cost of reading a YAML row).
  const control = FORBIDDEN_CHARACTER.exec(text);
  const surrogate = SURROGATE.test(text) ? LONE_SURROGATE.exec(text) : null;
  const match = control !== null && (surrogate === null || control.index < surrogate.index) ? control : surrogate;
  if (match === null) return null;
  const code = match[0].charCodeAt(0);
  const what =
    code === 0
      ? "a NUL character"
      : code >= 0xd800 && code <= 0xdfff
        ? "half of a UTF-16 surrogate pair"
        : code === 0xfeff
          ? "a byte-order mark"
          : code >= 0xfffe
            ? "a non-character"
            : "a control character";
  const position = [...text.slice(0, match.index)].length + 1;
  return `contains ${what} (U+${code.toString(16).toUpperCase().padStart(4, "0")}) at character ${position}; remove it (tab and line breaks are the only control characters allowed)`;
}

/** The text without the characters characterProblem refuses (for a suggestion). */
export function withoutForbiddenCharacters(text: string): string {
  return text.replace(new RegExp(FORBIDDEN_CHARACTER.source, "g"), "").replace(new RegExp(LONE_SURROGATE.source, "g"), "");
}

export function describeKnown(known: readonly string[]): string {
  return known.join(", ");
}

/** Loose form for "did you mean": case, `_`, `-` and spaces ignored. */
function loose(text: string): string {
  return text.toLowerCase().replace(/[\s_-]+/g, "");
}

export function suggestion(value: string, known: readonly string[]): string | undefined {
  const lower = value.toLowerCase();
  return known.find((candidate) => candidate.toLowerCase() === lower) ?? known.find((candidate) => loose(candidate) === loose(value));
}

/** Exact match only; the message offers the right spelling when one is close. */
export function enumProblem(value: string, known: readonly string[], what: string): string | null {
  if (known.includes(value)) return null;
  const close = suggestion(value, known);
  const hint = close === undefined ? "" : `; did you mean ${JSON.stringify(close)}?`;
  return `${JSON.stringify(value)} is not a known ${what}${hint} (known: ${describeKnown(known)})`;
}

export function unknownKeyMessage(key: string, known: readonly string[], what: string): string {
  const close = suggestion(key, known);
  const hint = close === undefined ? "" : `; did you mean ${JSON.stringify(close)}?`;
  return `${JSON.stringify(key)} is not a known key of ${what}${hint} (known: ${describeKnown(known)})`;
}

export function idProblem(id: string): string | null {
  return ID_PATTERN.test(id) ? null : `${JSON.stringify(id)} is not a valid id: it ${ID_RULE}`;
}

/** The rule for a request field's value on its own (whether the model supports a ratio is checked per item). */
export function requestValueProblem(field: RequestField, value: string): string | null {
  switch (field) {
    case "model":
      return enumProblem(value, IMAGE_MODELS, "model");
    case "aspectRatio":
      return enumProblem(value, ASPECT_RATIOS, "aspect ratio");
    case "style":
      return enumProblem(value, STYLES, "style");
    case "referenceImageUrl":
      return isHttpUrl(value) ? null : `${JSON.stringify(value)} is not an absolute http(s) URL${value.includes("://") ? "" : "; a file on this computer is given as referenceImage"}`;
    case "referenceImage":
      return looksLikeUrl(value) ? `${JSON.stringify(value)} is a URL, not a file: give it as referenceImageUrl (referenceImage is a path relative to the manifest)` : null;
  }
}

/** `https://…`, `ftp://…`: a URL given where a file path belongs. */
export function looksLikeUrl(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

/** A webhook is an address the service calls, checked like a reference image's. */
export function webhookProblem(value: string): string | null {
  return isHttpUrl(value) ? null : `${JSON.stringify(value)} is not an absolute http(s) URL`;
}

export function variantsProblem(value: number): string | null {
  return Number.isInteger(value) && value >= VARIANTS_MIN && value <= VARIANTS_MAX
    ? null
    : `${value} is out of range: must be a whole number from ${VARIANTS_MIN} to ${VARIANTS_MAX}`;
}
