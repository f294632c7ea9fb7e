// The contact sheet: the pure renderer on plain data, then the real page in headless
// Chromium over an output folder made by the built CLI.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { requestHash } from "../src/manifest/index.js";
import type { PlannedItem } from "../src/manifest/types.js";
import { escapeHtml, renderContactSheet, writeContactSheet } from "../src/report/contact-sheet.js";
import { formatLocalTime } from "../src/report/format.js";
import { writeReport } from "../src/report/index.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import type { ResultLine } from "../src/report/results.js";
import { launchChromium } from "./helpers/chromium.js";
import { runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";
import { move } from "./helpers/store.js";

const tempDir = useTempDir("imgbatch-sheet-");
const ROOT = new URL("..", import.meta.url).pathname;

function line(over: Partial<ResultLine> & { key: string }): ResultLine {
  return {
    rowId: over.key.split("--")[0]!,
    state: "done",
    inManifest: true,
    prompt: "A red bicycle at dawn",
    model: "flux-schnell",
    style: "photorealistic",
    aspectRatio: "1:1",
    referenceImageUrl: "",
    referenceImage: "",
    provider: "local",
    jobId: "",
    credits: 0.6,
    width: 1024,
    height: 1024,
    sha256: "",
    image: `images/${over.key}.png`,
    thumbnail: `thumbs/${over.key}.webp`,
    renditions: {},
    errorCode: "",
    errorMessage: "",
    attempts: 1,
    submittedAt: "",
    completedAt: "",
    updatedAt: "",
    review: "",
    reviewNote: "",
    reviewer: "",
    qcFlags: [],
    ...over,
  };
}

const render = (lines: ResultLine[]): string => renderContactSheet({ name: "night", generatedAt: new Date("2026-03-14T06:30:00Z"), lines });
const cardsOf = (html: string): string[] => html.match(/<article class="card[^]*?<\/article>/g) ?? [];
const groupIds = (html: string): string[] => [...html.matchAll(/<section class="group"[^>]*><h2><span>([^<]*)<\/span>/g)].map((m) => m[1]!);
const stat = (html: string, label: string): string | undefined => html.match(new RegExp(`<dt>${label}</dt><dd>([^<]*)</dd>`))?.[1];

describe("renderContactSheet", () => {
  it("escapes prompts, keys and attribute values: user text never becomes markup", async () => {
    const html = render([
      line({ key: `evil"key<b>`, prompt: `<script>alert("x")</script> & it's`, style: `x" onmouseover="alert(1)` }),
    ]);
    expect(html.match(/<script/g)).toHaveLength(1); // only the sheet's own script
    expect(html).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; it&#39;s");
    expect(html).toContain(`data-style="x&#34; onmouseover=&#34;alert(1)"`);
    expect(html).not.toContain(`onmouseover="alert`);
    expect(html).toContain(`title="evil&#34;key&#60;b&#62;"`);
    expect(html).not.toContain("<b>");
    // hrefs are percent-encoded per segment, so a key cannot smuggle a scheme, query or fragment in
    expect(html).toContain(`href="images/evil%22key%3Cb%3E.png"`);
    expect(escapeHtml(`<a href='x'>&</a>`)).toBe("&#60;a href=&#39;x&#39;&#62;&#38;&#60;/a&#62;");
  });

  it("shows a row's reference image over the picture's corner, linked beside (never inside) the picture's link", async () => {
    const ref = `references/${"ab".repeat(32)}.png`;
    const html = render([line({ key: "hero", referenceImage: ref }), line({ key: "gone", state: "failed", errorCode: "REFERENCE_UPLOAD_FAILED", referenceImage: ref }), line({ key: "plain" })]);
    const [hero, gone, plain] = cardsOf(html);
    const corner = `<a class="ref" href="${ref}" title="reference image"><img loading="lazy" decoding="async" src="references/thumbs/${"ab".repeat(32)}.webp" alt="reference"></a>`;
    expect(hero).toContain(`<div class="pic"><a class="thumb" href="images/hero.png"><img loading="lazy" decoding="async" src="thumbs/hero.webp" alt="hero"></a>${corner}</div>`);
    expect(gone).toContain(`${corner}</div>`);
    expect(plain).not.toContain(`class="pic"`);
    expect(plain).not.toContain(`class="ref"`);
  });

  it("groups cards by row in the order rows first appear, keeping item order inside a row", async () => {
    const html = render([line({ key: "hero--a" }), line({ key: "banner" }), line({ key: "hero--b" }), line({ key: "zeta--v1" })]);
    expect(groupIds(html)).toEqual(["hero", "banner", "zeta"]);
    const keys = cardsOf(html).map((c) => c.match(/title="([^"]*)"/)![1]);
    expect(keys).toEqual(["hero--a", "hero--b", "banner", "zeta--v1"]);
  });

  it("shows a failed item in place with its code and message, and pending items as pending cards", async () => {
    const html = render([
      line({ key: "a--1" }),
      line({ key: "a--2", state: "failed", errorCode: "CONTENT_POLICY_VIOLATION", errorMessage: "flagged <by> the filter", image: "", thumbnail: "" }),
      line({ key: "a--3", state: "running", image: "", thumbnail: "", credits: null }),
    ]);
    const [done, failed, running] = cardsOf(html);
    expect(done).toContain(`<img loading="lazy"`);
    expect(failed).toMatch(/^<article class="card bad" data-state="failed"/);
    expect(failed).toContain("<b>CONTENT_<wbr>POLICY_<wbr>VIOLATION</b><span>flagged &#60;by&#62; the filter</span>");
    expect(failed).not.toContain("<img");
    expect(running).toMatch(/^<article class="card wait" data-state="running"/);
    expect(running).toContain(`<div class="thumb wait"><span>running</span></div>`);
  });

  it("puts totals in the header: items, done, failed, in progress, credits, time, providers", async () => {
    const html = render([
      line({ key: "a--1", credits: 2 }),
      line({ key: "a--2", credits: 0.6 }),
      line({ key: "b", state: "failed", credits: null }),
      line({ key: "c", state: "queued", credits: null }),
      line({ key: "d", state: "downloading", credits: 14, provider: "pictory" }),
      line({ key: "gone", inManifest: false, credits: 4 }),
    ]);
    expect(stat(html, "items")).toBe("5");
    expect(stat(html, "done")).toBe("2");
    expect(stat(html, "failed")).toBe("1");
    expect(stat(html, "in progress")).toBe("2");
    // credits of every delivered image, including one no longer in the manifest; none for unfinished ones
    expect(stat(html, "credits spent")).toBe("6.6");
    // Local time with its offset, as status shows it (the test runs in UTC unless TZ says otherwise)
    expect(html).toContain(`<time datetime="2026-03-14T06:30:00.000Z">${formatLocalTime(new Date("2026-03-14T06:30:00Z"))}</time>`);
    expect(html).toContain("provider: local, pictory");
    // the database's own total (it counts superseded images too) wins when given
    expect(stat(renderContactSheet({ name: "n", generatedAt: new Date(0), lines: [], creditsSpent: 1234.5 }), "credits spent")).toBe("1,234.5");
  });

  it("shows its generation time in this machine's zone with the offset; the datetime stays ISO UTC", async () => {
    const tzBefore = process.env.TZ;
    try {
      process.env.TZ = "Asia/Kolkata";
      expect(render([line({ key: "a" })])).toContain(`<time datetime="2026-03-14T06:30:00.000Z">2026-03-14 12:00 +05:30</time>`);
    } finally {
      if (tzBefore === undefined) delete process.env.TZ;
      else process.env.TZ = tzBefore;
    }
  });

  it("rounds credits to the hundredth, on the cards and in the total", async () => {
    const html = render(Array.from({ length: 13 }, (_, i) => line({ key: `f${i}`, credits: 0.6 })));
    expect(stat(html, "credits spent")).toBe("7.8");
    expect(stat(renderContactSheet({ name: "n", generatedAt: new Date(0), lines: [], creditsSpent: 0.1 + 0.2 }), "credits spent")).toBe("0.3");
    expect(render([line({ key: "a", credits: 0.1 + 0.2 })])).toContain("0.3 credits");
    expect(html).not.toContain("7.79999");
  });

  it("keeps items no longer in the manifest in a collapsed section at the end", async () => {
    const html = render([line({ key: "old--1", inManifest: false }), line({ key: "new" })]);
    expect(groupIds(html)).toEqual(["new", "old"]);
    expect(html).toMatch(/<details class="removed"><summary>1 item no longer in the manifest[^]*old--1[^]*<\/details>/);
    expect(html).toContain(`showing <b id="shown">2</b> of 2`);
  });

  it("builds filter options from the values present, with counts", async () => {
    const html = render([line({ key: "a", style: "futuristic" }), line({ key: "b", style: "futuristic", aspectRatio: "9:16" }), line({ key: "c", style: "" })]);
    expect(html).toContain(`<select data-filter="style"><option value="" data-all="">all</option><option value="">(none) (1)</option><option value="futuristic">futuristic (2)</option></select>`);
    expect(html).toContain(`<option value="1:1">1:1 (2)</option><option value="9:16">9:16 (1)</option>`);
  });

  it("is self-contained: no absolute URL, and a CSP whose script hash matches the inline script", async () => {
    const html = render([line({ key: "a", renditions: { story: "renditions/story/a.webp" } })]);
    expect(html).not.toMatch(/(src|href)="(https?:|\/\/|\/|file:)/);
    expect(html).toContain(`href="renditions/story/a.webp"`);
    const script = html.match(/<script>([^]*)<\/script>/)![1]!;
    const csp = html.match(/http-equiv="Content-Security-Policy" content="([^"]*)"/)![1]!;
    expect(csp).toContain(`script-src 'sha256-${createHash("sha256").update(script).digest("base64")}'`);
    expect(csp).toMatch(/^default-src 'none'/);
  });

  it("rewrites index.html only when more than its generation time changed", async () => {
    const out = tempDir();
    const input = { name: "night", generatedAt: new Date("2026-03-14T06:30:00Z"), lines: [line({ key: "a" })] };
    expect(await writeContactSheet(out, input)).toBe(true);
    expect(await writeContactSheet(out, { ...input, generatedAt: new Date("2026-03-15T06:30:00Z") })).toBe(false);
    expect(readFileSync(join(out, "index.html"), "utf8")).toContain(`datetime="2026-03-14T06:30:00.000Z"`);
    expect(await writeContactSheet(out, { ...input, generatedAt: new Date("2026-03-15T06:30:00Z"), lines: [line({ key: "a", state: "failed" })] })).toBe(true);
    expect(readFileSync(join(out, "index.html"), "utf8")).toContain(`datetime="2026-03-15T06:30:00.000Z"`);
  });

  // Its speed is not asserted here (a timed test fails on a busy machine, not on slow code):
  // writing the sheet is part of every run that bench 3 and bench 4 measure.
  it("renders 20,000 items with small cards, in the compact layout", async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) =>
      line({ key: `row-${Math.floor(i / 8)}--v${i}`, prompt: "Aurora Pro wireless earbuds floating above a midnight blue gradient, studio lighting", renditions: { story: `renditions/story/k${i}.webp` } }),
    );
    const html = render(lines);
    expect(cardsOf(html)).toHaveLength(20_000);
    expect(html.length / 20_000).toBeLessThan(1_000);
    expect(html).toContain(`<body class="big">`);
  });
});

