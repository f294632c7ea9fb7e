// The plan as a person reads it (pure). `--json` prints the PlanReport itself.
import { formatCredits } from "../report/format.js";
import type { ProviderName } from "../providers/provider.js";
import type { PlanEstimate } from "./plan-estimate.js";
import type { PlanItems } from "./plan-items.js";

export interface PlanReport extends Omit<PlanItems, "submitModels" | "references"> {
  manifest: string;
  name: string;
  db: string;
  /** False: no database yet, so nothing is done. */
  dbExists: boolean;
  provider: ProviderName;
  /** How the provider was chosen (DESIGN.md: flag > manifest > remembered > local). */
  providerFrom: string;
  /** The local reference files the items to submit use, and of them those not uploaded to this service yet. */
  references: { files: number; toUpload: number };
  estimate: PlanEstimate;
  /** With PICTORY_API_KEY and the pictory provider: the account's credits (GET /v1/quota) against the plan's. */
  account: { creditsRemaining: number | null; needed: number; enough: boolean | null } | { error: string } | null;
}

const plural = (n: number, word: string): string => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

/** `42 s`, `3 min 20 s`, `2 h 05 min`: the estimate is a rough figure, read at a glance. */
export function formatEstimate(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${Math.max(s, ms > 0 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export function formatPlan(r: PlanReport): string {
  const c = r.counts;
  const lines = [`plan for ${r.manifest}: provider ${r.provider} (${r.providerFrom}); ${r.dbExists ? `state in ${r.db}` : `no database yet at ${r.db}: nothing is done`}`];
  const row = (label: string, n: number, note = "") => lines.push(`  ${label.padEnd(11)}${n.toLocaleString("en-US").padStart(8)}${note ? `   ${note}` : ""}`);
  row("items", c.items);
  row("done", c.done);
  if (c.restored) row("restored", c.restored, "asked for again: brought back from superseded/, no charge");
  row("changed", c.changed, c.changed ? "their request or provider changed: made anew" : "");
  row("failed", c.failed, c.failed ? `left as they are (imgbatch retry would submit them: ${formatCredits(r.retryCredits)} credits)` : "");
  if (c.missing) row("missing", c.missing, "their jobs are asked again, free (retry --missing pays)");
  if (c.inFlight) row("in flight", c.inFlight, `followed at the service (${formatCredits(r.inFlightCredits)} credits when they finish)`);
  row("to submit", c.toSubmit, c.toSubmit ? [c.new && `${c.new} new`, c.changed && `${c.changed} changed`, c.queued && `${c.queued} never submitted`].filter(Boolean).join(", ") : "");
  if (r.references.files) lines.push(`  references ${plural(r.references.files, "file").padStart(8)}   ${r.references.toUpload ? `${r.references.toUpload} to upload first` : r.provider === "local" ? "read from disk" : "uploaded before: reused"}`);
  lines.push("");
  if (r.byModel.length) {
    lines.push(`  ${"provider".padEnd(10)}${"model".padEnd(16)}${"items".padStart(7)}${"credits".padStart(11)}`);
    for (const m of r.byModel) lines.push(`  ${m.provider.padEnd(10)}${m.model.padEnd(16)}${m.items.toLocaleString("en-US").padStart(7)}${formatCredits(m.credits).padStart(11)}`);
    lines.push(`  ${"total".padEnd(26)}${c.toSubmit.toLocaleString("en-US").padStart(7)}${formatCredits(r.credits).padStart(11)}`);
  } else lines.push("  nothing to submit: a run pays nothing");
  const e = r.estimate;
  if (c.toSubmit > 0) {
    const limits = `--concurrency ${e.concurrency}, ${e.rpm ? `--rpm ${e.rpm}` : "no --rpm"}`;
    lines.push("", `  estimate   about ${formatEstimate(e.ms)} at ${limits}: bound by ${e.bound}`);
    const jobs = e.jobTimes.map((j) => `${j.model} ${seconds(j.ms)} ${j.learnedFrom ? `(median of ${plural(j.learnedFrom, "job")} here)` : "(a guess: no job of it here yet)"}`);
    lines.push(`             a job holds a slot: ${jobs.join("; ")}`);
    lines.push(`             slots ${formatEstimate(e.concurrencyMs)} · rate ${e.rateMs === null ? "unlimited" : formatEstimate(e.rateMs)} · image stage ${formatEstimate(e.imageStageMs)} (${e.imagesPerSecond}/s) · last image ${seconds(e.tailMs)}`);
  }
  if (r.refused.switchProvider || r.refused.abandonInFlight) {
    lines.push("");
    if (r.refused.switchProvider) lines.push(`  refused    ${r.refused.switchProvider} paid item(s) were made by another provider: a run exits 1 unless --switch-provider (or --provider as before)`);
    if (r.refused.abandonInFlight) lines.push(`  refused    ${r.refused.abandonInFlight} changed item(s) have paid jobs still at the service: a run exits 1 unless --abandon-in-flight`);
  }
  const a = r.account;
  if (a !== null) {
    lines.push("");
    if ("error" in a) lines.push(`  account    credits unknown: ${a.error}`);
    else if (a.creditsRemaining === null) lines.push(`  account    the quota read gave no AI credits figure; this plan needs ${formatCredits(a.needed)}`);
    else lines.push(`  account    ${formatCredits(a.creditsRemaining)} AI credits left; this plan needs ${formatCredits(a.needed)}: ${a.enough ? "enough" : `NOT enough (a run stops, exit 3, when they run out)`}`);
  }
  return `${lines.join("\n")}\n`;
}
