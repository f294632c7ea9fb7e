// Parsing of option values given on the command line. Pure; errors name the option.
import { ExitError, EXIT } from "../errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `10s`, `2m`, `1h`, `1.5s`; a bare number is seconds. */
export function parseDuration(value: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw usage(`${option}: "${value}" is not a duration (examples: 250ms, 10s, 2m, 1h)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "s"]!);
}

export function parsePositiveInt(value: string, option: string, max = 1_000_000): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > max) throw usage(`${option}: "${value}" must be a whole number from 1 to ${max}`);
  return Number(value);
}

export function parseNonNegativeNumber(value: string, option: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw usage(`${option}: "${value}" must be a number ≥ 0`);
  return n;
}

/**
 * `HH:MM` (the next such local time, today or tomorrow) or an ISO date-time.
 * Returns ms since the epoch.
 */
export function parseDeadline(value: string, option: string, now: Date = new Date()): number {
  const hhmm = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(value.trim());
  if (hhmm) {
    const at = new Date(now);
    at.setHours(Number(hhmm[1]), Number(hhmm[2]), 0, 0);
    if (at.getTime() <= now.getTime()) at.setDate(at.getDate() + 1);
    return at.getTime();
  }
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value.trim()) || Number.isNaN(ms)) throw usage(`${option}: "${value}" is neither HH:MM nor an ISO date-time`);
  return ms;
}

export function parseList(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function usage(message: string): ExitError {
  return new ExitError(EXIT.usage, message);
}

/** `--roles submit,deliver`: what a worker of a shared run does (at least one of the two). */
export function parseRoles(value: string): { submit: boolean; deliver: boolean } {
  const roles = parseList(value);
  const unknown = roles.filter((r) => r !== "submit" && r !== "deliver");
  if (unknown.length > 0 || roles.length === 0) throw new ExitError(EXIT.usage, `--roles ${value}: give submit, deliver or both (comma-separated)${unknown.length ? `; ${unknown.join(", ")} is not a role` : ""}`);
  return { submit: roles.includes("submit"), deliver: roles.includes("deliver") };
}

/**
 * `--listen [HOST:]PORT` and `--public-url URL`, which go together. The host is 127.0.0.1 unless
 * given (an IPv6 host in brackets: `[::1]:8788`); the public URL is absolute http(s), without a
 * query, fragment or credentials (the items' addresses are appended to its path).
 */
export function parseListenFlags(listen: string | undefined, publicUrl: string | undefined): { listen?: { host: string; port: number }; publicUrl?: string } {
  if (listen === undefined && publicUrl === undefined) return {};
  if (listen === undefined) throw usage("--public-url goes with --listen [HOST:]PORT (the receiver that address reaches)");
  if (publicUrl === undefined) throw usage("--listen needs --public-url URL: the address at which the service reaches this receiver (a proxy or tunnel in front of it)");
  const match = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(listen.trim());
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port < 1 || port > 65_535) throw usage(`--listen: "${listen}" is not [HOST:]PORT (examples: 8788, 0.0.0.0:8788, [::1]:8788)`);
  const host = match[1] === undefined ? "127.0.0.1" : match[1].replace(/^\[|\]$/g, "");
  let url: URL;
  try {
    url = new URL(publicUrl);
  } catch {
    throw usage(`--public-url: "${publicUrl}" is not an absolute URL (example: https://hooks.example.com/imgbatch)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage(`--public-url: "${publicUrl}" must be http or https`);
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") throw usage(`--public-url: "${url.origin}${url.pathname}…" must have no query, fragment or credentials (each item's address is appended to its path)`);
  return { listen: { host, port }, publicUrl: `${url.origin}${url.pathname.replace(/\/+$/, "")}` };
}
