// Checks of single values and the wording of their messages, shared by YAML and CSV.
import { ASPECT_RATIOS, IMAGE_MODELS, isHttpUrl, STYLES } from "../providers/catalog.js";
import type { RequestField } from "./draft.js";

/** Ids, manifest and rendition names: filename-safe, cannot climb out of a folder. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const ID_RULE = "must start with a letter or digit and use only letters, digits, '.', '_' and '-' (at most 100 characters)";
export const MAX_KEY_LENGTH = 200;
export const VARIANTS_MIN = 1;
export const VARIANTS_MAX = 100;

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
      return isHttpUrl(value) ? null : `${JSON.stringify(value)} is not an absolute http(s) URL`;
  }
}

export function variantsProblem(value: number): string | null {
  return Number.isInteger(value) && value >= VARIANTS_MIN && value <= VARIANTS_MAX
    ? null
    : `${value} is out of range: must be a whole number from ${VARIANTS_MIN} to ${VARIANTS_MAX}`;
}
