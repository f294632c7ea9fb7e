// `imgbatch status <manifest>`: the morning answer. Counts by state, credits, failures with
// reasons, the last runs, and items no longer in the manifest. `--json` for machines.
import { existsSync } from "node:fs";
import { EXIT, ExitError } from "../errors.js";
import { ITEM_STATES } from "../store/states.js";
import { Store, type StateCounts } from "../store/store.js";
import type { LockHolder, RunRecord } from "../store/types.js";
import type { CommandContext } from "./context.js";
import { lockIsStale } from "./lock.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { runPaths } from "./paths.js";
import { formatDuration } from "./progress.js";

export interface StatusReport {
  name: string;
  db: string;
  counts: StateCounts;
  credits: number;
  failed: { key: string; code: string; message: string }[];
  failureReasons: { code: string; count: number; example: string }[];
  notInManifest: { key: string; state: string }[];
  /** Newest first. */
  runs: {
    id: number;
    startedAt: string;
    /** null while the run is in progress, or when its process died and no run has started since. */
    endedAt: string | null;
    /** done | some-failed | stopped | fatal | died | running */
    outcome: string;
    exitCode: number | null;
    stopReason: string | null;
    pid: number;
    host: string;
    itemsDone: number;
    itemsFailed: number;
    credits: number;
    /** Why items failed in this run (its own events), most common first. */
    failureReasons: { code: string; count: number }[];
  }[];
}

/**
 * A run without an outcome is in progress only while its process holds the lock; otherwise
 * it died (killed, crashed) and the next run has not closed it yet.
 */
function openRunOutcome(run: RunRecord, holder: LockHolder | null, now: number): "running" | "died" {
  return holder !== null && holder.runId === run.id && !lockIsStale(holder, now) ? "running" : "died";
}

export function buildStatus(store: Store, name: string, db: string, runLimit = 5, now = Date.now()): StatusReport {
  const failedItems = store.inStates(["failed"]);
  const holder = store.lockHolder();
  return {
    name,
    db,
    counts: store.counts(),
    credits: store.totalCredits(),
    failed: failedItems.map((i) => ({ key: i.key, code: i.errorCode ?? "UNKNOWN", message: i.errorMessage ?? "" })),
    failureReasons: store.failureReasons(5),
    notInManifest: store.removedFromManifest().map((i) => ({ key: i.key, state: i.state })),
    runs: store.recentRuns(runLimit).map((r: RunRecord) => {
      const outcome = r.outcome ?? openRunOutcome(r, holder, now);
      return {
        id: r.id,
        startedAt: new Date(r.startedAt).toISOString(),
        endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
        outcome,
        exitCode: r.exitCode,
        stopReason: r.stopReason ?? (outcome === "died" ? "no clean exit: killed or crashed" : null),
        pid: r.pid,
        host: r.host,
        itemsDone: r.itemsDone,
        itemsFailed: r.itemsFailed,
        credits: Math.round(r.credits * 1000) / 1000,
        failureReasons: store.runFailureReasons(r.id).map(({ code, count }) => ({ code, count })),
      };
    }),
  };
}

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  const total = ITEM_STATES.reduce((sum, s) => sum + report.counts[s], 0);
  lines.push(`${report.name}: ${report.counts.done}/${total} done, ${report.counts.failed} failed · ${Math.round(report.credits * 100) / 100} credits spent`);
  lines.push(`  ${ITEM_STATES.map((s) => `${s} ${report.counts[s]}`).join(" · ")}`);
  if (report.runs.length) {
    lines.push("", "Last runs (newest first):");
    for (const r of report.runs) {
      const end = r.endedAt ? `${r.endedAt} (${formatDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt))})` : r.outcome === "running" ? "still running" : "—";
      const how = r.outcome === "running" ? `running (pid ${r.pid} on ${r.host})` : `${r.outcome}${r.exitCode === null ? "" : `, exit ${r.exitCode}`}${r.stopReason ? ` (${r.stopReason})` : ""}`;
      lines.push(`  #${r.id} ${r.startedAt} → ${end}  ${how} · ${r.itemsDone} done, ${r.itemsFailed} failed, ${r.credits} credits`);
      if (r.failureReasons.length) lines.push(`      failures: ${r.failureReasons.map((f) => `${f.count} × ${f.code}`).join(", ")}`);
    }
  }
  if (report.failureReasons.length) {
    lines.push("", "Failure reasons:");
    for (const f of report.failureReasons) lines.push(`  ${String(f.count).padStart(4)} × ${f.code}: ${f.example}`);
  }
  if (report.failed.length) {
    lines.push("", "Failed items (re-run with: imgbatch retry <manifest> [--rows ids] [--code CODE]):");
    for (const f of report.failed.slice(0, 50)) lines.push(`  ${f.key}  ${f.code}: ${f.message}`);
    if (report.failed.length > 50) lines.push(`  … and ${report.failed.length - 50} more (status --json lists all)`);
  }
  if (report.notInManifest.length) {
    lines.push("", `No longer in the manifest (left alone): ${report.notInManifest.length}`);
    for (const r of report.notInManifest.slice(0, 20)) lines.push(`  ${r.key} (${r.state})`);
  }
  return `${lines.join("\n")}\n`;
}

export async function statusCommand(manifestPath: string, options: { db?: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest.name, options);
  if (!existsSync(paths.db)) throw new ExitError(EXIT.usage, `no database at ${paths.db}: this manifest has not been run yet (imgbatch run ${manifestPath})`);
  const store = Store.open(paths.db, { readonly: true });
  try {
    const report = buildStatus(store, manifest.name, paths.db, 5, ctx.now());
    ctx.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
    return EXIT.ok;
  } finally {
    store.close();
  }
}
