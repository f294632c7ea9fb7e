// The contact sheet, output/<name>/index.html: one self-contained page that opens from disk
// (relative links, inline CSS and JS, nothing fetched from the network). Rendering is a pure
// function of the result lines; every piece of user text goes through `escapeHtml`.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../assets/atomic-file.js";
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

const STATE_ORDER = ["done", "failed", "queued", "submitting", "running", "downloading"];
const PENDING = new Set(["queued", "submitting", "running", "downloading"]);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A path relative to the output folder as an href: each segment percent-encoded, so no scheme, `?` or `#` can appear. */
function href(path: string): string {
  return escapeHtml(path.split("/").map(encodeURIComponent).join("/"));
}

const formatNumber = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 2 });

/** Puts lines in the manifest's item order; lines for keys it no longer has keep their order, after. */
export function orderByManifest(lines: readonly ResultLine[], manifestKeys: readonly string[]): ResultLine[] {
  const rank = new Map(manifestKeys.map((key, i) => [key, i]));
  return lines
    .map((line, i) => ({ line, at: rank.get(line.key) ?? manifestKeys.length + i }))
    .sort((a, b) => a.at - b.at)
    .map((x) => x.line);
}

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

function renderThumb(line: ResultLine): string {
  if (line.state === "failed") {
    return `<div class="thumb err"><b>${breakable(line.errorCode || "FAILED", /_/g, "_<wbr>")}</b><span>${escapeHtml(line.errorMessage || "no message recorded")}</span></div>`;
  }
  const src = line.thumbnail || line.image;
  if (line.state === "done" && src) {
    const img = `<img loading="lazy" decoding="async" src="${href(src)}" alt="${escapeHtml(line.key)}">`;
    return line.image ? `<a class="thumb" href="${href(line.image)}">${img}</a>` : `<div class="thumb">${img}</div>`;
  }
  return `<div class="thumb wait"><span>${escapeHtml(line.state)}</span></div>`;
}

function renderCard(line: ResultLine): string {
  const kind = line.state === "done" ? "ok" : line.state === "failed" ? "bad" : "wait";
  const size = line.state === "done" && line.width && line.height ? `${line.width}×${line.height}` : "";
  const credits = line.credits === null ? "" : `${formatNumber(line.credits)} credits`;
  const facts = [size, credits].filter(Boolean).map(escapeHtml).join(" · ");
  const renditions = Object.entries(line.renditions)
    .map(([name, path]) => `<a href="${href(path)}">${escapeHtml(name)}</a>`)
    .join("");
  const tags = [line.style, line.aspectRatio, line.model].filter(Boolean).map((t) => `<i>${escapeHtml(t)}</i>`).join("");
  return (
    `<article class="card ${kind}" data-state="${escapeHtml(line.state)}" data-style="${escapeHtml(line.style)}" data-model="${escapeHtml(line.model)}" data-ratio="${escapeHtml(line.aspectRatio)}">` +
    renderThumb(line) +
    `<div class="meta"><h3 class="key" title="${escapeHtml(line.key)}">${breakable(line.key, /--/g, "<wbr><i>--</i>")}</h3>` +
    `<p class="prompt">${escapeHtml(line.prompt)}</p><p class="tags">${tags}</p>` +
    (facts ? `<p class="facts">${facts}</p>` : "") +
    (renditions ? `<p class="rend">${renditions}</p>` : "") +
    `</div></article>\n`
  );
}

function renderGroup(rowId: string, lines: readonly ResultLine[], big: boolean): string {
  const failed = lines.filter((l) => l.state === "failed").length;
  const pending = lines.filter((l) => PENDING.has(l.state)).length;
  const notes = [`${lines.length} item${lines.length === 1 ? "" : "s"}`, failed ? `<em class="bad">${failed} failed</em>` : "", pending ? `<em>${pending} in progress</em>` : ""];
  return (
    // A big sheet lays groups out full width and skips rendering those off screen; the size
    // hint (about six cards a line) keeps the scroll bar from jumping as they come into view.
    `<section class="group"${big ? ` style="contain-intrinsic-size:auto ${60 + Math.ceil(lines.length / 6) * 360}px"` : ""}><h2><span>${escapeHtml(rowId)}</span><small>${notes.filter(Boolean).join(" · ")}</small></h2>` +
    `<div class="grid">\n${lines.map(renderCard).join("")}</div></section>\n`
  );
}