// ---- the sheet as a run writes it: order, groups and counts come from SQL ------------

function planned(key: string): { item: PlannedItem; requestHash: string } {
  const item: PlannedItem = { key, rowId: key.split("--")[0]!, source: "m.yaml line 1", variant: null, matrix: {}, request: { prompt: `a picture of ${key}`, model: "flux-schnell", aspectRatio: "1:1" } };
  return { item, requestHash: requestHash(item.request, "local") };
}

/** A store whose manifest synced `keys` (in that order), then `later` when given; the sheet written from it. */
async function sheetFrom(keys: string[], options: { later?: string[]; order?: Iterable<string>; failed?: string[]; running?: string[] } = {}): Promise<string> {
  const dir = tempDir();
  const store = Store.open(join(dir, "m.sqlite"));
  try {
    await store.syncManifest(keys.map(planned), "local");
    for (const key of options.failed ?? []) await move(store, (await store.byKey(key))!, "failed", { errorCode: "CONTENT_POLICY_VIOLATION", errorMessage: "flagged" });
    for (const key of options.running ?? []) await move(store, await move(store, (await store.byKey(key))!, "submitting"), "running", { jobId: `job-${key}` });
    if (options.later) await store.syncManifest(options.later.map(planned), "local");
    await writeReport(store, "night", join(dir, "out"), options.order ?? "as-synced");
  } finally {
    await store.close();
  }
  return readFileSync(join(dir, "out", "index.html"), "utf8");
}

