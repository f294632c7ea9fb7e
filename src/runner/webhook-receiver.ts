// The receiver of `run --listen`: a small node:http server that turns a POST to an item's address
// into a hint (hint-board.ts) and nothing more: the run then reads that job from the service and
// trusts only that answer. Everything a stranger can send is bounded: requests per second (per
// address and in all), body size, header size and time, connections. Nothing it receives is
// fatal to the run or stored; what it refused or ignored is counted for the run's log. Paths
// hold tokens: they are never logged.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";
import type { HintStep } from "./next-step.js";
import { keyAndToken, type WebhookTokens } from "./webhook-tokens.js";

export interface ReceiverLimits {
  maxBodyBytes: number;
  perAddressPerSecond: number;
  perAddressBurst: number;
  totalPerSecond: number;
  totalBurst: number;
  maxConnections: number;
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
}

/**
 * Limits that let every real delivery through while a flood costs little CPU (a refused request
 * is answered before its body is read): at most two POSTs per job (a duplicate), no more jobs
 * finishing at once than are in flight (`concurrency`), each taking at least a tenth of a second.
 * The service may deliver from a single address, so that address alone may use all of it.
 */
export function receiverLimits(concurrency: number): ReceiverLimits {
  const perSecond = Math.max(100, 20 * concurrency);
  return {
    maxBodyBytes: 64 * 1024,
    perAddressPerSecond: perSecond,
    perAddressBurst: Math.max(50, 4 * concurrency),
    totalPerSecond: 2 * perSecond,
    totalBurst: Math.max(100, 8 * concurrency),
    maxConnections: 256,
    requestTimeoutMs: 10_000,
  };
}

export interface ReceiverCounts {
  /** Every request that reached the receiver. */
  received: number;
  /** POSTs to a valid item address, handed to the board (which counts what it used or ignored). */
  toBoard: number;
  /** Not an item's address of this run (a guess, an earlier run's token, a scan). */
  badAddress: number;
  /** Over the rate limits. */
  limited: number;
  tooLarge: number;
  notPost: number;
}

/** Requests a second, refilled continuously; no waiting: a request over the limit is refused. */
class Allowance {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The job a webhook body names (the §2.1 job body: `job_id`, or `data.jobId`), if any. */
export function namedJobOf(body: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null) return null;
  const top = json as Record<string, unknown>;
  const data = typeof top.data === "object" && top.data !== null ? (top.data as Record<string, unknown>) : {};
  const named = [top.job_id, top.jobId, data.jobId, data.job_id].find((v): v is string => typeof v === "string" && v.length > 0 && v.length <= 200);
  return named ?? null;
}

const MAX_ADDRESSES = 4_096;

export class WebhookReceiver {
  readonly counts: ReceiverCounts = { received: 0, toBoard: 0, badAddress: 0, limited: 0, tooLarge: 0, notPost: 0 };
  private readonly total: Allowance;
  private readonly perAddress = new Map<string, Allowance>();

  private constructor(
    private readonly server: Server,
    private readonly tokens: WebhookTokens,
    private readonly onHint: (key: string, namedJobId: string | null) => HintStep,
    private readonly limits: ReceiverLimits,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.total = new Allowance(limits.totalPerSecond, limits.totalBurst, now);
  }

  /** Listens on `host:port` (port 0: any free port); rejects with the listen error (in use, refused). */
  static async start(
    at: { host: string; port: number },
    deps: { tokens: WebhookTokens; onHint: (key: string, namedJobId: string | null) => HintStep; limits: ReceiverLimits; log: Logger; now?: () => number },
  ): Promise<WebhookReceiver> {
    const server = createServer({ requestTimeout: deps.limits.requestTimeoutMs, headersTimeout: deps.limits.requestTimeoutMs, keepAliveTimeout: 5_000, maxHeaderSize: 8 * 1024 });
    server.maxConnections = deps.limits.maxConnections;
    const receiver = new WebhookReceiver(server, deps.tokens, deps.onHint, deps.limits, deps.log, deps.now ?? Date.now);
    server.on("request", (req, res) => receiver.handle(req, res));
    // A client that breaks its connection is its own problem, never the run's.
    server.on("clientError", (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(at.port, at.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return receiver;
  }

  address(): { host: string; port: number } {
    const info = this.server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.counts.received++;
    const from = req.socket.remoteAddress ?? "?";
    if (!this.total.take() || !this.allowanceOf(from).take()) return this.refuse(req, res, 429, "limited");
    if (req.method !== "POST") return this.refuse(req, res, 405, "notPost");
    const target = keyAndToken(req.url ?? "");
    if (target === null || !this.tokens.verify(target.key, target.token)) return this.refuse(req, res, 404, "badAddress");
    if (Number(req.headers["content-length"] ?? 0) > this.limits.maxBodyBytes) return this.refuse(req, res, 413, "tooLarge");
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > this.limits.maxBodyBytes) {
        over = true;
        this.refuse(req, res, 413, "tooLarge");
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (over) return;
      this.counts.toBoard++;
      const step = this.onHint(target.key, namedJobOf(Buffer.concat(chunks).toString("utf8")));
      if (this.log.isLevelEnabled("debug")) this.log.debug({ item: target.key }, `webhook for ${target.key}: ${step.step === "ignore" ? `ignored (${step.reason})` : "reading its job now"}`);
      // The same answer whatever the board did: a sender learns nothing of the run's state.
      res.writeHead(202, { "content-length": "0" });
      res.end();
    });
  }

  private refuse(req: IncomingMessage, res: ServerResponse, status: number, counter: Exclude<keyof ReceiverCounts, "received" | "toBoard">): void {
    this.counts[counter]++;
    if (this.log.isLevelEnabled("debug")) this.log.debug({ status }, `webhook request refused (${status} ${counter})`);
    if (!res.headersSent) {
      res.writeHead(status, { "content-length": "0", connection: "close" });
      res.end();
    }
    // Whatever else the request sends is not read: the connection closes after the answer.
    res.on("finish", () => req.destroy());
  }

  private allowanceOf(address: string): Allowance {
    let allowance = this.perAddress.get(address);
    if (allowance === undefined) {
      // Many addresses (spoofed or a botnet) cannot grow the map: the oldest is forgotten.
      if (this.perAddress.size >= MAX_ADDRESSES) this.perAddress.delete(this.perAddress.keys().next().value!);
      allowance = new Allowance(this.limits.perAddressPerSecond, this.limits.perAddressBurst, this.now);
      this.perAddress.set(address, allowance);
    }
    return allowance;
  }
}