function renderFilter(label: string, attribute: string, values: readonly string[], order?: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  const keys = [...counts.keys()].sort((a, b) => (order ? order.indexOf(a) - order.indexOf(b) : a.localeCompare(b)));
  const options = keys.map((v) => `<option value="${escapeHtml(v)}">${escapeHtml(v || "(none)")} (${counts.get(v)})</option>`).join("");
  return `<label>${label}<select data-filter="${attribute}"><option value="" data-all="">all</option>${options}</select></label>`;
}

function stat(label: string, value: string, cls = ""): string {
  return `<div class="stat ${cls}"><dt>${label}</dt><dd>${value}</dd></div>`;
}

export function renderContactSheet(input: ContactSheetInput): string {
  const current = input.lines.filter((l) => l.inManifest);
  const removed = input.lines.filter((l) => !l.inManifest);
  const done = current.filter((l) => l.state === "done").length;
  const failed = current.filter((l) => l.state === "failed").length;
  const pending = current.filter((l) => PENDING.has(l.state)).length;
  const credits = input.creditsSpent ?? input.lines.reduce((sum, l) => sum + (l.state === "done" && l.credits ? l.credits : 0), 0);
  const providers = [...new Set(input.lines.map((l) => l.provider))].sort().join(", ") || "none";
  const iso = input.generatedAt.toISOString();
  const pct = (n: number): string => (current.length ? ((100 * n) / current.length).toFixed(2) : "0");
  const title = `${input.name} · contact sheet`;
  const big = input.lines.length > BIG_SHEET_CARDS;
  const groups = [...groupByRow(current)].map(([rowId, lines]) => renderGroup(rowId, lines, big)).join("");
  const removedSection = removed.length
    ? `<details class="removed"><summary>${removed.length} item${removed.length === 1 ? "" : "s"} no longer in the manifest (kept in the database and on disk)</summary>\n` +
      `<div class="sheet">\n${[...groupByRow(removed)].map(([rowId, lines]) => renderGroup(rowId, lines, big)).join("")}</div></details>\n`
    : "";
  const all = input.lines;
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
<body${big ? ` class="big"` : ""}>
<header class="top">
<div class="head"><div><h1>${escapeHtml(input.name)}</h1>
<p class="sub">Contact sheet · generated <time datetime="${iso}">${iso.slice(0, 16).replace("T", " ")} UTC</time> · provider: ${escapeHtml(providers)}</p></div>
<dl class="stats">${stat("items", formatNumber(current.length))}${stat("done", formatNumber(done), "ok")}${stat("failed", formatNumber(failed), failed ? "bad" : "")}${stat("in progress", formatNumber(pending), pending ? "wait" : "")}${stat("credits spent", formatNumber(credits))}</dl></div>
<div class="bar" title="${done} done, ${failed} failed, ${pending} in progress"><span class="ok" style="width:${pct(done)}%"></span><span class="bad" style="width:${pct(failed)}%"></span><span class="wait" style="width:${pct(pending)}%"></span></div>
<form class="filters" id="filters">
<label class="search">Search<input type="search" id="q" placeholder="key or prompt" autocomplete="off"></label>
${renderFilter("State", "state", all.map((l) => l.state), STATE_ORDER)}
${renderFilter("Style", "style", all.map((l) => l.style))}
${renderFilter("Model", "model", all.map((l) => l.model))}
${renderFilter("Ratio", "ratio", all.map((l) => l.aspectRatio))}
<button type="reset" id="reset">Reset</button>
<output id="count">showing <b id="shown">${formatNumber(all.length)}</b> of ${formatNumber(all.length)}</output>
</form>
</header>
<main>
${all.length ? "" : `<p class="empty">No items yet.</p>\n`}<div class="sheet">
${groups}</div>
${removedSection}<p class="none" id="none" hidden>No card matches these filters.</p>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const GENERATED_AT = /<time datetime="[^"]*">[^<]*<\/time>/;

