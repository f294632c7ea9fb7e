// The contact sheet, output/<name>/index.html: one self-contained page that opens from disk
// (relative links, inline CSS and JS, nothing fetched from the network). Rendering is a pure
// function of the result lines; every piece of user text goes through `escapeHtml`.
import { AtomicFileWriter } from "../assets/atomic-file-writer.js";
import { CSS, SCRIPT, SCRIPT_HASH } from "./contact-sheet-assets.js";
import { formatCredits, formatLocalTime } from "./format.js";
import type { SupersededSet } from "../assets/superseded.js";
import type { ResultLine } from "./results.js";

export interface ContactSheetInput {
  /** The manifest's name. */
  name: string;
  generatedAt: Date;
  /** In manifest order: cards are grouped by row in order of the row's first item. */
  lines: readonly ResultLine[];
  /** Every credit the database records as spent (superseded images too); default: the lines' own. */
  creditsSpent?: number;
}

/**
 * Above this many cards the page stops packing row groups side by side and lets Chromium
 * skip laying out groups off screen (content-visibility): 20,000 cards then open in about
 * 2 s instead of 9 s (measured, headless Chromium, laptop).
 */
const BIG_SHEET_CARDS = 600;

const STATE_ORDER = ["done", "failed", "missing", "queued", "submitting", "running", "downloading"];
const PENDING = new Set(["queued", "submitting", "running", "downloading"]);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A path relative to the output folder as an href: each segment percent-encoded, so no scheme, `?` or `#` can appear. */
function href(path: string): string {
  return escapeHtml(path.split("/").map(encodeURIComponent).join("/"));
}

// One formatter for the page: toLocaleString with options builds an ICU formatter per call
// (a 20,000-card sheet renders in about 30% less time with one).
const NUMBER_FORMAT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const formatNumber = (n: number): string => NUMBER_FORMAT.format(n);

function groupByRow(lines: readonly ResultLine[]): Map<string, ResultLine[]> {
  const groups = new Map<string, ResultLine[]>();
  for (const line of lines) {
    const group = groups.get(line.rowId);
    if (group) group.push(line);
    else groups.set(line.rowId, [line]);
  }
  return groups;
}

/** Escaped text that wraps at its natural joints (before a key's `--`, never inside it; after a code's `_`). */
function breakable(text: string, joint: RegExp, replacement: string): string {
  return escapeHtml(text).replace(joint, replacement);
}

/** The row's product shot in the card's corner: its thumbnail, a link to the file (references/). */
function renderReference(line: ResultLine): string {
  if (line.referenceImage === "") return "";
  const thumbnail = line.referenceImage.replace(/^references\/([0-9a-f]{64})\.[a-z]+$/, "references/thumbs/$1.webp");
  return `<a class="ref" href="${href(line.referenceImage)}" title="reference image"><img loading="lazy" decoding="async" src="${href(thumbnail)}" alt="reference"></a>`;
}

/** The picture, with the reference over its corner when the row has one (beside, never inside, the picture's link). */
function renderThumb(line: ResultLine): string {
  const ref = renderReference(line);
  return ref === "" ? renderThumbOnly(line) : `<div class="pic">${renderThumbOnly(line)}${ref}</div>`;
}

function renderThumbOnly(line: ResultLine): string {
  if (line.state === "failed" || line.state === "missing") {
    return `<div class="thumb err"><b>${breakable(line.state === "missing" ? "MISSING" : line.errorCode || "FAILED", /_/g, "_<wbr>")}</b><span>${escapeHtml(line.errorMessage || "no message recorded")}</span></div>`;
  }
  const src = line.thumbnail || line.image;
  if (line.state === "done" && src) {
    const img = `<img loading="lazy" decoding="async" src="${href(src)}" alt="${escapeHtml(line.key)}">`;
    return line.image ? `<a class="thumb" href="${href(line.image)}">${img}</a>` : `<div class="thumb">${img}</div>`;
  }
  return `<div class="thumb wait"><span>${escapeHtml(line.state)}</span></div>`;
}

