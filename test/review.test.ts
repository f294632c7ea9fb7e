// The morning review app: a real run of the offline renderer, then `imgbatch review` from the
// built CLI, driven in headless Chromium and probed with raw HTTP for its security.
import { createHash } from "node:crypto";
import { copyFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import sharp from "sharp";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { openStore } from "../src/store/index.js";
import { launchChromium } from "./helpers/chromium.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir("imgbatch-review-");
const ROOT = new URL("..", import.meta.url).pathname;

const MANIFEST = `name: review-test
provider: local
defaults:
  model: flux-schnell
rows:
  - id: hero
    prompt: "Aurora Pro earbuds floating above a midnight blue gradient, studio light"
    variants: 2
  - id: banner
    prompt: "Launch banner <img src=x onerror=alert(1)> & <b>bold</b> claims"
    style: minimalist
    aspectRatio: "16:9"
    variants: 2
`;

/** A folder with the manifest run to the end by the local renderer. */
async function deliveredProject(manifest = MANIFEST, file = "m.yaml"): Promise<string> {
  const cwd = tempDir();
  writeFileSync(join(cwd, file), manifest);
  const run = await runCli(["run", file], { cwd });
  expect(run.code, run.stderr).toBe(0);
  return cwd;
}

interface Review {
  url: string;
  origin: string;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<CliResult>;
}

/** Starts `imgbatch review` and reads the one URL it prints. */
async function startReview(cwd: string, file = "m.yaml"): Promise<Review> {
  const done = runCli(["review", file, "--reviewer", "tester"], { cwd, timeoutMs: 120_000 });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    done.child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    void done.then((r) => reject(new Error(`review ended before printing its URL (${r.code}): ${r.stderr}`)));
  });
  return {
    url,
    origin: new URL(url).origin,
    async stop() {
      done.child.kill("SIGTERM");
      return done;
    },
  };
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** HTTP with the path sent exactly as given (fetch would resolve `..`) and any headers. */
function raw(origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers: body === undefined ? headers : { ...headers, "Content-Length": String(Buffer.byteLength(body)) } }, (res) => {
      let text = "";
      res.setEncoding("latin1");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The session cookie the token buys, and the CSRF token of the page. */
async function session(review: Review): Promise<{ cookie: string; csrf: string }> {
  const redirect = await raw(review.origin, "GET", new URL(review.url).pathname + new URL(review.url).search);
  expect(redirect.status).toBe(303);
  expect(redirect.headers.location).toBe("/");
  const setCookie = String(redirect.headers["set-cookie"]);
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  expect(setCookie).toMatch(/Path=\//);
  const cookie = setCookie.split(";")[0]!;
  const page = await raw(review.origin, "GET", "/", { Cookie: cookie });
  expect(page.status).toBe(200);
  return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)![1]! };
}

/** The page's problems: script errors and console errors (a CSP violation is one). */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return problems;
}

const count = (page: Page, selector: string) => page.locator(selector).count();
const keysShown = (page: Page) => page.locator(".card").evaluateAll((cards) => cards.map((c) => c.getAttribute("data-key")));