/**
 * Writes index.html unless the one there differs only in its generation time: a run that
 * changed nothing leaves the output folder exactly as it was. Returns whether it wrote.
 */
export async function writeContactSheet(outDir: string, input: ContactSheetInput): Promise<boolean> {
  const path = `${outDir}/index.html`;
  const html = renderContactSheet(input);
  const existing = await readFile(path, "utf8").catch(() => null);
  if (existing !== null && existing.replace(GENERATED_AT, "") === html.replace(GENERATED_AT, "")) return false;
  await writeFileAtomic(path, html);
  return true;
}

const CSS = `
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.top{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #dde1e7;padding:14px 24px 10px;box-shadow:0 1px 3px rgba(20,30,50,.06)}
.head{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:12px 32px}
h1{margin:0;font-size:22px;letter-spacing:-.01em}.sub{margin:2px 0 0;color:#5d6676;font-size:13px}
.stats{display:flex;flex-wrap:wrap;gap:8px 22px;margin:0}.stat dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#6b7380}
.stat dd{margin:0;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.stat.ok dd{color:#1f7a4d}.stat.bad dd{color:#c0392b}.stat.wait dd{color:#9a6b00}
.bar{display:flex;height:4px;margin:12px 0 10px;border-radius:2px;background:#e6e9ee;overflow:hidden}
.bar .ok{background:#2e9e66}.bar .bad{background:#d64535}.bar .wait{background:#e0a82e}
.filters{display:flex;flex-wrap:wrap;align-items:center;gap:8px 14px;font-size:13px;color:#4a5262}
.filters label{display:flex;align-items:center;gap:6px}
select,input,button{font:inherit;color:inherit;border:1px solid #cfd5dd;border-radius:6px;background:#fff;padding:4px 8px}
input[type=search]{width:200px}button{cursor:pointer;background:#f1f3f6}button:hover{background:#e6e9ee}
select:focus,input:focus,button:focus{outline:2px solid #3b6fd4;outline-offset:1px}
#count{margin-left:auto;color:#5d6676}#count b{color:#1d2330}
main{padding:18px 24px 48px}
.sheet{display:flex;flex-wrap:wrap;align-items:flex-start;gap:16px}
.big .sheet{display:block}.big .group{margin-bottom:16px;content-visibility:auto}
.group{flex:0 1 auto;max-width:100%;min-width:0;background:#fff;border:1px solid #e0e4ea;border-radius:12px;padding:10px 12px 12px}
.group h2{display:flex;align-items:baseline;gap:10px;margin:0 0 9px;font-size:14px}
.group h2 span{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.group h2 small{font-weight:400;color:#6b7380;font-size:12px}em{font-style:normal}em.bad{color:#c0392b}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{display:flex;flex-direction:column;width:176px;background:#fff;border:1px solid #dde1e7;border-radius:9px;overflow:hidden}
.card:hover{border-color:#b9c2ce;box-shadow:0 3px 10px rgba(20,30,50,.09)}
.thumb{position:relative;display:flex;align-items:center;justify-content:center;aspect-ratio:1/1;background:#eceef2;border-bottom:1px solid #e3e6eb;overflow:hidden}
.thumb img{position:absolute;inset:8px;width:calc(100% - 16px);height:calc(100% - 16px);object-fit:contain;display:block;filter:drop-shadow(0 1px 2px rgba(0,0,0,.18))}
.card.bad{border-color:#e8a39b;background:#fff8f7}
.thumb.err{flex-direction:column;gap:6px;padding:14px;background:repeating-linear-gradient(135deg,#fdecea 0 10px,#fbe3e0 10px 20px);color:#8f2418;text-align:center}
.thumb.err b{font:600 11px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#c0392b;color:#fff;padding:2px 7px;border-radius:4px;overflow-wrap:anywhere}
.thumb.err span{font-size:12px;line-height:1.35;display:-webkit-box;-webkit-line-clamp:5;-webkit-box-orient:vertical;overflow:hidden;word-break:break-word}
.card.wait{border-style:dashed}
.thumb.wait{color:#8a6a1f;background:repeating-linear-gradient(135deg,#f5f1e6 0 10px,#efe9da 10px 20px)}
.thumb.wait span{font-size:12px;text-transform:uppercase;letter-spacing:.08em;border:1px solid #d9c48e;border-radius:999px;padding:2px 10px;background:#fffaf0}
.meta{flex:1;padding:9px 11px 11px;display:flex;flex-direction:column;gap:5px;min-width:0}
.key{margin:0;font:600 11.5px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}.key i{font-style:normal;white-space:nowrap}
.prompt{margin:0;font-size:12.5px;color:#3d4554;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;cursor:pointer;overflow-wrap:anywhere}
.prompt.open{display:block}
.tags{margin:0;display:flex;flex-wrap:wrap;gap:4px}
.tags i{font-style:normal;font-size:11px;background:#eef1f5;color:#454e5e;border-radius:4px;padding:1px 6px}
.facts{margin:0;font-size:11.5px;color:#6b7380;font-variant-numeric:tabular-nums}
.rend{margin:auto 0 0;display:flex;flex-wrap:wrap;gap:2px 9px;font-size:11.5px}.rend a{color:#2f5fc4;text-decoration:none}.rend a:hover{text-decoration:underline}
.removed{margin-top:32px;border-top:1px solid #dde1e7;padding-top:14px}.removed summary{cursor:pointer;color:#5d6676;font-weight:600;margin-bottom:14px}
.removed .card{opacity:.75}
.empty,.none{color:#6b7380;margin:40px 0;text-align:center}
@media (max-width:640px){.top{position:static;padding:12px}main{padding:12px}.group{width:100%}.grid{gap:8px}.card{width:calc(50% - 4px)}#count{margin-left:0}}
`;