function renderCard(line: ResultLine): string {
  const kind = line.state === "done" ? "ok" : line.state === "failed" || line.state === "missing" ? "bad" : "wait";
  const size = line.state === "done" && line.width && line.height ? `${line.width}×${line.height}` : "";
  const credits = line.credits === null ? "" : `${formatCredits(line.credits)} credits`;
  const facts = [size, credits].filter(Boolean).map(escapeHtml).join(" · ");
  const renditions = Object.entries(line.renditions)
    .map(([name, path]) => `<a href="${href(path)}">${escapeHtml(name)}</a>`)
    .join("");
  const tags = [line.style, line.aspectRatio, line.model].filter(Boolean).map((t) => `<i>${escapeHtml(t)}</i>`).join("");
  const review = reviewOf(line);
  const badges = [
    line.review ? `<b class="badge ${line.review}" title="${escapeHtml(`${line.review} by ${line.reviewer}${line.reviewNote ? `: ${line.reviewNote}` : ""}`)}">${line.review}</b>` : "",
    ...line.qcFlags.map((flag) => `<b class="badge qc" title="${escapeHtml(flag)}">${escapeHtml(flag.split(":")[0]!)}</b>`),
  ].join("");
  return (
    `<article class="card ${kind}" data-state="${escapeHtml(line.state)}" data-style="${escapeHtml(line.style)}" data-model="${escapeHtml(line.model)}" data-ratio="${escapeHtml(line.aspectRatio)}" data-review="${review}" data-qc="${qualityOf(line)}">` +
    renderThumb(line) +
    `<div class="meta"><h3 class="key" title="${escapeHtml(line.key)}">${breakable(line.key, /--/g, "<wbr><i>--</i>")}</h3>` +
    `<p class="prompt">${escapeHtml(line.prompt)}</p><p class="tags">${tags}</p>` +
    (badges ? `<p class="badges">${badges}</p>` : "") +
    (facts ? `<p class="facts">${facts}</p>` : "") +
    (renditions ? `<p class="rend">${renditions}</p>` : "") +
    `</div></article>\n`
  );
}

/** The review filter's value: a decision, "undecided", or "not delivered" for an item with no image. */
function reviewOf(line: ResultLine): string {
  return line.state !== "done" ? "not delivered" : line.review || "undecided";
}

function qualityOf(line: ResultLine): string {
  return line.qcFlags.length ? "flagged" : "no flag";
}

/** What the page says above the cards: counts over every line, gathered one line at a time. */
export class SheetTally {
  /** Lines of items the manifest still has. */
  items = 0;
  done = 0;
  failed = 0;
  pending = 0;
  /** Every line, removed items included. */
  all = 0;
  doneCredits = 0;
  readonly providers = new Set<string>();
  readonly byState = new Map<string, number>();
  readonly byStyle = new Map<string, number>();
  readonly byModel = new Map<string, number>();
  readonly byRatio = new Map<string, number>();
  readonly byReview = new Map<string, number>();
  readonly byQuality = new Map<string, number>();

