// The Pictory simulator's public face: start it, reconfigure it, read its ledger, stop it.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_SIM_OPTIONS, mergeSimOptions, parseSimOptions, type SimOptions, type SimOptionsPatch } from "./config.js";
import { LedgerRecorder, type SimLedger } from "./ledger.js";
import { KeyRateLimiter } from "./ratelimit.js";
import { API_PREFIX, createRequestListener, type SimContext } from "./server.js";
import { SimState } from "./state.js";
import { jobBody } from "./views.js";
import { WebhookSender } from "./webhooks.js";

export { DEFAULT_SIM_OPTIONS, FAULT_ROUTES, loadSimConfig, parseSimOptions, type FaultRoute, type SimOptions, type SimOptionsPatch } from "./config.js";
export type { SimLedger } from "./ledger.js";
export { simRequestHash } from "./validate.js";
export { JOB_ERRORS, type SimJob, type SimState } from "./state.js";

export interface SimHandle {
  /** The value for PICTORY_BASE_URL, e.g. http://127.0.0.1:PORT/pictoryapis. */
  url: string;
  /** http://127.0.0.1:PORT (files and /__sim live here). */
  origin: string;
  /** The first configured key, ready for PICTORY_API_KEY. */
  apiKey: string;
  /** Jobs, accounts and the current options; for tests that need to look inside. */
  state: SimState;
  options(): SimOptions;
  /** Changes options at runtime (validated; throws naming the bad keys). */
  configure(patch: SimOptionsPatch): void;
  /** Moves the simulator's clock forward: jobs complete, URLs expire, jobs get cleaned. */
  advance(ms: number): void;
  /** The simulator's clock, in epoch ms. */
  now(): number;
  /** Forgets all jobs, debits, throttle state and ledger counts; keeps options. */
  reset(): void;
  ledger(): SimLedger;
  stop(): Promise<void>;
}

export interface SimDeps {
  /** The clock (epoch ms); `advance()` adds to it. Default Date.now. */
  now?: () => number;
}

export async function startSimulator(options: SimOptionsPatch = {}, deps: SimDeps = {}): Promise<SimHandle> {
  const resolved = mergeSimOptions(DEFAULT_SIM_OPTIONS, parseSimOptions(options, "simulator options"));
  const baseNow = deps.now ?? Date.now;
  let offsetMs = 0;
  const now = (): number => baseNow() + offsetMs;

  const state = new SimState(resolved, now);
  const ledger = new LedgerRecorder();
  const limiter = new KeyRateLimiter(now);
  const webhooks = new WebhookSender(state, (job) => jobBody(job, ctx));
  const ctx: SimContext = {
    state,
    ledger,
    limiter,
    origin: "",
    secret: randomBytes(16).toString("hex"),
    webhooks,
    reset: () => {
      webhooks.stop();
      state.reset();
      ledger.reset();
      limiter.reset();
    },
    snapshot: () => snapshot(),
  };
  state.onSettled = (job) => ledger.jobSettled(job);
  const snapshot = (): SimLedger =>
    ledger.snapshot({ inFlightNow: state.inFlightNow(), creditsUsed: state.creditsUsedTotal(), webhooks: webhooks.stats });

  const server = createServer({ keepAlive: true }, createRequestListener(ctx));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  ctx.origin = `http://${host}:${address.port}`;

  let stopped: Promise<void> | null = null;
  return {
    url: `${ctx.origin}${API_PREFIX}`,
    origin: ctx.origin,
    apiKey: resolved.apiKeys[0] ?? "",
    state,
    options: () => state.options,
    configure: (patch) => state.configure(parseSimOptions(patch, "simulator options")),
    advance: (ms) => {
      offsetMs += ms;
      state.settleDue();
      webhooks.pump();
    },
    now,
    reset: () => ctx.reset(),
    ledger: snapshot,
    stop: () => {
      stopped ??= new Promise<void>((resolve) => {
        webhooks.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

/** The lines `imgbatch sim` prints at start-up. */
export function formatSimBanner(handle: SimHandle): string {
  const o = handle.options();
  const faults = Object.entries(o)
    .filter(([key, value]) => key.startsWith("rate") && typeof value === "number" && value > 0)
    .map(([key, value]) => `${key}=${String(value)}`);
  return [
    `Pictory simulator listening on ${handle.origin}`,
    `  PICTORY_BASE_URL=${handle.url}`,
    `  PICTORY_API_KEY=${handle.apiKey}`,
    `  ledger: GET ${handle.origin}/__sim/ledger   reset: POST ${handle.origin}/__sim/reset`,
    `  credits limit ${o.creditsLimit}, seed ${o.seed}, rpm ${o.rpm === 0 ? "unlimited" : o.rpm}`,
    `  faults: ${faults.length > 0 ? faults.join(" ") : "none"}`,
  ].join("\n");
}
