// Typed reads from a YAML node tree that report a located issue instead of throwing.
// Works on the Document (not on toJS output) so that every value keeps its line.
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Scalar, type YAMLMap, type YAMLSeq } from "yaml";
import type { IssueList, Where } from "./draft.js";
import { describeKnown, unknownKeyMessage } from "./values.js";

export type YamlNode = Scalar | YAMLMap | YAMLSeq;

export interface MapEntry {
  key: string;
  /** null when the key has no value at all (`style:`). */
  node: YamlNode | null;
  at: Where;
}

export class YamlReader {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    readonly issues: IssueList,
  ) {}

  /** Follows an alias to its anchor; plain nodes pass through. */
  resolve(node: unknown): YamlNode | null {
    if (isAlias(node)) return node.resolve(this.doc) ?? null;
    if (isScalar(node) || isMap(node) || isSeq(node)) return node;
    return null;
  }

  lineOf(node: unknown): number | undefined {
    const range = (node as { range?: readonly number[] | null } | null)?.range;
    const start = range?.[0];
    return start === undefined ? undefined : this.lineCounter.linePos(start).line;
  }

  where(field: string, node: unknown, fallbackLine?: number): Where {
    const line = this.lineOf(node) ?? fallbackLine;
    return line === undefined ? { field } : { field, line };
  }

  /**
   * A mapping's entries by key, reporting keys outside `known` (with the list of known
   * ones) and keys that are not plain text. Returns null, with an issue, for a non-mapping.
   */
  entries(node: YamlNode | null, at: Where, known: readonly string[] | null, what: string): Map<string, MapEntry> | null {
    if (!isMap(node)) {
      this.issues.add(at, `${what} must be a mapping of key: value${known ? ` (keys: ${describeKnown(known)})` : ""}, not ${describe(node)}`);
      return null;
    }
    const result = new Map<string, MapEntry>();
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key);
      const keyLine = this.lineOf(pair.key) ?? at.line;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        this.issues.add(this.where(at.field, pair.key, at.line), `${what} has a key that is not plain text`);
        continue;
      }
      const key = String(keyNode.value);
      const field = at.field === "" ? key : `${at.field}.${key}`;
      if (known !== null && !known.includes(key)) {
        this.issues.add(this.where(field, pair.key, keyLine), unknownKeyMessage(key, known, what));
        continue;
      }
      const valueNode = this.resolve(pair.value);
      const hasValue = valueNode !== null && !(isScalar(valueNode) && valueNode.value === null);
      result.set(key, {
        key,
        node: hasValue ? valueNode : null,
        at: this.where(field, hasValue ? valueNode : pair.key, keyLine),
      });
    }
    return result;
  }

  /** Text of a scalar; numbers and booleans keep the spelling they were written with. */
  text(entry: MapEntry | undefined): string | undefined {
    if (entry === undefined || entry.node === null) return undefined;
    const text = scalarText(entry.node);
    if (text === undefined) this.issues.add(entry.at, `must be text, not ${describe(entry.node)}`);
    return text;
  }

  integer(entry: MapEntry | undefined, min: number, max: number): number | undefined {
    if (entry === undefined || entry.node === null) return undefined;
    const node = entry.node;
    if (isScalar(node) && typeof node.value === "number" && Number.isInteger(node.value)) {
      if (node.value >= min && node.value <= max) return node.value;
      this.issues.add(entry.at, `${node.value} is out of range: must be a whole number from ${min} to ${max}`);
      return undefined;
    }
    this.issues.add(entry.at, `must be a whole number from ${min} to ${max}, not ${describe(node)}`);
    return undefined;
  }

  sequence(entry: MapEntry, what: string): YAMLSeq | null {
    if (isSeq(entry.node)) return entry.node;
    this.issues.add(entry.at, `${what} must be a list, not ${describe(entry.node)}`);
    return null;
  }
}

export function scalarText(node: YamlNode | null): string | undefined {
  if (!isScalar(node)) return undefined;
  const value = node.value;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return node.source ?? String(value);
  }
  return undefined;
}

export function describe(node: YamlNode | null): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  const value = node.value;
  if (value === null) return "nothing";
  if (typeof value === "string") return `the text ${JSON.stringify(value)}`;
  return `${typeof value} ${String(node.source ?? value)}`;
}