  add(line: ResultLine): void {
    this.all++;
    if (line.inManifest) {
      this.items++;
      if (line.state === "done") this.done++;
      else if (line.state === "failed") this.failed++;
      else if (PENDING.has(line.state)) this.pending++;
    }
    if (line.state === "done" && line.credits) this.doneCredits += line.credits;
    this.providers.add(line.provider);
    const facets = [[this.byState, line.state], [this.byStyle, line.style], [this.byModel, line.model], [this.byRatio, line.aspectRatio], [this.byReview, reviewOf(line)], [this.byQuality, qualityOf(line)]] as const;
    for (const [counts, value] of facets) {
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
  }

  get removed(): number {
    return this.all - this.items;
  }
}

/** A line in sheet order, with the counts of its row group (which the group's heading shows). */
export interface SheetLine {
  line: ResultLine;
  startsGroup: boolean;
  groupSize: number;
  groupFailed: number;
  groupPending: number;
}

function renderGroupStart(at: SheetLine, big: boolean): string {
  const { groupSize: size, groupFailed: failed, groupPending: pending } = at;
  const notes = [`${size} item${size === 1 ? "" : "s"}`, failed ? `<em class="bad">${failed} failed</em>` : "", pending ? `<em>${pending} in progress</em>` : ""];
  return (
    // A big sheet lays groups out full width and skips rendering those off screen; the size
    // hint (about six cards a line) keeps the scroll bar from jumping as they come into view.
    `<section class="group"${big ? ` style="contain-intrinsic-size:auto ${60 + Math.ceil(size / 6) * 360}px"` : ""}><h2><span>${escapeHtml(at.line.rowId)}</span><small>${notes.filter(Boolean).join(" · ")}</small></h2>` +
    `<div class="grid">\n`
  );
}

const GROUP_END = `</div></section>\n`;

function renderFilter(label: string, attribute: string, counts: ReadonlyMap<string, number>, order?: readonly string[]): string {
  const keys = [...counts.keys()].sort((a, b) => (order ? order.indexOf(a) - order.indexOf(b) : a.localeCompare(b)));
  const options = keys.map((v) => `<option value="${escapeHtml(v)}">${escapeHtml(v || "(none)")} (${counts.get(v)})</option>`).join("");
  return `<label>${label}<select data-filter="${attribute}"><option value="" data-all="">all</option>${options}</select></label>`;
}

function stat(label: string, value: string, cls = ""): string {
  return `<div class="stat ${cls}"><dt>${label}</dt><dd>${value}</dd></div>`;
}

function renderHead(name: string, generatedAt: Date, tally: SheetTally, credits: number): string {
  const { items, done, failed, pending, all } = tally;
  const providers = [...tally.providers].sort().join(", ") || "none";
  const iso = generatedAt.toISOString();
  const pct = (n: number): string => (items ? ((100 * n) / items).toFixed(2) : "0");
  const title = `${name} · contact sheet`;
  const csp = `default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'sha256-${SCRIPT_HASH}'; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="imgbatch">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body${all > BIG_SHEET_CARDS ? ` class="big"` : ""}>
<header class="top">
<div class="head"><div><h1>${escapeHtml(name)}</h1>
<p class="sub">Contact sheet · generated <time datetime="${iso}">${formatLocalTime(generatedAt)}</time> · provider: ${escapeHtml(providers)}</p></div>
<dl class="stats">${stat("items", formatNumber(items))}${stat("done", formatNumber(done), "ok")}${stat("failed", formatNumber(failed), failed ? "bad" : "")}${stat("in progress", formatNumber(pending), pending ? "wait" : "")}${stat("credits spent", formatCredits(credits))}</dl></div>
<div class="bar" title="${done} done, ${failed} failed, ${pending} in progress"><span class="ok" style="width:${pct(done)}%"></span><span class="bad" style="width:${pct(failed)}%"></span><span class="wait" style="width:${pct(pending)}%"></span></div>
<form class="filters" id="filters">
<label class="search">Search<input type="search" id="q" placeholder="key or prompt" autocomplete="off"></label>
${renderFilter("State", "state", tally.byState, STATE_ORDER)}
${renderFilter("Style", "style", tally.byStyle)}
${renderFilter("Model", "model", tally.byModel)}
${renderFilter("Ratio", "ratio", tally.byRatio)}
${renderFilter("Review", "review", tally.byReview, ["approved", "rejected", "undecided", "not delivered"])}
${renderFilter("Quality", "qc", tally.byQuality, ["flagged", "no flag"])}
<button type="reset" id="reset">Reset</button>
<output id="count">showing <b id="shown">${formatNumber(all)}</b> of ${formatNumber(all)}</output>
</form>
</header>
<main>
${all ? "" : `<p class="empty">No items yet.</p>\n`}<div class="sheet">
`;
}

const PAGE_END = `<p class="none" id="none" hidden>No card matches these filters.</p>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * Renders the page piece by piece into `write`: the head from the tally (start), then the
 * lines in sheet order (the manifest's items, then the removed ones, each grouped by row), then
 * the end. Lines may come from an async source: each is written as it arrives.
 */
export class ContactSheetWriter {
  private inGroup = false;
  private inRemoved = false;
  private readonly big: boolean;

  constructor(
    private readonly write: (text: string) => void,
    private readonly page: { name: string; generatedAt: Date; tally: SheetTally; creditsSpent?: number; superseded?: readonly SupersededSet[] },
  ) {
    this.big = page.tally.all > BIG_SHEET_CARDS;
    write(renderHead(page.name, page.generatedAt, page.tally, page.creditsSpent ?? page.tally.doneCredits));
  }

  line(at: SheetLine): void {
    if (at.startsGroup) {
      if (this.inGroup) this.write(GROUP_END);
      if (!at.line.inManifest && !this.inRemoved) {
        this.inRemoved = true;
        const removed = this.page.tally.removed;
        this.write(`</div>\n<details class="removed"><summary>${removed} item${removed === 1 ? "" : "s"} no longer in the manifest (kept in the database and on disk)</summary>\n<div class="sheet">\n`);
      }
      this.write(renderGroupStart(at, this.big));
      this.inGroup = true;
    }
    this.write(renderCard(at.line));
  }

  end(): void {
    if (this.inGroup) this.write(GROUP_END);
    this.write(this.inRemoved ? `</div></details>\n` : `</div>\n`);
    if (this.page.superseded?.length) this.write(renderSuperseded(this.page.superseded));
    this.write(PAGE_END);
  }
}

export function renderContactSheetInto(write: (text: string) => void, page: ConstructorParameters<typeof ContactSheetWriter>[1], lines: Iterable<SheetLine>): void {
  const sheet = new ContactSheetWriter(write, page);
  for (const at of lines) sheet.line(at);
  sheet.end();
}

/** Earlier images of items made anew, kept under superseded/: a closed section below the cards. */
function renderSuperseded(sets: readonly SupersededSet[]): string {
  const cards = sets.map((set) => {
    const src = set.thumbnail ?? set.image;
    const img = src ? `<img loading="lazy" decoding="async" src="${href(src)}" alt="${escapeHtml(`${set.key} #${set.n}`)}">` : `<span>no image</span>`;
    const thumb = set.image ? `<a class="thumb" href="${href(set.image)}">${img}</a>` : `<div class="thumb wait">${img}</div>`;
    const facts = [set.sidecar?.provider, set.sidecar?.credits === undefined ? "" : `${formatCredits(set.sidecar.credits)} credits`].filter(Boolean).map((f) => escapeHtml(String(f))).join(" · ");
    return (
      `<article class="card superseded" data-state="superseded">${thumb}<div class="meta"><h3 class="key" title="${escapeHtml(set.key)}">${breakable(set.key, /--/g, "<wbr><i>--</i>")} <small>#${set.n}</small></h3>` +
      `<p class="prompt">${escapeHtml(set.sidecar?.prompt ?? "")}</p>${facts ? `<p class="facts">${facts}</p>` : ""}</div></article>\n`
    );
  });
  return `<details class="superseded" id="superseded"><summary>${sets.length} superseded image${sets.length === 1 ? "" : "s"}: earlier images of items made anew (kept in superseded/, never deleted)</summary>\n<div class="grid">\n${cards.join("")}</div></details>\n`;
}

