// Reading the service's JSON defensively: a field is taken only when it has the expected type,
// never trusted to have it (PICTORY.md §7: error bodies may be JSON, `{message}` or HTML).

export type Json = Record<string, unknown>;

export function asObject(value: unknown): Json | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

export function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

export function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** An object parsed from the text, or null when it is not a JSON object. */
export function safeJson(text: string): Json | null {
  try {
    return asObject(JSON.parse(text));
  } catch {
    return null;
  }
}
