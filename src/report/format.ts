// How credits and times read wherever a person sees them (status, the progress line, the run's
// summary, the contact sheet). No imports: any module may use it.

/**
 * Credits to the hundredth. The service's prices are whole or tenths (2, 0.6, 4, 14 per image;
 * its ledger debits 0.6), so every real total has at most one decimal: two keep a finer future
 * price exact and drop only float noise (0.6 added 13 times is 7.799999999999998).
 */
export function roundCredits(credits: number): number {
  return Math.round(credits * 100) / 100;
}

// One formatter for all calls: toLocaleString with options builds an ICU formatter per call.
const CREDITS = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** Credits for people: rounded as roundCredits, thousands grouped (`7.8`, `1,234.5`). */
export function formatCredits(credits: number): string {
  return CREDITS.format(roundCredits(credits));
}

const pad = (n: number): string => String(n).padStart(2, "0");

/**
 * A moment in this machine's time zone, to the minute, with the zone's offset so that it reads
 * the same anywhere: `2026-12-07 03:36 +00:00`. Machines get ISO UTC strings instead.
 */
export function formatLocalTime(at: Date | number): string {
  const d = typeof at === "number" ? new Date(at) : at;
  const offsetMinutes = -d.getTimezoneOffset();
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
