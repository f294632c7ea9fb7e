// Typed reads from a YAML node tree that report a located issue instead of throwing.
// Works on the Document (not on toJS output) so that every value keeps its line.
import { type Alias, isAlias, isMap, isScalar, isSeq, type LineCounter, type Scalar, type YAMLMap, type YAMLSeq } from "yaml";
import type { IssueList, Where } from "./draft.js";
import { characterProblem, describeKnown, unknownKeyMessage } from "./values.js";
import type { YamlAnchors } from "./yaml-anchors.js";

export type YamlNode = Scalar | YAMLMap | YAMLSeq;

export interface MapEntry {
  key: string;
  /** null when the key has no value at all (`style:`), or its alias was refused. */
  node: YamlNode | null;
  at: Where;
  /** Its value is an alias that was refused (reported): not a missing value. */
  refused?: true;
  /** No value but a comment after the key (`prompt: #1 seller`): the value was likely meant to start with "#". */
  comment?: string;
}

/**
 * Values an alias may stand for, counting every value inside it with its own aliases
 * followed. The reader never expands an alias, but a manifest whose aliases multiply (nine
 * lists of nine aliases nine deep: a "billion laughs") is refused, whoever reads it next.
 */
export const MAX_ALIAS_VALUES = 10_000;

export class YamlReader {
  private readonly refused = new Set<Alias>();

  /** `anchors`: every document read so far, this one included (yaml-anchors.ts). */
  constructor(
    private readonly anchors: YamlAnchors,
    private readonly lineCounter: LineCounter,
    readonly issues: IssueList,
  ) {}

  /** Follows an alias to its anchor (reporting one with no anchor, or one that multiplies); plain nodes pass through. */
  resolve(node: unknown, field: string): YamlNode | null {
    if (isAlias(node)) return this.resolveAlias(node, field);
    if (isScalar(node) || isMap(node) || isSeq(node)) return node;
    return null;
  }

  private resolveAlias(alias: Alias, field: string): YamlNode | null {
    const target = this.anchors.target(alias);
    const size = target === undefined ? 0 : this.anchors.sizeOf(target);
    const problem =
      target === undefined
        ? `alias *${alias.source} has no anchor &${alias.source} above it`
        : size === Number.POSITIVE_INFINITY
          ? `alias *${alias.source} is inside the value its anchor &${alias.source} names, so it never ends`
          : size > MAX_ALIAS_VALUES
            ? `alias *${alias.source} stands for ${size} values, more than the ${MAX_ALIAS_VALUES} allowed: its anchor holds aliases that multiply (a "billion laughs"); write the values out`
            : null;
    if (problem !== null) {
      if (!this.refused.has(alias)) this.issues.add(this.where(field, alias), problem);
      this.refused.add(alias);
      return null;
    }
    return this.resolve(target, field);
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
    /** Line of each key's first appearance, unknown keys included. */
    const seen = new Map<string, number | undefined>();
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key, at.field);
      const keyLine = this.lineOf(pair.key) ?? at.line;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        if (keyNode !== null || !isAlias(pair.key)) this.issues.add(this.where(at.field, pair.key, at.line), `${what} has a key that is not plain text`);
        continue;
      }
      const key = String(keyNode.value);
      const badCharacter = characterProblem(key);
      if (badCharacter !== null) {
        this.issues.add(this.where(at.field, pair.key, at.line), `${what} has the key ${JSON.stringify(key)}, which ${badCharacter}`);
        continue;
      }
      const field = at.field === "" ? key : `${at.field}.${key}`;
      if (seen.has(key)) {
        const earlier = seen.get(key);
        this.issues.add(this.where(field, pair.key, keyLine), `key ${JSON.stringify(key)} appears twice in ${what}${earlier === undefined ? "" : ` (first on line ${earlier})`}; keep one`);
        continue;
      }
      seen.set(key, keyLine);
      if (known !== null && !known.includes(key)) {
        this.issues.add(this.where(field, pair.key, keyLine), unknownKeyMessage(key, known, what));
        continue;
      }
      const valueNode = this.resolve(pair.value, field);
      const hasValue = valueNode !== null && !(isScalar(valueNode) && valueNode.value === null);
      const entry: MapEntry = { key, node: hasValue ? valueNode : null, at: this.where(field, hasValue ? valueNode : pair.key, keyLine) };
      if (!hasValue && isScalar(valueNode) && valueNode.comment) entry.comment = valueNode.comment;
      if (valueNode === null && isAlias(pair.value)) entry.refused = true;
      result.set(key, entry);
    }
    return result;
  }

  /** Text of a scalar; numbers and booleans keep the spelling they were written with. */
  text(entry: MapEntry | undefined): string | undefined {
    if (entry === undefined || entry.node === null) return undefined;
    const text = scalarText(entry.node);
    if (text === undefined) this.issues.add(entry.at, `must be text, not ${describe(entry.node)}${flowHint(entry)}`);
    return text === undefined ? undefined : this.checked(text, entry.at);
  }

  /** The text, or undefined with an issue when it holds a character no manifest text may (values.ts). */
  checked(text: string, at: Where): string | undefined {
    const problem = characterProblem(text);
    if (problem === null) return text;
    this.issues.add(at, problem);
    return undefined;
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

/** For text written as `{{product}}` or `[draft]`, which YAML reads as a mapping or a list. */
function flowHint(entry: MapEntry): string {
  const node = entry.node;
  if (!(isMap(node) || isSeq(node)) || !node.flow) return "";
  return `; YAML reads a value that starts with ${isMap(node) ? "{ as a mapping" : "[ as a list"}: write the whole value in quotes (${entry.key}: "${isMap(node) ? "{{…}} …" : "[…] …"}")`;
}
