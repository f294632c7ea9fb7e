// Webhook delivery (PICTORY.md Unknown 14): when a job with a `webhook` reaches a terminal
// state, POST the §2.1 GET body once, unsigned, 5 s timeout, response ignored. Faults drop,
// duplicate or delay the delivery. Timers are unref'd so they never hold the process open.
import type { SimJob, SimState } from "./state.js";

export const WEBHOOK_TIMEOUT_MS = 5_000;

interface Scheduled {
  job: SimJob;
  url: string;
  dueAt: number;
  deliveries: number;
  timer: NodeJS.Timeout | null;
}

export interface WebhookStats {
  webhooksSent: number;
  webhooksDropped: number;
  webhooksFailed: number;
}

export class WebhookSender {
  private readonly scheduled = new Set<Scheduled>();
  private readonly aborts = new Set<AbortController>();
  readonly stats: WebhookStats = { webhooksSent: 0, webhooksDropped: 0, webhooksFailed: 0 };

  constructor(
    private readonly state: SimState,
    private readonly bodyFor: (job: SimJob) => unknown,
  ) {}

  /** Called at job creation; the job's completion time is already known. */
  schedule(job: SimJob): void {
    const url = job.request.webhook;
    if (url === undefined) return;
    const plan = this.state.faults.webhookPlan(this.state.options);
    if (plan.deliveries === 0) {
      this.stats.webhooksDropped++;
      return;
    }
    const entry: Scheduled = { job, url, dueAt: job.completesAt + plan.extraDelayMs, deliveries: plan.deliveries, timer: null };
    this.scheduled.add(entry);
    this.arm(entry);
  }

  /** Delivers everything due by the sim clock (called by timers and after a clock jump). */
  pump(): void {
    const now = this.state.now();
    for (const entry of this.scheduled) {
      if (entry.dueAt > now) continue;
      this.scheduled.delete(entry);
      if (entry.timer !== null) clearTimeout(entry.timer);
      this.deliver(entry);
    }
  }

  stop(): void {
    for (const entry of this.scheduled) if (entry.timer !== null) clearTimeout(entry.timer);
    this.scheduled.clear();
    for (const abort of this.aborts) abort.abort();
    this.aborts.clear();
  }

  private arm(entry: Scheduled): void {
    const waitMs = Math.max(0, entry.dueAt - this.state.now());
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (entry.dueAt <= this.state.now()) this.pump();
      else if (this.scheduled.has(entry)) this.arm(entry);
    }, waitMs);
    entry.timer.unref();
  }

  private deliver(entry: Scheduled): void {
    this.state.settleDue();
    const body = JSON.stringify(this.bodyFor(entry.job));
    for (let i = 0; i < entry.deliveries; i++) {
      const abort = new AbortController();
      const timeout = setTimeout(() => abort.abort(), WEBHOOK_TIMEOUT_MS);
      timeout.unref();
      this.aborts.add(abort);
      this.stats.webhooksSent++;
      fetch(entry.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "User-Agent": "imgbatch-sim-webhook" },
        body,
        signal: abort.signal,
      })
        .then((response) => response.body?.cancel())
        .catch(() => {
          this.stats.webhooksFailed++;
        })
        .finally(() => {
          clearTimeout(timeout);
          this.aborts.delete(abort);
        });
    }
  }
}
