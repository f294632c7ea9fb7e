// The one redaction of secrets. Every text that may carry one (a log line, an error body the
// service wrote, a message about to be stored or reported) passes redactSecrets. It masks:
//   - each registered secret wherever it appears (the configured Pictory key, registered
//     where the environment is read; later, database passwords);
//   - a registered key's part after `pictai_` on its own, as the service may echo only that;
//   - anything shaped like a Pictory key (`pictai_…`), registered or not.
// Imports nothing, so the store, the reports and the logger can all depend on it.

export const REDACTED = "[redacted]";

const KEY_PREFIX = "pictai_";
const KEY_SHAPE = /pictai_[A-Za-z0-9_-]+/g;
const MASKED_KEY = `${KEY_PREFIX}${REDACTED}`;

/**
 * Shorter values are not registered: masking every "abc" in every message would make the
 * messages unreadable, and a secret that short protects nothing anyway.
 */
export const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();
/** One alternation of every registered form, longest first (a key before its own suffix). */
let registeredPattern: RegExp | null = null;

/**
 * Masks this value from now on, in this process. A `pictai_` key also registers its part
 * after the prefix; any value also its percent-encoded form (as it reads inside a URL).
 * Registering the same value twice is harmless.
 */
export function registerSecret(value: string | null | undefined): void {
  if (!value) return;
  const forms = [value, encodeURIComponent(value)];
  if (value.startsWith(KEY_PREFIX)) forms.push(value.slice(KEY_PREFIX.length));
  let added = false;
  for (const form of forms) {
    // A form inside the mask itself ("redacted") would garble the mask on a second pass.
    if (form.length < MIN_SECRET_LENGTH || secrets.has(form) || MASKED_KEY.includes(form)) continue;
    secrets.add(form);
    added = true;
  }
  if (!added) return;
  const alternatives = [...secrets].sort((a, b) => b.length - a.length).map(escapeRegExp);
  registeredPattern = new RegExp(alternatives.join("|"), "g");
}

/** Forgets every registered secret (tests only: a process registers once and keeps them). */
export function forgetSecrets(): void {
  secrets.clear();
  registeredPattern = null;
}

/** The text with every secret masked; null stays null, so nullable columns pass through. */
export function redactSecrets(text: string): string;
export function redactSecrets(text: string | null): string | null;
export function redactSecrets(text: string | null): string | null {
  if (text === null) return null;
  const masked = registeredPattern === null ? text : text.replace(registeredPattern, (found) => (found.startsWith(KEY_PREFIX) ? MASKED_KEY : REDACTED));
  return masked.replace(KEY_SHAPE, MASKED_KEY);
}

/**
 * A JSON-shaped value with every string masked, object keys included. Strings are masked
 * one by one rather than the serialised text, so a secret can neither straddle JSON syntax
 * nor hide behind JSON escaping.
 */
export function redactSecretsIn(value: unknown): unknown {
  if (typeof value === "string") return redactSecrets(value);
  if (Array.isArray(value)) return value.map(redactSecretsIn);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redactSecrets(k), redactSecretsIn(v)]));
  }
  return value;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
