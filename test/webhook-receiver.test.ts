// The receiver of `run --listen` over real loopback HTTP with a recording board: token paths,
// what it refuses (no such address, not POST, too large, over the rate), what a body names, and
// that no token reaches the log. Its clock is fixed, so rate limits are exact counts.
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";
import type { HintStep } from "../src/runner/next-step.js";
import { namedJobOf, receiverLimits, WebhookReceiver, type ReceiverLimits } from "../src/runner/webhook-receiver.js";
import { itemWebhookUrl, keyAndToken, WebhookTokens } from "../src/runner/webhook-tokens.js";
import { useCleanup } from "./helpers/cleanup.js";
import { Writable } from "node:stream";

const cleanup = useCleanup();

async function receiver(limits: Partial<ReceiverLimits> = {}) {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) });
  const tokens = new WebhookTokens();
  const hints: { key: string; job: string | null }[] = [];
  const onHint = (key: string, job: string | null): HintStep => {
    hints.push({ key, job });
    return { step: "read-now" };
  };
  const r = cleanup(await WebhookReceiver.start({ host: "127.0.0.1", port: 0 }, { tokens, onHint, limits: { ...receiverLimits(4), ...limits }, log, now: () => 1_000 }), (x) => x.close());
  const base = `http://127.0.0.1:${r.address().port}`;
  return { r, tokens, hints, base, urlOf: (key: string, prefix = "/hooks") => itemWebhookUrl(`${base}${prefix}`, key, tokens.tokenFor(key)), logs: () => lines.join("") };
}

/** A raw request (fetch refuses some of what a stranger may send). */
function send(url: string, method: string, body = "", headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method, headers: { "content-type": "application/json", ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

describe("webhook tokens", () => {
  it("are an HMAC of the key under the run's secret: another run, another key or an edited token fail", () => {
    const tokens = new WebhookTokens();
    const token = tokens.tokenFor("hero--v2");
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify("hero--v2", token)).toBe(true);
    expect(tokens.verify("hero--v1", token)).toBe(false);
    expect(new WebhookTokens().verify("hero--v2", token)).toBe(false);
    expect(tokens.verify("hero--v2", `${token.slice(0, 42)}${token.endsWith("A") ? "B" : "A"}`)).toBe(false);
    expect(tokens.verify("../etc", token)).toBe(false);
  });

  it.each([
    ["/hooks/hero/" + "x".repeat(43), { key: "hero", token: "x".repeat(43) }],
    ["/proxy/kept/this/hero--v2/" + "y".repeat(43) + "?from=pictory", { key: "hero--v2", token: "y".repeat(43) }],
    ["/" + "z".repeat(43), null],
    ["/hooks/hero/short", null],
    ["/hooks/%2e%2e/" + "x".repeat(43), null],
  ])("keyAndToken(%s)", (path, expected) => {
    expect(keyAndToken(path)).toEqual(expected);
  });

  it.each([
    ['{"job_id":"j-1","success":true,"data":{"status":"completed"}}', "j-1"],
    ['{"success":true,"data":{"jobId":"j-2","status":"completed"}}', "j-2"],
    ['{"data":{"status":"completed"}}', null],
    ["not json", null],
    ['{"job_id":42}', null],
    ["[]", null],
  ])("namedJobOf(%s)", (body, expected) => {
    expect(namedJobOf(body)).toBe(expected);
  });
});

describe("the webhook receiver", () => {
  it("hands a POST to an item's address to the board with the job its body names, behind any path prefix", async () => {
    const { hints, urlOf, base, tokens } = await receiver();
    expect(await send(urlOf("hero"), "POST", JSON.stringify({ job_id: "job-9", success: true, data: { status: "completed" } }))).toBe(202);
    expect(await send(itemWebhookUrl(`${base}/a/b/c`, "poster", tokens.tokenFor("poster")), "POST", "")).toBe(202);
    expect(hints).toEqual([
      { key: "hero", job: "job-9" },
      { key: "poster", job: null },
    ]);
  });

  it("refuses what is not an item's address of this run, or not a POST, and tells the board nothing", async () => {
    const { r, hints, urlOf, base } = await receiver();
    expect(await send(`${base}/hooks/hero/${"A".repeat(43)}`, "POST", "{}")).toBe(404);
    expect(await send(urlOf("hero").replace("/hero/", "/villain/"), "POST", "{}")).toBe(404);
    expect(await send(`${base}/`, "POST", "{}")).toBe(404);
    expect(await send(urlOf("hero"), "GET")).toBe(405);
    expect(hints).toEqual([]);
    expect(r.counts).toMatchObject({ received: 4, badAddress: 3, notPost: 1, toBoard: 0 });
  });

  it("refuses a body over the cap, declared or streamed", async () => {
    const { r, hints, urlOf } = await receiver({ maxBodyBytes: 1_000 });
    expect(await send(urlOf("hero"), "POST", "x".repeat(1_001))).toBe(413);
    // Chunked, no length declared: cut off once past the cap.
    expect(await send(urlOf("hero"), "POST", "y".repeat(5_000), { "transfer-encoding": "chunked" })).toBe(413);
    expect(hints).toEqual([]);
    expect(r.counts.tooLarge).toBe(2);
  });

  it("refuses requests past the burst of one address, and past the total (the clock is fixed: no refill)", async () => {
    const { r, urlOf } = await receiver({ perAddressBurst: 5, totalBurst: 100 });
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await send(urlOf("hero"), "POST", "{}"));
    expect(answers).toEqual([202, 202, 202, 202, 202, 429, 429, 429]);
    expect(r.counts.limited).toBe(3);
    const total = await receiver({ perAddressBurst: 100, totalBurst: 2 });
    expect([await send(total.urlOf("a"), "POST", "{}"), await send(total.urlOf("a"), "POST", "{}"), await send(total.urlOf("a"), "POST", "{}")]).toEqual([202, 202, 429]);
  });

  it("logs keys and what it did, never a token", async () => {
    const { urlOf, logs, tokens } = await receiver();
    await send(urlOf("hero"), "POST", "{}");
    await send(urlOf("hero").slice(0, -1) + "Z", "POST", "{}");
    expect(logs()).toContain("webhook for hero: reading its job now");
    expect(logs()).toContain("404 badAddress");
    expect(logs()).not.toContain(tokens.tokenFor("hero"));
  });
});
