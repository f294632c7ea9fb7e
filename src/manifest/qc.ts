// The manifest's `qc:` section: which quality gates run after each delivery, and how strictly.
// The types live here, not in assets/qc.ts, because the manifest layer sits below assets.
import { DEFAULTS } from "../defaults.js";
import type { ManifestIssue } from "./types.js";
import { describeKnown, enumProblem, unknownKeyMessage } from "./values.js";

/** off: the gate does not run; flag: the item is marked for review; retry: the image is remade (paid). */
export type QcMode = "off" | "flag" | "retry";

export interface QcSettings {
  blank: QcMode;
  size: QcMode;
  duplicates: QcMode;
  /** Remakes per item that the `retry` gates may ask for, each paid like the first image. */
  maxRetries: number;
  /** An image whose every colour channel varies less than this (stdev, 0–255) is blank. */
  blankMaxDeviation: number;
  /** Below this sharpness (sharp's stats(), at 512 px) a low-contrast image is blank too. */
  blankMinSharpness: number;
  /** Perceptual hashes this many bits apart or fewer (of 64) are near-duplicates. */
  duplicateMaxDistance: number;
  /** How far (relative) the width/height ratio may be from the ratio asked for. */
  sizeTolerance: number;
}

export const QC_MODES: readonly QcMode[] = ["off", "flag", "retry"];
export const QC_KEYS = [
  "blank",
  "size",
  "duplicates",
  "maxRetries",
  "blankMaxDeviation",
  "blankMinSharpness",
  "duplicateMaxDistance",
  "sizeTolerance",
] as const satisfies readonly (keyof QcSettings)[];

const MODE_KEYS = ["blank", "size", "duplicates"] as const;
const MAX_RETRIES_LIMIT = 5;

/** Each number's range, and whether it must be whole. */
const NUMBER_RULES = {
  maxRetries: { min: 0, max: MAX_RETRIES_LIMIT, integer: true },
  blankMaxDeviation: { min: 0, max: 128, integer: false },
  blankMinSharpness: { min: 0, max: 100, integer: false },
  duplicateMaxDistance: { min: 0, max: 64, integer: true },
  sizeTolerance: { min: 0, max: 0.5, integer: false },
} as const;

export function defaultQcSettings(): QcSettings {
  return { ...DEFAULTS.qc };
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the text ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

function readMode(value: unknown): { mode: QcMode } | { problem: string } {
  // `false` is what `off` becomes under YAML 1.1 (and what people write): it means exactly off.
  if (value === false) return { mode: "off" };
  if (typeof value !== "string") return { problem: `must be one of ${describeKnown(QC_MODES)}, not ${describeValue(value)}` };
  const problem = enumProblem(value, QC_MODES, "qc mode");
  return problem === null ? { mode: value as QcMode } : { problem };
}

function readNumber(value: unknown, rule: { min: number; max: number; integer: boolean }): { value: number } | { problem: string } {
  const kind = rule.integer ? "a whole number" : "a number";
  if (typeof value !== "number" || !Number.isFinite(value) || (rule.integer && !Number.isInteger(value))) {
    return { problem: `must be ${kind} from ${rule.min} to ${rule.max}, not ${describeValue(value)}` };
  }
  if (value < rule.min || value > rule.max) return { problem: `${value} is out of range: must be ${kind} from ${rule.min} to ${rule.max}` };
  return { value };
}

/**
 * The `qc:` section (its plain value, as YAML's toJS gives it) as settings over the defaults,
 * with every problem as an issue; a bad value keeps its default. Absent or empty: the defaults.
 * `at` locates the section; `keyLines` (optional) the line of each of its keys.
 */
export function readQcSection(
  value: unknown,
  at: { file: string; line?: number },
  keyLines: Partial<Record<string, number>> = {},
): { settings: QcSettings; issues: ManifestIssue[] } {
  const settings = defaultQcSettings();
  const issues: ManifestIssue[] = [];
  const add = (field: string, message: string, line = at.line): void => {
    issues.push(line === undefined ? { file: at.file, field, message } : { file: at.file, line, field, message });
  };
  if (value === undefined || value === null) return { settings, issues };
  if (typeof value !== "object" || Array.isArray(value)) {
    add("qc", `qc must be a mapping of key: value (keys: ${describeKnown(QC_KEYS)}), not ${describeValue(value)}`);
    return { settings, issues };
  }
  for (const [key, raw] of Object.entries(value)) {
    const field = `qc.${key}`;
    const line = keyLines[key] ?? at.line;
    if (!(QC_KEYS as readonly string[]).includes(key)) {
      add(field, unknownKeyMessage(key, QC_KEYS, "qc"), line);
      continue;
    }
    if (raw === null || raw === undefined) continue; // `blank:` with nothing keeps the default
    if ((MODE_KEYS as readonly string[]).includes(key)) {
      const read = readMode(raw);
      if ("problem" in read) add(field, read.problem, line);
      else settings[key as (typeof MODE_KEYS)[number]] = read.mode;
      continue;
    }
    const numberKey = key as keyof typeof NUMBER_RULES;
    const read = readNumber(raw, NUMBER_RULES[numberKey]);
    if ("problem" in read) add(field, read.problem, line);
    else settings[numberKey] = read.value;
  }
  return { settings, issues };
}