const cardKeys = (html: string): string[] => cardsOf(html).map((c) => c.match(/title="([^"]*)"/)![1]!);

describe("the contact sheet of a store (writeReport)", () => {
  it("orders cards by the manifest's items, unknown keys after in their own order", async () => {
    const html = await sheetFrom(["c", "x", "a", "b", "y"], { order: ["a", "b", "c"] });
    expect(cardKeys(html)).toEqual(["a", "b", "c", "x", "y"]);
  });

  it("groups cards by row in the order rows first appear, keeping item order inside a row, with each group's counts", async () => {
    const html = await sheetFrom(["hero--a", "banner", "hero--b", "zeta--v1", "hero--c"], { failed: ["hero--b"], running: ["hero--c"] });
    expect(groupIds(html)).toEqual(["hero", "banner", "zeta"]);
    expect(cardKeys(html)).toEqual(["hero--a", "hero--b", "hero--c", "banner", "zeta--v1"]);
    expect(html).toContain(`<h2><span>hero</span><small>3 items · <em class="bad">1 failed</em> · <em>2 in progress</em></small></h2>`); // hero--a queued, hero--c running
    expect(html).toContain(`<h2><span>banner</span><small>1 item · <em>1 in progress</em></small></h2>`);
  });

  it("keeps items no longer in the manifest in a collapsed section at the end, grouped by row", async () => {
    const html = await sheetFrom(["old--1", "new", "old--2"], { later: ["new"] });
    expect(groupIds(html)).toEqual(["new", "old"]);
    expect(cardKeys(html)).toEqual(["new", "old--1", "old--2"]);
    expect(html).toMatch(/<details class="removed"><summary>2 items no longer in the manifest[^]*old--1[^]*old--2[^]*<\/details>/);
  });
});

