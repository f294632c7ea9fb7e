// Naming and hashing: the pieces that make keys and request hashes stable. Any change
// here renames items or supersedes done work in every existing database, so the outputs
// are pinned by tests.
import { createHash } from "node:crypto";
import type { ImageRequest } from "../providers/provider.js";

/** `9:16` → `9x16`, `seedream3.0` → `seedream3-0`, `Futuristic City!` → `futuristic-city`. */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replaceAll(":", "x")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** JSON with object keys sorted and undefined members dropped, so equal data hashes equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((entry) => (entry === undefined ? null : sortKeys(entry)));
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined) sorted[key] = sortKeys(member);
    }
    return sorted;
  }
  return value;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Identifies what an item asks of its provider; a change supersedes the stored item. */
export function requestHash(request: ImageRequest, provider: string): string {
  return sha256Hex(canonicalJson({ provider, request }));
}

const DERIVED_ID_WORDS = 5;
const DERIVED_ID_SLUG_MAX = 40;

/**
 * The id of a row that has none: its first words plus a hash of the row's own content.
 * The hash never includes the row's position, so reordering a manifest keeps every key.
 */
export function deriveRowId(promptTemplate: string, canonicalContent: string): string {
  const words = promptTemplate.trim().split(/\s+/).slice(0, DERIVED_ID_WORDS).join(" ");
  let slug = slugify(words);
  if (slug.length > DERIVED_ID_SLUG_MAX) {
    slug = slug.slice(0, DERIVED_ID_SLUG_MAX);
    const lastDash = slug.lastIndexOf("-");
    if (lastDash >= DERIVED_ID_SLUG_MAX / 2) slug = slug.slice(0, lastDash);
    slug = slug.replace(/-+$/, "");
  }
  const hash = sha256Hex(canonicalContent).slice(0, 8);
  return `${slug === "" ? "row" : slug}-${hash}`;
}