// Filtering flips the `hidden` attribute: 20,000 cards filter in about a quarter of a second.
const SCRIPT = `
(() => {
  const cards = Array.from(document.querySelectorAll(".card"));
  const groups = Array.from(document.querySelectorAll(".group"));
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  const search = document.getElementById("q");
  const shown = document.getElementById("shown");
  const none = document.getElementById("none");
  let texts = null;
  function apply() {
    const wanted = selects.filter((s) => s.selectedIndex > 0).map((s) => [s.dataset.filter, s.value]);
    const needle = search.value.trim().toLowerCase();
    if (needle && !texts) texts = cards.map((c) => (c.querySelector(".key").textContent + " " + c.querySelector(".prompt").textContent).toLowerCase());
    let count = 0;
    cards.forEach((card, i) => {
      const show = wanted.every(([name, value]) => card.dataset[name] === value) && (!needle || texts[i].includes(needle));
      card.hidden = !show;
      if (show) count++;
    });
    for (const group of groups) group.hidden = !group.querySelector(".card:not([hidden])");
    shown.textContent = count.toLocaleString("en-US");
    none.hidden = count > 0 || cards.length === 0;
  }
  let timer = 0;
  for (const s of selects) s.addEventListener("change", apply);
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 120); });
  document.getElementById("filters").addEventListener("reset", () => setTimeout(apply, 0));
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  document.querySelector("main").addEventListener("click", (e) => {
    if (e.target instanceof Element && e.target.classList.contains("prompt")) e.target.classList.toggle("open");
  });
  const time = document.querySelector("time[datetime]");
  if (time) time.textContent = new Date(time.dateTime).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  apply();
})();
`;

const SCRIPT_HASH = createHash("sha256").update(SCRIPT).digest("base64");