describe("imgbatch review in headless Chromium", () => {
  it("approves two images and rejects one by keyboard, keeps a note, and shows it all again after a reload", { timeout: 90_000 }, async () => {
    const cwd = await deliveredProject();
    const review = await startReview(cwd);
    const chromium = await launchChromium({ width: 1280, height: 800 });
    try {
      const page = await chromium.context.newPage();
      const problems = watchProblems(page);
      await page.goto(review.url);
      // The token went into the cookie and out of the address bar.
      expect(page.url()).toBe(`${review.origin}/`);
      await expect.poll(() => count(page, ".card img")).toBe(4);
      expect(await page.locator(".card.sel").getAttribute("data-key")).toBe("hero--v1");

      await page.keyboard.press("a");
      await page.keyboard.press("ArrowRight");
      await page.keyboard.press("a");
      await page.keyboard.press("j");
      await page.keyboard.press("r");
      await page.keyboard.press("n");
      await page.keyboard.type("Headline too small");
      await page.keyboard.press("Enter");
      await expect.poll(() => page.locator("#note-view").textContent()).toBe("Headline too small");
      const expectDecisions = async () => {
        await expect.poll(() => count(page, ".card.approved")).toBe(2);
        expect(await count(page, ".card.rejected")).toBe(1);
        expect(await page.locator("#n-approved").textContent()).toBe("2");
        expect(await page.locator("#n-rejected").textContent()).toBe("1");
        expect(await page.locator("#n-undecided").textContent()).toBe("1");
      };
      await expectDecisions();

      await page.reload();
      await expectDecisions();
      await page.locator(`.card[data-key="banner--v1"]`).click();
      await expect.poll(() => page.locator("#note-view").textContent()).toBe("Headline too small");
      expect(await page.locator("#badge").textContent()).toBe("rejected by tester");
      await expect.poll(() => page.locator("#history li").count()).toBe(2); // rejected, then the note
      // A prompt is text, never markup.
      expect(await page.locator("#prompt").textContent()).toBe("Launch banner <img src=x onerror=alert(1)> & <b>bold</b> claims");
      expect(await count(page, "#prompt *, .detail img:not(#reference-img), .strip b")).toBe(0);

      // The filters and the search narrow the strip.
      await page.click(`[data-filter="approved"]`);
      expect(await keysShown(page)).toEqual(["hero--v1", "hero--v2"]);
      await page.click(`[data-filter="undecided"]`);
      expect(await keysShown(page)).toEqual(["banner--v2"]);
      await page.click(`[data-filter="all"]`);
      await page.fill("#q", "EARBUDS");
      expect(await keysShown(page)).toEqual(["hero--v1", "hero--v2"]);
      expect(problems).toEqual([]);
    } finally {
      await chromium.close();
      const end = await review.stop();
      expect(end.code, end.stderr).toBe(0);
    }

    // In the store: each decision on the image it was made on.
    const store = await openStore(join(cwd, "jobs", "review-test.sqlite"), { readonly: true });
    try {
      const decisions = await store.currentDecisions();
      const summary = Object.fromEntries([...decisions].map(([key, d]) => [key, [d.decision, d.note, d.reviewer]]));
      expect(summary).toEqual({
        "hero--v1": ["approved", null, "tester"],
        "hero--v2": ["approved", null, "tester"],
        "banner--v1": ["rejected", "Headline too small", "tester"],
      });
      expect(decisions.get("hero--v1")!.sha256).toBe((await store.byKey("hero--v1"))!.sha256);
    } finally {
      await store.close();
    }
  });

  it("updates a page that stays open: a decision made elsewhere and the images of a run going on", { timeout: 90_000 }, async () => {
    const cwd = await deliveredProject();
    const review = await startReview(cwd);
    const chromium = await launchChromium({ width: 1280, height: 800 });
    try {
      const page = await chromium.context.newPage();
      const problems = watchProblems(page);
      await page.goto(review.url);
      await expect.poll(() => count(page, ".card img")).toBe(4);
      await expect.poll(() => page.locator("#live").textContent()).toBe("live");
      await page.evaluate("window.sameDocument = true");

      const store = await openStore(join(cwd, "jobs", "review-test.sqlite"));
      try {
        const item = (await store.byKey("banner--v2"))!;
        await store.recordDecision({ key: item.key, sha256: item.sha256!, decision: "rejected", note: "from another tab", reviewer: "someone" });
      } finally {
        await store.close();
      }
      await expect.poll(() => count(page, `.card.rejected[data-key="banner--v2"]`), { timeout: 10_000 }).toBe(1);

      // A row added to the manifest and run while the page is open.
      writeFileSync(join(cwd, "m.yaml"), `${MANIFEST}  - id: extra\n    prompt: "A third row, delivered while the review is open"\n`);
      const run = await runCli(["run", "m.yaml"], { cwd });
      expect(run.code, run.stderr).toBe(0);
      await expect.poll(() => count(page, `.card[data-key="extra"] img`), { timeout: 10_000 }).toBe(1);
      expect(await page.locator("#n-undecided").textContent()).toBe("4");
      expect(await page.evaluate("window.sameDocument")).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await chromium.close();
      await review.stop();
    }
  });

  it.runIf(process.env.IMGBATCH_WRITE_SCREENSHOT === "1")("makes the README screenshot from the example manifest", { timeout: 90_000 }, async () => {
    const cwd = tempDir();
    copyFileSync(join(ROOT, "manifests", "example.yaml"), join(cwd, "example.yaml"));
    const run = await runCli(["run", "example.yaml"], { cwd });
    expect(run.code, run.stderr).toBe(0);
    const review = await startReview(cwd, "example.yaml");
    const chromium = await launchChromium({ width: 1280, height: 800 });
    try {
      const page = await chromium.context.newPage();
      await page.goto(review.url);
      await expect.poll(() => count(page, ".card img")).toBe(13);
      for (const key of ["a", "ArrowRight", "a", "ArrowRight", "r", "ArrowRight", "a", "ArrowRight", "ArrowRight", "a", "ArrowRight", "a", "ArrowRight", "r", "n"]) {
        await page.keyboard.press(key);
      }
      await page.keyboard.type("Motion blur hides the earbuds: make again");
      await page.keyboard.press("Enter");
      await expect.poll(() => page.locator("#note-view").textContent()).toBe("Motion blur hides the earbuds: make again");
      await page.waitForFunction("document.getElementById('big').complete && [...document.images].every((i) => i.complete)");
      await page.waitForTimeout(300);
      const shot = join(ROOT, "docs", "review.png");
      await page.screenshot({ path: shot });
      expect(statSync(shot).size).toBeLessThan(300_000);
    } finally {
      await chromium.close();
      await review.stop();
    }
  });
});

