// YAML text → Documents, in memory proportional to a row rather than to the file. The yaml
// package's parseDocument holds the whole source-token tree and then the whole node tree of
// the file: validating a 50 MB manifest of 100,001 rows peaked at 2.4 GB RSS and took 17 s
// (its CSV twin: 300 MB, 3 s). Here the parser is fed one lexical token at a time, and the
// finished rows of the top-level `rows:` list are taken out of its tree a batch at a time,
// composed into nodes and handed on; the tree left at the end is the manifest without those
// rows: 360 MB and 7.5 s (test/bench/manifest-size.mjs; most of the time is the yaml
// package's lexer, parser and composer). (The lexer is given the whole text at once: fed in pieces,
// yaml 2.9.1's lexer loses a block scalar with an indentation indicator, `|2-`, whose first
// line is blank when a piece ends after its header line.)
//
// Nesting is bounded while parsing (the composer recurses once per level, and 10,000 levels
// overflowed the call stack), and the messages name the line.
import { Composer, type CST, type Document, Lexer, type LineCounter, Parser, type YAMLError } from "yaml";
import { syntaxProblems, type YamlProblem } from "./yaml-hints.js";

/**
 * Parser nesting allowed (each block or flow collection and each scalar inside it counts).
 * The deepest a manifest reads is 7: the document, the top mapping, rows, a row, matrix, an
 * axis list, a value.
 */
export const MAX_NESTING = 64;

/** The composer's options: duplicate keys are found by the reader, which names them. */
const COMPOSE_OPTIONS = { uniqueKeys: false } as const;

/** Finished rows composed at a time: one composer and document each, rather than one a row. */
const BATCH_ROWS = 64;

/** Lexical tokens between looks for finished rows. */
const TOKENS_BETWEEN_LOOKS = 512;

/** Rows kept at the end of the parser's list: the one being parsed, and the one before it (the parser looks back at it for an indented comment). */
const ROWS_KEPT = 2;

export interface ParsedYaml {
  /** The manifest without the rows handed on; null when it could not be parsed. */
  doc: Document.Parsed | null;
  /** Syntax problems; when there are any, rows handed on count for nothing. */
  problems: YamlProblem[];
}

/** Where rows go that are taken out of the parser's tree before the end. */
export interface YamlRowSink {
  /**
   * Once, before the first batch: the top-level mapping as it stands, without `rows:` (the
   * keys written above it). Its problems are left to the whole document, which holds it too.
   */
  start(before: Document.Parsed): void;
  /** In order: a document whose contents is a list of the next rows of the top-level `rows:`. */
  rows(batch: Document.Parsed): void;
}

/**
 * Parses a manifest, handing rows to `sink` as they are parsed; the `rows:` list left in the
 * returned document holds the rows after them. An alias may name an anchor in an earlier
 * batch: the reader follows anchors across documents (yaml-anchors.ts). Rows are not taken
 * from a file with a directive (`%YAML 1.1`), which changes how every scalar reads.
 * `lineCounter` is filled with the lines of the text as it is parsed.
 */
export function parseManifestYaml(text: string, lineCounter: LineCounter, sink: YamlRowSink): ParsedYaml {
  const parser = new Parser(lineCounter.addNewLine);
  const problems: YamlProblem[] = [];
  const errors: YAMLError[] = [];
  const topTokens: CST.Token[] = [];
  let documents = 0;
  /** The `rows:` key whose rows are taken: set with the first batch. */
  let rowsKeyOffset: number | null = null;
  /** A directive was seen: rows stay in the parser's tree. */
  let keepRows = false;

  const takeRows = (): void => {
    const rows = rowsBeingParsed(parser.stack);
    if (rows === null || keepRows || documents > 0 || rows.seq.items.length < ROWS_KEPT + BATCH_ROWS) return;
    if (rowsKeyOffset === null) {
      rowsKeyOffset = rows.keyOffset;
      sink.start(composeAlone({ ...rows.map, items: rows.map.items.slice(0, -1) }, rows.map.offset));
    }
    if (rows.keyOffset !== rowsKeyOffset) return; // a second `rows:` key: reported by the reader
    const items = rows.seq.items.splice(0, rows.seq.items.length - ROWS_KEPT);
    const batch = composeAlone({ ...rows.seq, items }, rows.seq.offset);
    errors.push(...batch.errors);
    sink.rows(batch);
  };

  lineCounter.addNewLine(0);
  let tokens = 0;
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) {
      if (token.type === "document") documents++;
      if (token.type === "directive") keepRows = true;
      topTokens.push(token);
    }
    if (parser.stack.length > MAX_NESTING) {
      const line = lineCounter.linePos(parser.offset).line;
      problems.push({ line, message: `is nested more than ${MAX_NESTING} levels deep, where a manifest needs about 7; check the indentation and the brackets down to this line` });
      return { doc: null, problems };
    }
    if (++tokens % TOKENS_BETWEEN_LOOKS === 0) takeRows();
  }
  for (const token of parser.end()) topTokens.push(token);

  const docs = [...new Composer(COMPOSE_OPTIONS).compose(topTokens, true, text.length)];
  const [doc, second] = docs as [Document.Parsed, ...Document.Parsed[]];
  errors.push(...doc.errors);
  problems.push(...syntaxProblems(errors, text, lineCounter));
  if (second !== undefined) {
    const line = lineCounter.linePos(second.range[0]).line;
    problems.push({ line, message: 'a second YAML document starts here ("---"); a manifest is one document: remove the line or split the file' });
  }
  return { doc, problems };
}

/** A collection of source tokens as the contents of a document of its own. */
function composeAlone(value: CST.BlockMap | CST.BlockSequence, offset: number): Document.Parsed {
  const document: CST.Document = { type: "document", offset, start: [], value, end: [] };
  return [...new Composer(COMPOSE_OPTIONS).compose([document])][0] as Document.Parsed;
}

/** The top-level `rows:` block list while the parser is inside it, the mapping it is in, and where its key is. */
function rowsBeingParsed(stack: readonly CST.Token[]): { map: CST.BlockMap; seq: CST.BlockSequence; keyOffset: number } | null {
  const [document, map, seq] = stack;
  if (document?.type !== "document" || map?.type !== "block-map" || seq?.type !== "block-seq") return null;
  const key = map.items.at(-1)?.key;
  if (key?.type !== "scalar" || key.source !== "rows") return null;
  return { map, seq, keyOffset: key.offset };
}
