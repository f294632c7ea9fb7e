// results.csv and results.jsonl: one line per item of the manifest, for spreadsheets and
// for machines. Paths are relative to the output folder so the folder can be handed on.
import { isAbsolute, relative } from "node:path";
import { AtomicFileWriter } from "../assets/atomic-file-writer.js";
import { referencePaths } from "../assets/reference-copies.js";
import { redactSecrets } from "../secrets.js";
import type { Store } from "../store/port.js";
import type { DecisionRecord, ItemRecord, ReportItem } from "../store/types.js";

export interface ResultLine {
  key: string;
  rowId: string;
  state: string;
  inManifest: boolean;
  prompt: string;
  model: string;
  style: string;
  aspectRatio: string;
  referenceImageUrl: string;
  /** A local reference image: its copy in the output folder (`references/<sha256>.<ext>`), or "". */
  referenceImage: string;
  provider: string;
  jobId: string;
  credits: number | null;
  width: number | null;
  height: number | null;
  sha256: string;
  image: string;
  thumbnail: string;
  renditions: Record<string, string>;
  errorCode: string;
  errorMessage: string;
  attempts: number;
  submittedAt: string;
  completedAt: string;
  updatedAt: string;
  /** The review's decision on the current image: "approved", "rejected", or "" (undecided). */
  review: string;
  reviewNote: string;
  reviewer: string;
  /** The quality gates' flags on the image, as `gate: message`. */
  qcFlags: string[];
}

const iso = (ms: number | null): string => (ms === null ? "" : new Date(ms).toISOString());

export function toResultLine(item: ItemRecord, outDir: string, renditions: Record<string, string>, decision: DecisionRecord | null = null): ResultLine {
  // Stored paths are relative to the output folder; absolute ones predate migration 6.
  const rel = (p: string | null): string => (p ? (isAbsolute(p) ? relative(outDir, p) : p).split("\\").join("/") : "");
  return {
    key: item.key,
    rowId: item.rowId,
    state: item.state,
    inManifest: item.inManifest,
    prompt: item.request.prompt,
    model: item.request.model,
    style: item.request.style ?? "",
    aspectRatio: item.request.aspectRatio,
    referenceImageUrl: item.request.referenceImageUrl ?? "",
    referenceImage: item.request.referenceImage ? referencePaths(item.request.referenceImage).image : "",
    provider: item.provider,
    jobId: item.jobId ?? item.imageRef ?? "",
    credits: item.credits,
    width: item.width ?? item.resultWidth,
    height: item.height ?? item.resultHeight,
    sha256: item.sha256 ?? "",
    image: rel(item.filePath),
    thumbnail: rel(item.thumbPath),
    renditions: Object.fromEntries(Object.entries(renditions).map(([name, path]) => [name, rel(path)])),
    // The service's words, masked again as they leave (results files and the contact sheet).
    errorCode: redactSecrets(item.errorCode ?? ""),
    errorMessage: redactSecrets(item.errorMessage ?? ""),
    attempts: item.attempts,
    submittedAt: iso(item.submittedAt),
    completedAt: iso(item.completedAt),
    updatedAt: iso(item.updatedAt),
    review: decision === null || decision.decision === "undecided" ? "" : decision.decision,
    reviewNote: decision?.note ?? "",
    reviewer: decision === null || decision.decision === "undecided" ? "" : decision.reviewer,
    qcFlags: item.qcFlags.map((f) => `${f.gate}: ${f.message}`),
  };
}

const CSV_COLUMNS: (keyof ResultLine)[] = [
  "key", "rowId", "state", "inManifest", "prompt", "model", "style", "aspectRatio", "referenceImageUrl", "referenceImage", "provider", "jobId",
  "credits", "width", "height", "sha256", "image", "thumbnail", "renditions", "errorCode", "errorMessage", "attempts",
  "submittedAt", "completedAt", "updatedAt", "review", "reviewNote", "reviewer", "qcFlags",
];

/**
 * A text cell a spreadsheet may run as a formula (OWASP, CSV injection): one that starts
 * with `=`, `+`, `-` or `@`, or with a tab or carriage return; and one whose first character
 * after leading whitespace is one of the four, as a reader that trims cells would expose it.
 */
const FORMULA_START = /^(?:[\t\r]|\s*[=+\-@])/;

/**
 * One RFC 4180 cell. A text cell that could start a formula gets a leading `'`, which is
 * then part of the cell's text; numbers are ours and stay as they are. Only the CSV is
 * changed: results.jsonl keeps every value exact.
 */
export function csvCell(value: unknown): string {
  let text =
    value === null || value === undefined
      ? ""
      : Array.isArray(value)
        ? value.map(String).join(" | ")
        : typeof value === "object"
          ? Object.entries(value).map(([k, v]) => `${k}=${String(v)}`).join(";")
          : String(value);
  if (typeof value !== "number" && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

export function resultsCsvHeader(): string {
  return `${CSV_COLUMNS.join(",")}\r\n`;
}

export function resultsCsvRow(line: ResultLine): string {
  return `${CSV_COLUMNS.map((c) => csvCell(line[c])).join(",")}\r\n`;
}

export function resultsJsonlRow(line: ResultLine): string {
  return `${JSON.stringify(line)}\n`;
}

/** A result line of a stored item; renditions count only for a delivered image, a decision only for its current one. */
export function resultLineOf({ item, renditions }: ReportItem, outDir: string, decisions: ReadonlyMap<string, DecisionRecord> = new Map()): ResultLine {
  const decision = decisions.get(item.key);
  return toResultLine(item, outDir, item.state === "done" ? renditions : {}, decision && decision.sha256 === item.sha256 ? decision : null);
}

/**
 * results.csv and results.jsonl, one item at a time from the store's pages (files written in pieces,
 * renamed into place only when whole, left alone when unchanged). Each line also goes to
 * `onLine`, so the contact sheet's counts come from the same pass.
 */
export async function writeResults(store: Store, outDir: string, onLine: (line: ResultLine) => void = () => {}, decisions?: ReadonlyMap<string, DecisionRecord>): Promise<void> {
  const decided = decisions ?? (await store.currentDecisions());
  const csv = new AtomicFileWriter(`${outDir}/results.csv`);
  const jsonl = new AtomicFileWriter(`${outDir}/results.jsonl`);
  try {
    csv.write(resultsCsvHeader());
    for await (const reportItem of store.liveItems()) {
      const line = resultLineOf(reportItem, outDir, decided);
      csv.write(resultsCsvRow(line));
      jsonl.write(resultsJsonlRow(line));
      onLine(line);
    }
  } catch (error) {
    await Promise.all([csv.abort(), jsonl.abort()]);
    throw error;
  }
  await csv.commitIfChanged();
  await jsonl.commitIfChanged();
}
