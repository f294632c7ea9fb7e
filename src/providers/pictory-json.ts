// Reading Pictory's JSON answers: typed views of loose values, ids from URLs, Retry-After, and
// whether a listed image echoes a request. Pure.
import type { ImageRequest } from "./provider.js";

/** The last path segment of a result URL without its extension: the service's image id. */
export function imageIdFromUrl(url: string): string | null {
  try {
    const last = new URL(url).pathname.split("/").pop() ?? "";
    const id = last.replace(/\.[A-Za-z0-9]+$/, "");
    return id.length > 0 ? id : null;
  } catch {
    return null;
  }
}

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

/** Retry-After as seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfterMs(header: string | string[] | undefined, now = Date.now()): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function createdBefore(timestamp: string | null, sinceMs: number): boolean {
  const at = Date.parse(timestamp ?? "");
  return !Number.isNaN(at) && at < sinceMs;
}

/** An image of the history echoes the request exactly (PICTORY.md §4.2 lists these fields). */
export function sameRequest(image: Json, request: ImageRequest): boolean {
  return (
    image.prompt === request.prompt &&
    image.model === request.model &&
    image.aspectRatio === request.aspectRatio &&
    (str(image.style) ?? undefined) === request.style &&
    (str(image.referenceImageUrl) ?? undefined) === request.referenceImageUrl
  );
}

/** No image costs more (PICTORY.md §1.3: 14 credits at most); a larger figure is a malformed answer. */
export const MAX_CREDITS_PER_IMAGE = 1_000;

export function safeJson(text: string): Json | null {
  try {
    return asObject(JSON.parse(text));
  } catch {
    return null;
  }
}
