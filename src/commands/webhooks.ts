// A run's webhooks: the manifest's, forwarded with each submit, and with `--listen` a receiver
// whose per-item addresses go with the items that have none, so a finished job is read at once.
// Orchestration only: the routes, the tokens, the receiver and the board are the runner's.
import { DEFAULTS } from "../defaults.js";
import { EXIT, ExitError } from "../errors.js";
import type { Logger } from "../log.js";
import type { WebhookPlan } from "../manifest/types.js";
import type { ProviderName } from "../providers/provider.js";
import { receiverLimits, WebhookReceiver } from "../runner/webhook-receiver.js";
import { WebhookRoutes } from "../runner/webhook-routes.js";
import { WebhookTokens } from "../runner/webhook-tokens.js";

export interface ListenOptions {
  /** `--listen [HOST:]PORT` (host 127.0.0.1 unless given). */
  listen?: { host: string; port: number };
  /** `--public-url`: where the service reaches the receiver (a proxy or tunnel in front of it). */
  publicUrl?: string;
}

export interface RunWebhooks {
  routes: WebhookRoutes;
  /** Stops the receiver (if any) and logs what it received, used and ignored. */
  close(): Promise<void>;
}

export async function startWebhooks(plan: WebhookPlan, options: ListenOptions, provider: ProviderName, concurrency: number, log: Logger): Promise<RunWebhooks> {
  const forwards = plan.fallback !== null || plan.byRow.size > 0;
  if (forwards && provider === "local") log.info("the manifest names webhooks: the local renderer sends none (they go with pictory submits)");
  const { listen, publicUrl } = options;
  if (listen === undefined || publicUrl === undefined) return { routes: new WebhookRoutes(plan, null), close: async () => {} };
  if (provider === "local") {
    log.warn("--listen: the local renderer sends no webhooks; not listening");
    return { routes: new WebhookRoutes(plan, null), close: async () => {} };
  }
  if (plan.fallback !== null) {
    log.warn("--listen: every item has the manifest's own webhook (defaults.webhook), so none gets this run's address; not listening, polling as usual");
    return { routes: new WebhookRoutes(plan, null), close: async () => {} };
  }
  const tokens = new WebhookTokens();
  const routes = new WebhookRoutes(plan, { publicUrl, tokens });
  let receiver: WebhookReceiver;
  try {
    receiver = await WebhookReceiver.start(listen, { tokens, onHint: (key, job) => routes.board.hint(key, job), limits: receiverLimits(concurrency), log });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    const why = code === "EADDRINUSE" ? "the port is in use" : code === "EACCES" ? "not allowed (a port below 1024 needs privileges)" : code === "EADDRNOTAVAIL" || code === "ENOTFOUND" ? "no such address on this machine" : code;
    throw new ExitError(EXIT.usage, `--listen ${listen.host}:${listen.port}: cannot listen (${why}); nothing was submitted`);
  }
  const at = receiver.address();
  const { first, later } = DEFAULTS.hintStretch;
  log.info(
    `listening for webhooks on ${at.host}:${at.port}; items without a webhook of their own send ${publicUrl.replace(/\/+$/, "")}/<key>/<token> with their submit. ` +
      `A webhook is only a hint: each job is confirmed by reading it; until one comes, jobs are read ${first}× later than the estimate, then ${later}× less often`,
  );
  return {
    routes,
    close: async () => {
      await receiver.close();
      const r = receiver.counts;
      const b = routes.board.counts;
      if (r.received === 0) {
        log.warn(`--listen: no webhook reached ${at.host}:${at.port} during the run; is ${new URL(publicUrl).origin} forwarded to it? (polling found the images)`);
        return;
      }
      const ignored = b.repeat + b.finished + b["unknown-job"];
      const refused = r.badAddress + r.limited + r.tooLarge + r.notPost;
      log.info(
        { webhooks: { ...r, ...b } },
        `webhooks: ${r.received} received, ${b.used} used as hints; ${ignored} ignored (${b.repeat} repeated, ${b.finished} for items no longer at the service, ${b["unknown-job"]} naming another job); ` +
          `${refused} refused (${r.badAddress} to no item's address, ${r.limited} over the rate limit, ${r.tooLarge} too large, ${r.notPost} not POST)`,
      );
    },
  };
}