// ---- the real page ------------------------------------------------------------------

const SMALL_MANIFEST = `name: sheet-test
provider: local
defaults:
  model: flux-schnell
  style: photorealistic
rows:
  - id: hero
    prompt: "Wireless earbuds above a gradient, studio lighting"
    matrix:
      style: [photorealistic, futuristic]
      aspectRatio: ["1:1", "9:16"]
  - id: xss
    prompt: "<script>alert(1)</script> \\"quoted\\" & it's <b>bold</b>"
    style: vintage
  - id: doomed
    prompt: "A launch banner that the service will refuse"
    style: minimalist
    aspectRatio: "16:9"
`;

/** Runs a manifest with the local provider, fails one item in the database, rewrites the report. */
async function buildOutput(manifestPath: string, failKey: (lines: ResultLine[]) => string, error: { code: string; message: string }) {
  const dir = join(manifestPath, "..");
  const db = join(dir, "db.sqlite");
  const out = join(dir, "out");
  const run = await runCli(["run", manifestPath, "--provider", "local", "--db", db, "--out", out], { cwd: dir });
  expect(run.code, run.stderr).toBe(0);
  const readLines = (): ResultLine[] =>
    readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as ResultLine);
  const failed = failKey(readLines());
  // A done item cannot move through the store's state machine; a test may write the row directly.
  const sqlite = new Database(db);
  sqlite
    .prepare(`UPDATE items SET state = 'failed', error_code = ?, error_message = ?, file_path = NULL, thumb_path = NULL, credits = NULL WHERE key = ?`)
    .run(error.code, error.message, failed);
  sqlite.close();
  const report = await runCli(["report", manifestPath, "--db", db, "--out", out], { cwd: dir });
  expect(report.code, report.stderr).toBe(0);
  return { out, lines: readLines(), failed };
}

