import type { ImageRequest, ProviderName, ReferenceContentType } from "../providers/provider.js";
import type { QcSettings } from "./qc.js";

export type OutputFormat = "jpeg" | "webp" | "png" | "avif";

/** A named output made from every delivered image (e.g. a 1080×1920 story). */
export interface RenditionSpec {
  name: string;
  width: number;
  height: number;
  fit: "cover" | "contain";
  position: "attention" | "entropy" | "centre";
  format: OutputFormat;
  quality: number;
}

export interface ThumbnailSpec {
  /** Longest side in pixels. */
  size: number;
  format: OutputFormat;
  quality: number;
}

/** One image to make: a manifest row after variants, matrix and templates. */
export interface PlannedItem {
  /** Stable, filename-safe: `<rowId>[--<matrix slug>...][--vN]`. */
  key: string;
  rowId: string;
  /** Where the row stands in its file, for messages: `example.yaml line 12`, `example.csv row 4`. */
  source: string;
  /** 1-based variant number when the row asks for more than one, else null. */
  variant: number | null;
  /** Matrix axis → value chosen for this item, in declared order. */
  matrix: Record<string, string>;
  request: ImageRequest;
}

/** A local reference image the manifest names (one per distinct file, by its bytes). */
export interface ReferenceFile {
  sha256: string;
  contentType: ReferenceContentType;
  bytes: number;
  /** Absolute: the first path the manifest gives for these bytes. */
  path: string;
}

/** What a look at a reference file found: the file, or why it cannot be one. */
export type ReferenceInspection = { ok: true; sha256: string; contentType: ReferenceContentType; bytes: number } | { ok: false; problem: string };

/**
 * The port to the files a manifest names as references (its one I/O besides the manifest
 * itself): assets/reference-files.ts reads them; tests give a table.
 */
export type InspectReference = (absolutePath: string) => ReferenceInspection;

/**
 * Where each item's finished job is reported (`webhook:` of its row, else of `defaults`). Kept
 * apart from the request: not hashed, not stored, read from the manifest by each run, so a
 * changed URL remakes nothing and reaches every item submitted from then on. Per row, not per
 * item, so a run of 100,000 items holds one entry per row that names its own.
 */
export interface WebhookPlan {
  fallback: string | null;
  byRow: ReadonlyMap<string, string>;
}

export const NO_WEBHOOKS: WebhookPlan = { fallback: null, byRow: new Map() };

/** The webhook the manifest gives the items of this row, or null. */
export function webhookOf(plan: WebhookPlan, rowId: string): string | null {
  return plan.byRow.get(rowId) ?? plan.fallback;
}

export interface Manifest {
  /** Names the database and the output folder: `jobs/<name>.sqlite`, `output/<name>/`. */
  name: string;
  /** Absolute path of the manifest file. */
  file: string;
  provider: ProviderName | null;
  items: PlannedItem[];
  renditions: RenditionSpec[];
  thumbnail: ThumbnailSpec;
  /** Which quality gates run after each delivery (the `qc:` section, or the defaults). */
  qc: QcSettings;
  /** The local reference images its items use, each file once. */
  references: ReferenceFile[];
  webhooks: WebhookPlan;
}

/** One thing wrong with a manifest, located well enough to fix it without searching. */
export interface ManifestIssue {
  /** File name as given by the user. */
  file: string;
  /** YAML: 1-based line of the offending node. */
  line?: number;
  /** CSV: 1-based data row number, the header not counted (a spreadsheet shows it as row+1). */
  row?: number;
  /** Path of the field: `rows[3].style`, `defaults.model`, or the CSV column name; "" for the file as a whole. */
  field: string;
  message: string;
}

export function formatIssue(issue: ManifestIssue): string {
  const where =
    issue.row !== undefined
      ? `${issue.file} row ${issue.row}${issue.line !== undefined ? ` (line ${issue.line})` : ""}`
      : issue.line !== undefined
        ? `${issue.file} line ${issue.line}`
        : issue.file;
  return issue.field === "" ? `${where}: ${issue.message}` : `${where}, ${issue.field}: ${issue.message}`;
}

export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(readonly issues: ManifestIssue[]) {
    super(issues.map(formatIssue).join("\n"));
  }
}
