// What a run shows while it works. In a terminal: one status line redrawn in place (done/
// total, counts per state, images per minute, ETA, credits, last failure). Elsewhere: a
// one-line summary at info every 30 s and at the end; transitions at debug.
import { DEFAULTS } from "../defaults.js";
import type { Logger } from "../log.js";
import { formatCredits, roundCredits } from "../report/format.js";
import type { Terminal } from "../report/terminal.js";
import type { RunSummary, TransitionEvent } from "../runner/runner.js";
import type { StateCounts, Store } from "../store/port.js";

export interface Progress {
  onTransition(event: TransitionEvent): void;
  stop(): void;
  finalLine(summary: RunSummary): Promise<void>;
}

export interface ProgressFigures {
  counts: StateCounts;
  total: number;
  doneThisRun: number;
  elapsedMs: number;
  credits: number;
  lastFailure: string | null;
  /** The run is over (finished or stopped): its summary has no ETA. */
  ended: boolean;
}

/** The shared one-line summary, e.g. `12/40 done · 3 running · 1 failed · 8.0/min · ETA 3m30s · 24 credits`. */
export function formatProgress(f: ProgressFigures): string {
  const c = f.counts;
  const perMinute = f.elapsedMs > 0 ? (f.doneThisRun / f.elapsedMs) * 60_000 : 0;
  const remaining = c.queued + c.submitting + c.running + c.downloading;
  const parts = [`${c.done}/${f.total} done`];
  for (const state of ["queued", "submitting", "running", "downloading", "failed", "missing"] as const) if (c[state] > 0) parts.push(`${c[state]} ${state}`);
  // No rate for a run that has made nothing (yet): "0.0/min" says nothing, and no ETA follows.
  if (f.doneThisRun > 0 && perMinute > 0) {
    const eta = !f.ended && remaining > 0 ? ` · ETA ${formatDuration((remaining / perMinute) * 60_000)}` : "";
    parts.push(`${perMinute.toFixed(1)}/min${eta}`);
  }
  parts.push(`${formatCredits(f.credits)} credits`);
  if (f.lastFailure) parts.push(`last failure: ${f.lastFailure}`);
  return parts.join(" · ");
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

export async function startProgress(input: { store: Store; logger: Logger; terminal: Terminal | null; quiet: boolean; now: () => number }): Promise<Progress> {
  const { store, logger, terminal, now } = input;
  const startedAt = now();
  let doneThisRun = 0;
  let credits = 0;
  let lastFailure: string | null = null;
  let counts = await store.counts();
  let ended = false;
  const figures = (): ProgressFigures => ({
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    doneThisRun,
    elapsedMs: now() - startedAt,
    credits: roundCredits(credits),
    lastFailure,
    ended,
  });
  let redrawScheduled = false;
  const redraw = () => {
    redrawScheduled = false;
    if (terminal && !input.quiet) terminal.setStatus(formatProgress(figures()));
  };
  const timer = setInterval(
    () => {
      void store.counts().then(
        (read) => {
          counts = read;
          if (terminal && !input.quiet) redraw();
          else logger.info({ summary: figures() }, formatProgress(figures()));
        },
        // A database that stopped answering: the run's next write stops it (exit 3).
        () => {},
      );
    },
    terminal ? 1000 : DEFAULTS.summaryEveryMs,
  );
  timer.unref();
  return {
    onTransition(event) {
      counts[event.from]--;
      counts[event.to]++;
      if (event.to === "done") doneThisRun++;
      if (event.from === "running" && event.to === "downloading") credits += event.item.credits ?? 0;
      if (event.to === "failed") lastFailure = `${event.item.key}: ${event.item.errorCode ?? ""} ${event.item.errorMessage ?? ""}`.trim();
      if (terminal && !input.quiet && !redrawScheduled) {
        redrawScheduled = true;
        setTimeout(redraw, 100).unref();
      }
    },
    stop() {
      clearInterval(timer);
      terminal?.clearStatus();
    },
    async finalLine(summary) {
      counts = await store.counts();
      credits = summary.creditsThisRun;
      ended = true;
      const line = formatProgress(figures());
      logger.info({ summary: figures(), stopReason: summary.stopReason }, `${summary.stopReason ? `stopped (${summary.stopReason})` : "finished"}: ${line}`);
    },
  };
}
