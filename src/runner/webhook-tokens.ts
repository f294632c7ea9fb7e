// The per-item webhook addresses of a run that listens: `<public URL>/<item key>/<token>`, the
// token an HMAC-SHA256 of the key under a secret drawn afresh for each run (never stored or
// logged: a resumed run has a new one, and the jobs of an earlier run are polled). Only whoever
// was handed an item's address (the service) can name that item; checked in constant time.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Item keys (manifest/values.ts: ids and slugs joined by `--`, at most 200 characters). */
const KEY_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class WebhookTokens {
  constructor(private readonly secret: Buffer = randomBytes(32)) {}

  tokenFor(key: string): string {
    return createHmac("sha256", this.secret).update(`imgbatch webhook\n${key}`).digest("base64url");
  }

  verify(key: string, token: string): boolean {
    if (!KEY_SHAPE.test(key) || !TOKEN_SHAPE.test(token)) return false;
    return timingSafeEqual(Buffer.from(this.tokenFor(key)), Buffer.from(token));
  }
}

/** The address one item's submit carries. Keys are URL-safe as they are. */
export function itemWebhookUrl(publicUrl: string, key: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/${key}/${token}`;
}

/**
 * The key and token of a request's path: its last two segments, so a proxy in front may keep or
 * strip the public URL's own path. Null for anything else (a query string is ignored).
 */
export function keyAndToken(requestPath: string): { key: string; token: string } | null {
  const path = requestPath.split("?")[0] ?? "";
  const segments = path.split("/").filter((s) => s !== "");
  if (segments.length < 2) return null;
  const key = segments[segments.length - 2]!;
  const token = segments[segments.length - 1]!;
  return KEY_SHAPE.test(key) && TOKEN_SHAPE.test(token) ? { key, token } : null;
}
