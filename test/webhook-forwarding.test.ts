// Issue 19, item 1: a manifest's `webhook` goes with each submit (the simulator's ledger shows it
// per create), is no part of the item's identity (a changed URL remakes nothing, yet reaches every
// item submitted from then on), and is kept out of the database and the logs.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCommand } from "../src/commands/run.js";
import { PictoryProvider, DEFAULT_RETRYABLE_JOB_CODES } from "../src/providers/pictory.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { closeServer, useCleanup } from "./helpers/cleanup.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

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

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
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
});
