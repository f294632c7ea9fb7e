// `referenceImage:` — a product shot on disk as an item's reference. The path is relative to the
// manifest's folder; the file is looked at once however many items use it (through the
// InspectReference port: the manifest itself does no I/O beyond its own file), and enters the
// request as its sha256 and type, so a moved or renamed file is the same request and a changed
// one another (DESIGN.md: the request hash). A row's reference (either kind) hides the
// defaults' other kind; both kinds on one level are refused by rules.ts.
import path from "node:path";
import type { ReferenceImage } from "../providers/provider.js";
import type { FieldValues, Located, Where } from "./draft.js";
import type { InspectReference, ReferenceFile, ReferenceInspection } from "./types.js";
import { looksLikeUrl } from "./values.js";

/** When no port is given (a pure parse in a test that names no file), every reference is refused. */
const NO_FILE_ACCESS: InspectReference = () => ({ ok: false, problem: "cannot be read here (the manifest was parsed without access to files)" });

export class ReferenceResolver {
  private readonly seen = new Map<string, ReferenceInspection>();
  private readonly files = new Map<string, ReferenceFile>();
  private readonly folder: string;

  constructor(
    manifestFile: string,
    private readonly inspect: InspectReference = NO_FILE_ACCESS,
  ) {
    this.folder = path.dirname(path.resolve(manifestFile));
  }

  /** The reference of an item, or null with `report` told why (once per file and row: the caller's reportOnce). */
  resolve(value: Located<string>, report: (topic: string, at: Where, message: string) => void): ReferenceImage | null {
    if (looksLikeUrl(value.value)) return null; // refused by the rules, not looked for on disk
    const absolute = path.resolve(this.folder, value.value);
    let found = this.seen.get(absolute);
    if (found === undefined) {
      found = this.inspect(absolute);
      this.seen.set(absolute, found);
    }
    if (!found.ok) {
      const shown = path.isAbsolute(value.value) ? "" : ` (${absolute})`;
      report(`reference:${absolute}`, value.at, `${JSON.stringify(value.value)}${shown} ${found.problem}`);
      return null;
    }
    if (!this.files.has(found.sha256)) this.files.set(found.sha256, { sha256: found.sha256, contentType: found.contentType, bytes: found.bytes, path: absolute });
    return { sha256: found.sha256, contentType: found.contentType };
  }

  /** Each distinct file the items use, in the order first met. */
  referenceFiles(): ReferenceFile[] {
    return [...this.files.values()];
  }
}

/**
 * The reference of an item from what the matrix, the row and the defaults give (each picked
 * nearest first): one kind only, the row's (or the matrix's) winning over the defaults'.
 */
export function chooseReference(
  image: Located<string> | undefined,
  url: Located<string> | undefined,
  defaults: FieldValues,
): { image?: Located<string>; url?: Located<string> } {
  if (image === undefined || url === undefined) return { ...(image ? { image } : {}), ...(url ? { url } : {}) };
  const imageIsDefault = image === defaults.referenceImage;
  const urlIsDefault = url === defaults.referenceImageUrl;
  if (imageIsDefault && !urlIsDefault) return { url };
  // The row's image over the defaults' URL; both on one level is reported by rules.ts.
  return { image };
}
