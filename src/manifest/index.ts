// Manifest loading: read → parse (YAML or CSV into one draft shape) → rules → expand.
// Every step records issues and carries on; all of them are thrown together at the end.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type LoadOptions, ManifestAssembly } from "./assemble.js";
import { csvHeader, readCsvRows, streamCsvRows } from "./csv.js";
import { readCsvPreamble, readCsvPreambleOfBytes } from "./csv-preamble.js";
import { IssueList } from "./draft.js";
import { manifestUtf8 } from "./encoding.js";
import { slugify } from "./slug.js";
import { type Manifest, ManifestError } from "./types.js";
import { ID_PATTERN } from "./values.js";
import { readYamlManifest, type SourceNames } from "./yaml.js";

export type { LoadOptions } from "./assemble.js";
export { requestHash, slugify } from "./slug.js";
export * from "./types.js";

export type ManifestFormat = "yaml" | "csv";

const FORMAT_BY_EXTENSION: Record<string, ManifestFormat> = { ".yaml": "yaml", ".yml": "yaml", ".csv": "csv" };

/** What to do with a file of another kind that people give as a manifest. */
const SPREADSHEET_HINT = ' (save the sheet as "CSV UTF-8" and give that file)';
const EXTENSION_HINTS: Record<string, string> = {
  ".txt": ' (a spreadsheet saved as "Unicode text" reads as it is once renamed to .csv)',
  ".tsv": " (a tab-separated file reads as it is once renamed to .csv)",
  ".json": " (JSON is YAML: a .json manifest reads as it is once renamed to .yaml)",
  ".xlsx": SPREADSHEET_HINT,
  ".xls": SPREADSHEET_HINT,
  ".ods": SPREADSHEET_HINT,
  ".numbers": SPREADSHEET_HINT,
};

export function manifestFormat(fileName: string): ManifestFormat | null {
  return FORMAT_BY_EXTENSION[path.extname(fileName).toLowerCase()] ?? null;
}

/** Reads, checks and expands a manifest; throws one ManifestError listing every issue. */
export async function loadManifest(filePath: string, options: LoadOptions = {}): Promise<Manifest> {
  const format = manifestFormat(filePath);
  if (format === null) {
    const extension = path.extname(filePath);
    throw new ManifestError([
      {
        file: filePath,
        field: "",
        message: `${extension === "" ? "has no extension" : `has the extension "${extension}"`}; a manifest is .yaml, .yml or .csv${EXTENSION_HINTS[extension.toLowerCase()] ?? ""}`,
      },
    ]);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a file" : `cannot be read (${code ?? String(error)})`;
    throw new ManifestError([{ file: filePath, field: "", message: reason }]);
  }
  const decoded = manifestUtf8(bytes);
  if ("refused" in decoded) throw new ManifestError([{ file: filePath, line: decoded.refused.line, field: "", message: decoded.refused.message }]);
  const utf8 = decoded.utf8;
  if (format === "yaml") return parseManifestText(utf8.toString("utf8"), filePath, format, options);
  const issues = new IssueList(filePath);
  const names = sourceNames(filePath);
  const { preamble, headerByte } = readCsvPreambleOfBytes(utf8, issues);
  const assembly = new ManifestAssembly(csvHeader(names, preamble), issues, options);
  const parsedWhole = await streamCsvRows(utf8.subarray(headerByte), preamble, names, issues, (row) => assembly.add(row));
  return assembly.finish(filePath, parsedWhole);
}

/** Pure: the text of a manifest to a Manifest, or a ManifestError listing every issue. */
export function parseManifestText(text: string, fileName: string, format: ManifestFormat, options: LoadOptions = {}): Manifest {
  const issues = new IssueList(fileName);
  const names = sourceNames(fileName);
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  if (format === "csv") {
    const preamble = readCsvPreamble(body, issues);
    const assembly = new ManifestAssembly(csvHeader(names, preamble), issues, options);
    const parsedWhole = readCsvRows(body, preamble, names, issues, (row) => assembly.add(row));
    return assembly.finish(fileName, parsedWhole);
  }
  // The reader starts an assembly once it knows the header (again, when it reads the file twice).
  const current: { assembly: ManifestAssembly | null } = { assembly: null };
  const header = readYamlManifest(body, names, issues, (known) => {
    const assembly = new ManifestAssembly(known, issues, options);
    current.assembly = assembly;
    return (row) => assembly.add(row);
  });
  if (header === null || current.assembly === null) throw new ManifestError(issues.sorted());
  return current.assembly.finish(fileName, true, header);
}

function sourceNames(fileName: string): SourceNames {
  const base = path.basename(fileName);
  const stem = slugify(path.basename(fileName, path.extname(fileName))).slice(0, 100).replace(/-+$/, "");
  return { file: fileName, base, defaultName: ID_PATTERN.test(stem) ? stem : "manifest" };
}
