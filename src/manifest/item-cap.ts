// The cap on expansion: a manifest that would expand past `limit` items is refused before
// anything past the cap is built. Each row's count is arithmetic (variants × the size of
// each matrix axis), so a typo that asks for millions costs one multiplication, not millions
// of items; the message lists the rows that make the most, biggest first.
import type { DraftHeader, DraftRow, Where } from "./draft.js";

/** Rows named in the refusal, biggest first; the rest are summed up in one line. */
const ROWS_NAMED = 10;

export interface RowCount {
  /** `rows[3] "hero" (line 12)`, `row 4 "hero" (line 5)`. */
  label: string;
  at: Where;
  count: number;
  /** How the count is made: `style 6 × colour 1,000 × variants 100`. */
  factors: string;
}

const NUMBER = new Intl.NumberFormat("en-US");
export const formatCount = (n: number): string => (Number.isFinite(n) ? NUMBER.format(n) : "more than 10^308");

/** Items a row makes: its variants times the size of each matrix axis, never built. */
export function rowItemCount(draft: DraftHeader, row: DraftRow): number {
  const variants = row.variants?.value ?? draft.defaults.variants?.value ?? 1;
  return row.matrix.reduce((product, axis) => product * axis.values.length, variants);
}

function factorsOf(draft: DraftHeader, row: DraftRow): string {
  const variants = row.variants?.value ?? draft.defaults.variants?.value ?? 1;
  const parts = row.matrix.map((axis) => `${axis.name} ${formatCount(axis.values.length)}`);
  if (variants > 1 || parts.length === 0) parts.push(`variants ${variants}`);
  return parts.join(" × ");
}

/** Keeps the running total and the biggest rows (a few, however many rows there are). */
export class ItemCap {
  total = 0;
  rows = 0;
  private readonly biggest: RowCount[] = [];

  constructor(readonly limit: number) {}

  /** Counts a row; true while the manifest is still within the cap (its items may be built). */
  add(draft: DraftHeader, row: DraftRow, id: string): boolean {
    const count = rowItemCount(draft, row);
    this.total += count;
    this.rows++;
    const smallest = this.biggest[this.biggest.length - 1];
    if (this.biggest.length < ROWS_NAMED || (smallest !== undefined && count > smallest.count)) {
      const where = row.pathPrefix === "" ? `row ${row.at.row}` : row.at.field;
      this.biggest.push({ label: `${where} ${JSON.stringify(id)} (line ${row.at.line ?? "?"})`, at: row.at, count, factors: factorsOf(draft, row) });
      // Stable: of rows that make as many, the earlier is named first.
      this.biggest.sort((a, b) => b.count - a.count);
      if (this.biggest.length > ROWS_NAMED) this.biggest.pop();
    }
    return this.total <= this.limit;
  }

  get exceeded(): boolean {
    return this.total > this.limit;
  }

  /** The refusal: where it is reported (the biggest row) and what it says. */
  refusal(): { at: Where; message: string } | null {
    const top = this.biggest[0];
    if (!this.exceeded || top === undefined) return null;
    const named = this.biggest.reduce((sum, row) => sum + row.count, 0);
    const others = this.rows - this.biggest.length;
    const lines = this.biggest.map((row) => `\n      ${row.label}: ${formatCount(row.count)} (${row.factors})`);
    if (others > 0) lines.push(`\n      ${formatCount(others)} other row${others === 1 ? "" : "s"}: ${formatCount(this.total - named)}`);
    return {
      at: top.at,
      message:
        `the manifest expands to ${formatCount(this.total)} items, more than the ${formatCount(this.limit)} allowed; ` +
        `check the matrix and variants, split the manifest, or raise the cap (maxItems: in the manifest, or --max-items). ` +
        `Items per row, biggest first:${lines.join("")}`,
    };
  }
}
