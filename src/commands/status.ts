// `imgbatch status <manifest>`: the morning answer. Counts by state, credits, failures with
// reasons, the last runs, and items no longer in the manifest. `--json` for machines.
import { outputLayout } from "../assets/image-stage.js";
import { listSuperseded, type SupersededSet } from "../assets/superseded.js";
import { EXIT } from "../errors.js";
import { formatCredits, formatLocalTime, roundCredits } from "../report/format.js";
import { ITEM_STATES } from "../store/states.js";
import type { Store, StateCounts } from "../store/port.js";
import type { LockHolder, RunRecord } from "../store/types.js";
import type { CommandContext } from "./context.js";
import { lockIsStale } from "./lock.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit } from "./open-store.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";
import { formatDuration } from "./progress.js";

export interface StatusReport {
  name: string;
  db: string;
  counts: StateCounts;
  /** Rounded to the hundredth, as the service charges (report/format.ts). */
  credits: number;
  failed: { key: string; rowId: string; code: string; message: string }[];
  /** Why the items failed now are failed (whichever run failed them), most common first. */
  failureReasons: { code: string; count: number; example: string }[];
  notInManifest: { key: string; state: string }[];
  /** Images lost from disk that the service no longer has: only `retry --missing` pays for them again. */
  missing: { key: string; message: string }[];
  /** The morning review: decisions on the delivered images (a remade image starts undecided). */
  review: { approved: number; rejected: number; undecided: number; rejectedKeys: string[] };
  /** The workers at work now (a shared PostgreSQL run can have several), with the items each holds. */
  workers: { worker: string; host: string; pid: number; heartbeatAt: string; itemsInHand: number }[];
  /** Delivered images the quality gates flagged for a person's look. */
  qcFlagged: { key: string; flags: string[] }[];
  /** Earlier images of items made anew, kept under the output folder's superseded/ (never deleted). */
  superseded: { key: string; n: number; image: string | null; provider: string | null; deliveredAt: string | null }[];
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
    provider: string;
    /** null while the run is open (running, or died and not yet closed): written when it ends. */
    itemsDone: number | null;
    /** An open run's are counted from its events so far. */
    itemsFailed: number;
    /** null while the run is open, like itemsDone. */
    credits: number | null;
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

/** Enough to count every failure of a run: the codes of one run are a handful. */
const ALL_CODES = 1000;
/** Reasons shown per run. */
const RUN_REASONS = 5;

export async function buildStatus(store: Store, name: string, db: string, runLimit = 5, now = Date.now(), superseded: readonly SupersededSet[] = []): Promise<StatusReport> {
  const failedItems = await store.inStates(["failed"]);
  const doneItems = await store.inStates(["done"]);
  const decisions = await store.currentDecisions();
  const decisionOf = (key: string, sha256: string | null) => {
    const d = decisions.get(key);
    return d && d.sha256 === sha256 ? d.decision : "undecided";
  };
  const decided = doneItems.map((i) => ({ key: i.key, decision: decisionOf(i.key, i.sha256) }));
  const holder = await store.lockHolder();
  const runs = await store.recentRuns(runLimit);
  const reasonsOfRuns = await Promise.all(runs.map((r) => store.runFailureReasons(r.id, ALL_CODES)));
  return {
    name,
    db,
    counts: await store.counts(),
    credits: roundCredits(await store.totalCredits()),
    failed: failedItems.map((i) => ({ key: i.key, rowId: i.rowId, code: i.errorCode ?? "UNKNOWN", message: i.errorMessage ?? "" })),
    failureReasons: await store.failureReasons(5),
    notInManifest: (await store.removedFromManifest()).map((i) => ({ key: i.key, state: i.state })),
    missing: (await store.inStates(["missing"])).map((i) => ({ key: i.key, message: i.errorMessage ?? "" })),
    review: {
      approved: decided.filter((d) => d.decision === "approved").length,
      rejected: decided.filter((d) => d.decision === "rejected").length,
      undecided: decided.filter((d) => d.decision === "undecided").length,
      rejectedKeys: decided.filter((d) => d.decision === "rejected").map((d) => d.key),
    },
    workers: (await store.liveWorkers())
      .filter((w) => !lockIsStale({ runId: 0, pid: w.pid, host: w.host, startedAt: 0, heartbeatAt: w.heartbeatAt }, now))
      .map((w) => ({ ...w, heartbeatAt: new Date(w.heartbeatAt).toISOString() })),
    qcFlagged: doneItems.filter((i) => i.qcFlags.length > 0).map((i) => ({ key: i.key, flags: i.qcFlags.map((f) => `${f.gate}: ${f.message}`) })),
    superseded: superseded.map((s) => ({ key: s.key, n: s.n, image: s.image, provider: s.sidecar?.provider ?? null, deliveredAt: s.sidecar?.times?.delivered ?? null })),
    runs: runs.map((r: RunRecord, index) => {
      const outcome = r.outcome ?? openRunOutcome(r, holder, now);
      const reasons = reasonsOfRuns[index]!.map(({ code, count }) => ({ code, count }));
      // A run's figures are written when it ends; until then its failures are its events.
      const open = r.outcome === null;
      return {
        id: r.id,
        startedAt: new Date(r.startedAt).toISOString(),
        endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
        outcome,
        exitCode: r.exitCode,
        stopReason: r.stopReason ?? (outcome === "died" ? "no clean exit: killed or crashed" : null),
        pid: r.pid,
        host: r.host,
        provider: r.provider,
        itemsDone: open ? null : r.itemsDone,
        itemsFailed: open ? reasons.reduce((sum, f) => sum + f.count, 0) : r.itemsFailed,
        credits: open ? null : roundCredits(r.credits),
        failureReasons: reasons.slice(0, RUN_REASONS),
      };
    }),
  };
}

/** How the user named the manifest (and database) on the command line: the hints repeat it. */
export interface StatusInvocation {
  /** The manifest's path as typed. */
  manifest: string;
  /** `--db` as typed, if given. */
  db?: string;
  /** The provider a retry without `--provider` would use: the manifest's, else the one remembered. */
  manifestProvider?: string | null;
}

/** Above this many failed rows, the hint re-runs every failed item instead of listing rows. */
const HINT_MAX_ROWS = 10;

/** A word the shell passes through as it is, else single-quoted. */

/** `imgbatch retry <manifest> [--db …]` as the user typed them. */
function retryBase(invocation: StatusInvocation): string[] {
  return ["imgbatch", "retry", shellWord(invocation.manifest), ...(invocation.db === undefined ? [] : ["--db", shellWord(invocation.db)])];
}

/** The commands that re-run the failed items, as the user would type them here. */
function retryCommands(report: StatusReport, invocation: StatusInvocation): { label: string; command: string }[] {
  const base = retryBase(invocation);
  // Made by another provider than a bare retry would use: say which, or the retry would switch.
  const lastProvider = report.runs[0]?.provider;
  if (lastProvider && lastProvider !== (invocation.manifestProvider ?? "local")) base.push("--provider", lastProvider);
  const rows = [...new Set(report.failed.map((f) => f.rowId))];
  const all = report.failed.length === 1 ? "the failed item" : `all ${report.failed.length} failed items`;
  const commands = [
    rows.length <= HINT_MAX_ROWS
      ? { label: `${all} (row${rows.length === 1 ? "" : "s"} ${rows.join(", ")})`, command: [...base, "--rows", rows.join(",")].join(" ") }
      : { label: all, command: base.join(" ") },
  ];
  if (report.failureReasons.length > 1) {
    for (const f of report.failureReasons) commands.push({ label: `only ${f.code} (${f.count})`, command: [...base, "--code", f.code].join(" ") });
  }
  return commands;
}

function formatRunTimes(r: StatusReport["runs"][number]): string {
  const start = formatLocalTime(Date.parse(r.startedAt));
  if (r.endedAt) return `${start} → ${formatLocalTime(Date.parse(r.endedAt))} (${formatDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt))})`;
  return `${start} → ${r.outcome === "running" ? "still running" : "—"}`;
}

export function formatStatus(report: StatusReport, invocation: StatusInvocation = { manifest: "<manifest>" }): string {
  const lines: string[] = [];
  const total = ITEM_STATES.reduce((sum, s) => sum + report.counts[s], 0);
  lines.push(`${report.name}: ${report.counts.done}/${total} done, ${report.counts.failed} failed · ${formatCredits(report.credits)} credits spent`);
  lines.push(`  ${ITEM_STATES.map((s) => `${s} ${report.counts[s]}`).join(" · ")}`);
  if (report.workers.length > 1 || (report.workers.length === 1 && report.runs[0]?.outcome === "running")) {
    lines.push("", "Workers at work:");
    for (const w of report.workers) lines.push(`  ${w.worker}  last heartbeat ${formatLocalTime(Date.parse(w.heartbeatAt))} · ${w.itemsInHand} item(s) in hand`);
  }
  if (report.runs.length) {
    lines.push("", "Last runs (newest first):");
    for (const r of report.runs) {
      const how = r.outcome === "running" ? `running (pid ${r.pid} on ${r.host})` : `${r.outcome}${r.exitCode === null ? "" : `, exit ${r.exitCode}`}${r.stopReason ? ` (${r.stopReason})` : ""}`;
      // An open run's done count and credits are written when it ends: only its failures are known.
      const figures =
        r.itemsDone === null || r.credits === null
          ? `${r.itemsFailed} failed so far`
          : `${r.itemsDone} done, ${r.itemsFailed} failed, ${formatCredits(r.credits)} credits`;
      lines.push(`  #${r.id} ${formatRunTimes(r)}  ${how} · ${figures}`);
      if (r.failureReasons.length) lines.push(`      failures: ${r.failureReasons.map((f) => `${f.count} × ${f.code}`).join(", ")}`);
    }
  }
  if (report.failureReasons.length) {
    lines.push("", "Items failed now, by reason:");
    for (const f of report.failureReasons) lines.push(`  ${String(f.count).padStart(4)} × ${f.code}: ${f.example}`);
  }
  if (report.failed.length) {
    lines.push("", "Failed items:");
    for (const f of report.failed.slice(0, 50)) lines.push(`  ${f.key}  ${f.code}: ${f.message}`);
    if (report.failed.length > 50) lines.push(`  … and ${report.failed.length - 50} more (status --json lists all)`);
    lines.push("", "Re-run them:");
    const commands = retryCommands(report, invocation);
    const width = Math.max(...commands.map((c) => c.command.length));
    for (const c of commands) lines.push(`  ${c.command.padEnd(width)}   # ${c.label}`);
  }
  if (report.missing.length) {
    lines.push("", `Missing (paid images gone from disk that their jobs could not give again; each run asks again for free): ${report.missing.length}`);
    for (const m of report.missing.slice(0, 20)) lines.push(`  ${m.key}  ${m.message}`);
    lines.push(`  Pay for them again: ${[...retryBase(invocation), "--missing"].join(" ")}`);
  }
  const { approved, rejected, undecided } = report.review;
  if (approved + rejected > 0 || report.counts.done > 0) {
    lines.push("", `Review: ${approved} approved · ${rejected} rejected · ${undecided} undecided (imgbatch review ${shellWord(invocation.manifest)})`);
    if (rejected) lines.push(`  Remake the rejected: ${[...retryBase(invocation), "--rejected"].join(" ")}`);
    if (approved) lines.push(`  Hand off the approved: imgbatch export ${shellWord(invocation.manifest)} --approved --zip approved.zip`);
  }
  if (report.qcFlagged.length) {
    lines.push("", `Flagged by the quality gates (for a look in the review): ${report.qcFlagged.length}`);
    for (const q of report.qcFlagged.slice(0, 20)) lines.push(`  ${q.key}  ${q.flags.join("; ")}`);
    if (report.qcFlagged.length > 20) lines.push(`  … and ${report.qcFlagged.length - 20} more (status --json lists all)`);
  }
  if (report.notInManifest.length) {
    lines.push("", `No longer in the manifest (left alone): ${report.notInManifest.length}`);
    for (const r of report.notInManifest.slice(0, 20)) lines.push(`  ${r.key} (${r.state})`);
  }
  if (report.superseded.length) {
    lines.push("", `Superseded (earlier images of items made anew, kept on disk): ${report.superseded.length}`);
    for (const s of report.superseded.slice(0, 20)) {
      const when = s.deliveredAt && !Number.isNaN(Date.parse(s.deliveredAt)) ? `, ${formatLocalTime(Date.parse(s.deliveredAt))}` : "";
      lines.push(`  ${s.key} #${s.n}  ${s.image ?? "(no image)"}${s.provider ? ` (${s.provider}${when})` : ""}`);
    }
    if (report.superseded.length > 20) lines.push(`  … and ${report.superseded.length - 20} more (status --json lists all)`);
  }
  return `${lines.join("\n")}\n`;
}

export async function statusCommand(manifestPath: string, options: { db?: string; out?: string; json?: boolean }, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: true });
  try {
    const report = await buildStatus(store, manifest.name, paths.dbLabel, 5, ctx.now(), listSuperseded(outputLayout(paths.outDir)));
    const invocation: StatusInvocation = { manifest: manifestPath, manifestProvider: manifest.provider ?? (await store.rememberedProvider()), ...(options.db === undefined ? {} : { db: options.db }) };
    ctx.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report, invocation));
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
