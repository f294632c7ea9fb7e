// Issue 19, item 1: a manifest's `webhook` goes with each submit (the simulator's ledger shows it
// per create), is no part of the item's identity (a changed URL remakes nothing, yet reaches every
// item submitted from then on), and is kept out of the database and the logs.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCommand } from "../src/commands/run.js";
import { PictoryProvider, DEFAULT_RETRYABLE_JOB_CODES } from "../src/providers/pictory.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { closeServer, useCleanup } from "./helpers/cleanup.js";
import { testContext } from "./helpers/context.js";
import { filesUnder, useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const cleanup = useCleanup();
const TUNING = { backoffBaseMs: 20, backoffCapMs: 200, throttleFallbackMs: 100, reconcileWindowMs: 60_000 };

async function sim(): Promise<SimHandle> {
  return cleanup(await startSimulator({ latencyMs: { "seedream3.0": 20, "flux-schnell": 20, nanobanana: 20, "nanobanana-pro": 20 }, jitterMs: 0 }), (s) => s.stop());
}

/** The team's own system: records the path of every POST it receives. */
async function hookCatcher(): Promise<{ origin: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup(server, closeServer);
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

function writeManifest(dir: string, hook: string, rows: number): string {
  const lines = ["name: hooks", "provider: pictory", "defaults:", "  model: flux-schnell", `  webhook: ${hook}/team/secret-path-0001`, "rows:"];
  for (let i = 0; i < rows; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a quiet harbour town`);
  lines.push("  - id: own", "    prompt: Poster of a lighthouse with its own hook", `    webhook: ${hook}/own/secret-path-0002`);
  const path = join(dir, "hooks.yaml");
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

describe("the manifest's webhook", () => {
  it("goes in the body of the submit, and nowhere without one", async () => {
    const s = await sim();
    const provider = cleanup(
      new PictoryProvider({ apiKey: s.apiKey, baseUrl: s.url, pollIntervalMs: 10, connectTimeoutMs: 2_000, headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000, connections: 2, retryableJobCodes: DEFAULT_RETRYABLE_JOB_CODES, clockSkewMs: 0, userAgent: "imgbatch-test" }),
      (p) => p.close(),
    );
    const request = { prompt: "A lighthouse at dusk", model: "flux-schnell", aspectRatio: "1:1" } as const;
    const plain = await provider.submit(request);
    const hooked = await provider.submit(request, undefined, { webhook: "https://hooks.example.com/x" });
    expect(s.ledger().webhookByJob).toEqual({ [plain.jobId]: null, [hooked.jobId]: "https://hooks.example.com/x" });
  });

  it("is sent per create; a changed URL remakes nothing and goes with the items submitted after the change", async () => {
    const s = await sim();
    const team = await hookCatcher();
    const dir = tempDir();
    const db = join(dir, "db.sqlite");
    const out = join(dir, "out");
    const path = writeManifest(dir, team.origin, 5);
    // The first night stops after two images (--max-credits: 0.6 each): four items wait.
    const first = testContext({ PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url });
    const stopped = await runCommand(path, { provider: "pictory", db, out, concurrency: 1, pollIntervalMs: 25, maxCredits: 1.2, tuning: TUNING }, first.ctx);
    expect(stopped, first.logs()).toBe(3);
    const before = s.ledger();
    expect(before.jobsCreated).toBe(2);
    expect(Object.values(before.webhookByJob)).toEqual([`${team.origin}/team/secret-path-0001`, `${team.origin}/team/secret-path-0001`]);

    // The team moves its endpoint: the same manifest with another URL remakes none of the two.
    writeFileSync(path, readFileSync(path, "utf8").replaceAll("secret-path-0001", "secret-path-0003"));
    const second = testContext({ PICTORY_API_KEY: s.apiKey, PICTORY_BASE_URL: s.url });
    expect(await runCommand(path, { provider: "pictory", db, out, concurrency: 2, pollIntervalMs: 25, tuning: TUNING }, second.ctx), second.logs()).toBe(0);
    const after = s.ledger();
    expect(after.jobsCreated).toBe(6);
    expect(Object.values(after.jobsByRequestHash).every((n) => n === 1)).toBe(true);
    const sent = Object.values(after.webhookByJob);
    expect(sent.slice(0, 2)).toEqual(Object.values(before.webhookByJob));
    // The four left, each with the URL of the manifest as it is now; the row's own stays its own.
    expect(sent.slice(2).sort()).toEqual([...Array(3).fill(`${team.origin}/team/secret-path-0003`), `${team.origin}/own/secret-path-0002`].sort());
    expect(second.logs()).not.toMatch(/superseded|request changed/);

    // The team's system heard of every job (the simulator delivers at completion).
    await expect.poll(() => team.paths.length, { timeout: 5_000 }).toBe(6);
    // The URLs (which may hold a secret, as chat hooks do) are not in the database, the output folder or the logs.
    for (const file of filesUnder(dir).filter((f) => f !== path)) expect(readFileSync(file).includes(Buffer.from("secret-path-")), file).toBe(false);
    expect(first.logs() + second.logs()).not.toContain("secret-path-");
  }, 30_000);
});