describe("imgbatch review's server", () => {
  it("asks every request for the token, refuses cross-site writes and never serves a path", { timeout: 60_000 }, async () => {
    const cwd = await deliveredProject();
    const review = await startReview(cwd);
    try {
      expect(review.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
      // No token, a wrong one, a wrong cookie: 401, with the security headers all the same.
      for (const [path, headers] of [
        ["/", {}],
        ["/api/items", {}],
        ["/image/hero--v1", {}],
        ["/?token=wrong", {}],
        ["/api/items", { Cookie: `imgbatch_review_${new URL(review.origin).port}=wrong` }],
      ] as const) {
        const res = await raw(review.origin, "GET", path, headers);
        expect(res.status, path).toBe(401);
        expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
        expect(res.headers["x-content-type-options"]).toBe("nosniff");
      }
      expect((await fetch(`${review.origin}/api/items`)).status).toBe(401);

      const { cookie, csrf } = await session(review);
      const items = await raw(review.origin, "GET", "/api/items", { Cookie: cookie });
      expect(items.status).toBe(200);
      expect(items.headers["content-security-policy"]).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(items.headers["referrer-policy"]).toBe("no-referrer");
      const hero = (JSON.parse(items.body) as { rows: { items: { key: string; sha256: string }[] }[] }).rows[0]!.items[0]!;
      expect(hero.key).toBe("hero--v1");

      // An image by its key: the record's file, whole.
      const image = await raw(review.origin, "GET", "/image/hero--v1", { Cookie: cookie });
      expect(image.status).toBe(200);
      expect(image.headers["content-type"]).toBe("image/png");
      expect(createHash("sha256").update(Buffer.from(image.body, "latin1")).digest("hex")).toBe(hero.sha256);
      expect((await raw(review.origin, "GET", "/thumb/hero--v1", { Cookie: cookie })).headers["content-type"]).toBe("image/webp");
      const passwd = readFileSync("/etc/passwd", "latin1");
      for (const path of ["/image/../../etc/passwd", "/image/%2e%2e%2fetc%2fpasswd", "/thumb/..%2F..%2Fetc%2Fpasswd", "/image/%2Fetc%2Fpasswd", "/image/hero--v1/../../../etc/passwd", `/image/${"..%2F".repeat(12)}etc%2Fpasswd`, "/image/nope"]) {
        const res = await raw(review.origin, "GET", path, { Cookie: cookie });
        expect(res.status, path).toBe(404);
        expect(res.body).not.toContain(passwd.slice(0, 20));
      }

      const post = (path: string, headers: Record<string, string>, body: unknown = { key: hero.key, sha256: hero.sha256, decision: "approved" }) =>
        raw(review.origin, "POST", path, { Cookie: cookie, "Content-Type": "application/json", ...headers }, typeof body === "string" ? body : JSON.stringify(body));
      const ours = { Origin: review.origin, "X-CSRF-Token": csrf };
      // Cross-site, or without the page's CSRF token: refused, and nothing recorded.
      expect((await post("/api/decide", { Origin: "http://evil.example", "X-CSRF-Token": csrf })).status).toBe(403);
      expect((await post("/api/decide", { "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf })).status).toBe(403);
      expect((await post("/api/decide", { "X-CSRF-Token": csrf })).status).toBe(403);
      expect((await post("/api/decide", { Origin: review.origin })).status).toBe(403);
      expect((await post("/api/decide", { Origin: review.origin, "X-CSRF-Token": "x".repeat(32) })).status).toBe(403);
      expect((await raw(review.origin, "GET", "/api/items", { Cookie: cookie, Host: "evil.example" })).status).toBe(421);
      const history = await raw(review.origin, "GET", "/api/items/hero--v1/history", { Cookie: cookie });
      expect(JSON.parse(history.body)).toEqual({ key: "hero--v1", history: [] });

      // Our own page's requests: recorded; a stale image, a bad body, a large one refused.
      expect((await post("/api/decide", ours)).status).toBe(200);
      expect((await post("/api/decide", ours, { key: hero.key, sha256: "0".repeat(64), decision: "approved" })).status).toBe(409);
      expect((await post("/api/decide", ours, { key: hero.key, sha256: hero.sha256, decision: "maybe" })).status).toBe(400);
      expect((await post("/api/note", ours, { key: hero.key, sha256: hero.sha256, note: "x".repeat(2001) })).status).toBe(400);
      expect((await post("/api/note", ours, "{not json")).status).toBe(400);
      expect((await post("/api/note", ours, { key: hero.key, sha256: hero.sha256, note: "y".repeat(20_000) })).status).toBe(413);
      expect((await post("/api/note", ours, { key: hero.key, sha256: hero.sha256, note: "keep" })).status).toBe(200);
      const undone = await post("/api/undo", ours, { key: hero.key, sha256: hero.sha256 });
      expect(JSON.parse(undone.body)).toMatchObject({ decision: { decision: "approved", note: null, reviewer: "tester" } });
      const after = JSON.parse((await raw(review.origin, "GET", "/api/items/hero--v1/history", { Cookie: cookie })).body) as { history: { decision: string }[] };
      expect(after.history.map((d) => d.decision)).toEqual(["approved", "approved", "approved"]);
    } finally {
      const end = await review.stop();
      expect(end.code, end.stderr).toBe(0);
      expect(end.stdout.trim().split("\n")).toHaveLength(1);
    }
  });

  it("shows a row's local reference image beside the result, served by the item's key", { timeout: 60_000 }, async () => {
    const cwd = tempDir();
    await sharp({ create: { width: 96, height: 96, channels: 3, background: "#000000", noise: { type: "gaussian", mean: 128, sigma: 50 } } }).png().toFile(join(cwd, "earbuds.png"));
    writeFileSync(join(cwd, "m.yaml"), ["name: refs", "provider: local", "rows:", "  - id: hero", '    prompt: "Aurora Pro earbuds on a marble table"', "    referenceImage: ./earbuds.png", "  - id: plain", '    prompt: "A launch banner with open sky"', ""].join("\n"));
    const run = await runCli(["run", "m.yaml"], { cwd });
    expect(run.code, run.stderr).toBe(0);
    const review = await startReview(cwd);
    try {
      const { cookie } = await session(review);
      const items = (JSON.parse((await raw(review.origin, "GET", "/api/items", { Cookie: cookie })).body) as { rows: { items: { key: string; hasReference: boolean }[] }[] }).rows.flatMap((r) => r.items);
      expect(items.map((i) => [i.key, i.hasReference])).toEqual([["hero", true], ["plain", false]]);
      const reference = await raw(review.origin, "GET", "/reference/hero", { Cookie: cookie });
      expect(reference.status).toBe(200);
      expect(reference.headers["content-type"]).toBe("image/png");
      expect(Buffer.from(reference.body, "latin1").equals(readFileSync(join(cwd, "earbuds.png")))).toBe(true);
      expect((await raw(review.origin, "GET", "/reference/plain", { Cookie: cookie })).status).toBe(404);
      expect((await raw(review.origin, "GET", "/reference/hero")).status).toBe(401);
    } finally {
      await review.stop();
    }
  });

  it("answers 503 to a decision the database could not take in time, and keeps serving", { timeout: 60_000 }, async () => {
    const cwd = await deliveredProject();
    const review = await startReview(cwd);
    // Another connection holds the write lock past the busy timeout (5 s), as no run ever does.
    const holder = new Database(join(cwd, "jobs", "review-test.sqlite"));
    try {
      const { cookie, csrf } = await session(review);
      const item = JSON.parse((await raw(review.origin, "GET", "/api/items", { Cookie: cookie })).body) as { rows: { items: { key: string; sha256: string }[] }[] };
      const hero = item.rows[0]!.items[0]!;
      const body = JSON.stringify({ key: hero.key, sha256: hero.sha256, decision: "rejected" });
      const decide = () => raw(review.origin, "POST", "/api/decide", { Cookie: cookie, Origin: review.origin, "X-CSRF-Token": csrf, "Content-Type": "application/json" }, body);
      holder.exec("BEGIN IMMEDIATE");
      const busy = await decide();
      expect(busy.status).toBe(503);
      expect(JSON.parse(busy.body)).toEqual({ error: "the database is busy (a run is writing): try again" });
      holder.exec("ROLLBACK");
      expect((await decide()).status).toBe(200);
    } finally {
      holder.close();
      const end = await review.stop();
      expect(end.code, end.stderr).toBe(0);
    }
  });

  it("refuses a manifest never run, and a reviewer name that is not printable", { timeout: 30_000 }, async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "m.yaml"), MANIFEST);
    const never = await runCli(["review", "m.yaml"], { cwd });
    expect(never.code).toBe(1);
    expect(never.stderr).toContain("has not been run yet");
    const bad = await runCli(["review", "m.yaml", "--reviewer", "a\u0007b"], { cwd });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--reviewer");
  });
});
