// The steps after parsing, a row at a time: a draft's header is checked once, then each row
// is checked and expanded as the parser hands it on, so only the items stay in memory.
import path from "node:path";
import { DEFAULTS } from "../defaults.js";
import { type DraftHeader, type DraftRow, IssueList } from "./draft.js";
import { ItemPlanner } from "./expand.js";
import { checkHeader, checkRow } from "./rules.js";
import { type InspectReference, type Manifest, ManifestError } from "./types.js";

/** What the caller of a load decides besides the file. */
export interface LoadOptions {
  /** The cap on items (`--max-items`): wins over the manifest's `maxItems:`, which wins over the default. */
  maxItems?: number;
  /** How reference files (`referenceImage:`) are read; without it every reference is refused. */
  inspectReference?: InspectReference;
}

export class ManifestAssembly {
  private readonly checks: IssueList;
  private readonly planner: ItemPlanner;

  /** `parseIssues`: where the parser reports; read at finish(). */
  constructor(
    private readonly header: DraftHeader,
    private readonly parseIssues: IssueList,
    options: LoadOptions = {},
  ) {
    this.checks = new IssueList(parseIssues.file);
    checkHeader(header, this.checks);
    this.planner = new ItemPlanner(header, parseIssues.file, options.maxItems ?? header.maxItems?.value ?? DEFAULTS.maxItems, options.inspectReference);
  }

  add(row: DraftRow): void {
    checkRow(row, this.checks);
    this.planner.add(row);
  }

  /**
   * The manifest, or a ManifestError listing every issue in the order a whole-manifest pass
   * finds them (parse, rules, ids, expansion; sorted by line). `parsedWhole` false: the file
   * itself is unusable (a syntax error, no header), and only the parser's issues count.
   * `header`: the whole header, when the rows were checked with the part written above them.
   */
  finish(fileName: string, parsedWhole = true, header: DraftHeader = this.header): Manifest {
    const all = new IssueList(this.parseIssues.file);
    all.items.push(...this.parseIssues.items);
    if (parsedWhole) {
      const planned = this.planner.finish();
      all.items.push(...this.checks.items, ...planned.issues);
      if (all.items.length === 0) {
        return {
          name: header.name,
          file: path.resolve(fileName),
          provider: header.provider,
          items: planned.items,
          renditions: header.renditions,
          thumbnail: header.thumbnail,
          qc: header.qc,
          references: planned.references,
          // The defaults' webhook as the whole header has it (the rows may be read above `defaults:`).
          webhooks: { fallback: header.defaults.webhook?.value ?? null, byRow: planned.webhooks },
        };
      }
    }
    throw new ManifestError(all.sorted());
  }
}