describe("the contact sheet in headless Chromium", () => {
  it("opens from disk: every card, loaded images, working filters, user text shown as text", { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const manifest = join(dir, "sheet.yaml");
    writeFileSync(manifest, SMALL_MANIFEST);
    const { out, lines, failed } = await buildOutput(manifest, () => "doomed", { code: "CONTENT_POLICY_VIOLATION", message: `Refused: "brand" <names> not allowed` });
    expect(lines).toHaveLength(6);
    expect(lines.find((l) => l.key === failed)?.state).toBe("failed");

    const chromium = await launchChromium();
    try {
      const page = await chromium.context.newPage();
      const dialogs: string[] = [];
      const problems: string[] = [];
      page.on("dialog", (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
      });
      page.on("pageerror", (error) => problems.push(error.message));
      page.on("request", (request) => {
        if (!request.url().startsWith("file:")) problems.push(`network request: ${request.url()}`);
      });
      await page.goto(pathToFileURL(join(out, "index.html")).href);

      const cards = page.locator(".card");
      await expect.poll(() => cards.count()).toBe(lines.length);
      const visibleKeys = () => page.locator(".card:not([hidden]) .key").evaluateAll((els) => els.map((e) => e.getAttribute("title")));

      // Images load under the page's CSP from file:// (each scrolled into view: they are lazy).
      const images = page.locator(".card img");
      expect(await images.count()).toBe(lines.length - 1);
      for (const image of await images.all()) {
        await image.scrollIntoViewIfNeeded();
        await expect.poll(() => image.evaluate((img) => ((img as { complete: boolean }).complete ? (img as { naturalWidth: number }).naturalWidth : 0))).toBeGreaterThan(0);
      }
      await page.evaluate("window.scrollTo(0, 0)");

      // The failed item is a card in its row with its code and message.
      const failedCard = page.locator(`.card[data-state="failed"]`);
      expect(await failedCard.count()).toBe(1);
      expect(await failedCard.textContent()).toContain(`CONTENT_POLICY_VIOLATION`);
      expect(await failedCard.textContent()).toContain(`Refused: "brand" <names> not allowed`);

      // Filters hide the other cards and the groups left empty; reset shows everything again.
      await page.selectOption(`select[data-filter="style"]`, "futuristic");
      const futuristic = lines.filter((l) => l.style === "futuristic").map((l) => l.key);
      expect(futuristic).toHaveLength(2);
      expect(await visibleKeys()).toEqual(futuristic);
      expect(await page.locator("#count").textContent()).toBe(`showing 2 of 6`);
      expect(await page.locator(".group:not([hidden])").count()).toBe(1);
      await page.selectOption(`select[data-filter="ratio"]`, "9:16");
      expect(await visibleKeys()).toEqual(lines.filter((l) => l.style === "futuristic" && l.aspectRatio === "9:16").map((l) => l.key));
      await page.click("#reset");
      await expect.poll(visibleKeys).toEqual(lines.map((l) => l.key));
      expect(await page.locator(".group:not([hidden])").count()).toBe(3);
      await page.selectOption(`select[data-filter="state"]`, "failed");
      expect(await visibleKeys()).toEqual(["doomed"]);
      await page.click("#reset");
      await page.fill("#q", "gradient");
      await expect.poll(visibleKeys).toEqual(lines.filter((l) => l.rowId === "hero").map((l) => l.key));
      await page.click("#reset");
      await expect.poll(() => page.locator("#count").textContent()).toBe(`showing 6 of 6`);

      // The prompt with markup in it is text on the page, and nothing ran.
      const xssPrompt = await page.locator(`.card:has(.key[title="xss"]) .prompt`).textContent();
      expect(xssPrompt).toBe(`<script>alert(1)</script> "quoted" & it's <b>bold</b>`);
      expect(await page.locator("main script, .prompt *").count()).toBe(0);
      expect(dialogs).toEqual([]);
      expect(problems).toEqual([]);

      const shot = join(dir, "contact-sheet.png");
      await page.screenshot({ path: shot });
      expect(statSync(shot).size).toBeGreaterThan(0);
    } finally {
      await chromium.close();
    }
  });

  // UPDATE_SCREENSHOT=1 npx vitest run test/contact-sheet.test.ts  → docs/contact-sheet.png
  it.runIf(process.env.UPDATE_SCREENSHOT === "1")("makes the README screenshot from the example manifest", { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const manifest = join(dir, "example.yaml");
    copyFileSync(join(ROOT, "manifests", "example.yaml"), manifest);
    const { out } = await buildOutput(manifest, (lines) => (lines.find((l) => l.key === "unboxing--energetic") ?? lines.at(-1)!).key, {
      code: "CONTENT_POLICY_VIOLATION",
      message: "The prompt was rejected by the content filter: trademarked text in an image.",
    });
    const chromium = await launchChromium({ width: 1280, height: 900 });
    try {
      const page = await chromium.context.newPage();
      await page.goto(pathToFileURL(join(out, "index.html")).href);
      // The images on screen are loaded (the others are lazy).
      const onScreenLoaded = () =>
        page.locator("img").evaluateAll((imgs, height) =>
          imgs.every((el) => {
            const img = el as unknown as { complete: boolean; naturalWidth: number; getBoundingClientRect(): { top: number } };
            return img.getBoundingClientRect().top > height || (img.complete && img.naturalWidth > 0);
          }), 900);
      await expect.poll(onScreenLoaded, { timeout: 5_000 }).toBe(true);
      await page.waitForTimeout(300);
      mkdirSync(join(ROOT, "docs"), { recursive: true });
      await page.screenshot({ path: join(ROOT, "docs", "contact-sheet.png"), fullPage: false });
      expect(existsSync(join(ROOT, "docs", "contact-sheet.png"))).toBe(true);
    } finally {
      await chromium.close();
    }
  });
});