/** Pure: the whole page for lines in the order given (tests, small sheets). */
export function renderContactSheet(input: ContactSheetInput): string {
  const tally = new SheetTally();
  for (const line of input.lines) tally.add(line);
  const sheetLines: SheetLine[] = [];
  for (const lines of [input.lines.filter((l) => l.inManifest), input.lines.filter((l) => !l.inManifest)]) {
    for (const group of groupByRow(lines).values()) {
      const failed = group.filter((l) => l.state === "failed").length;
      const pending = group.filter((l) => PENDING.has(l.state)).length;
      group.forEach((line, i) => sheetLines.push({ line, startsGroup: i === 0, groupSize: group.length, groupFailed: failed, groupPending: pending }));
    }
  }
  const pieces: string[] = [];
  const page = { name: input.name, generatedAt: input.generatedAt, tally };
  renderContactSheetInto((text) => pieces.push(text), input.creditsSpent === undefined ? page : { ...page, creditsSpent: input.creditsSpent }, sheetLines);
  return pieces.join("");
}

/** The generation time: a sheet that differs from the one on disk only there is not rewritten. */
const GENERATED_AT = /<time datetime="[^"]*">[^<]*<\/time>/;

/**
 * Writes index.html unless the one there differs only in its generation time: a run that
 * changed nothing leaves the output folder exactly as it was. Returns whether it wrote.
 */
export async function writeContactSheet(outDir: string, input: ContactSheetInput): Promise<boolean> {
  const file = new AtomicFileWriter(`${outDir}/index.html`, { comparableHead: withoutGenerationTime });
  file.write(renderContactSheet(input));
  return file.commitIfChanged();
}

export function withoutGenerationTime(head: string): string {
  return head.replace(GENERATED_AT, "");
}
