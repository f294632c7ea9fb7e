// The YAML-only output settings: renditions made from every image, and the thumbnail.
import { isAlias } from "yaml";
import { DEFAULTS } from "../defaults.js";
import type { Where } from "./draft.js";
import type { OutputFormat, RenditionSpec, ThumbnailSpec } from "./types.js";
import { enumProblem, idProblem } from "./values.js";
import type { MapEntry, YamlReader } from "./yaml-reader.js";

export const RENDITION_KEYS = ["name", "width", "height", "fit", "position", "format", "quality"] as const;
export const THUMBNAIL_KEYS = ["size", "format", "quality"] as const;

const FORMATS: readonly OutputFormat[] = ["jpeg", "webp", "png", "avif"];
const FITS: readonly RenditionSpec["fit"][] = ["cover", "contain"];
const POSITIONS: readonly RenditionSpec["position"][] = ["attention", "entropy", "centre"];
/** Spellings people write that mean exactly one of ours. */
const ALIASES: Record<string, string> = { center: "centre", jpg: "jpeg" };

const RENDITION_DEFAULTS = { fit: "cover", position: "centre", format: "jpeg", quality: 82 } as const;
const RENDITION_MAX_SIDE = 8192;
const THUMBNAIL_MIN_SIZE = 16;
const THUMBNAIL_MAX_SIZE = 2048;
/** Folders beside the renditions' in output/<name>/; a rendition named so would mix with them. */
const RESERVED_RENDITION_NAMES = ["images", "thumbs"];

function readChoice<T extends string>(reader: YamlReader, entry: MapEntry | undefined, known: readonly T[], what: string, fallback: T): T {
  const text = reader.text(entry);
  if (text === undefined || entry === undefined) return fallback;
  const value = ALIASES[text] ?? text;
  const problem = enumProblem(value, known, what);
  if (problem !== null) {
    reader.issues.add(entry.at, problem);
    return fallback;
  }
  return value as T;
}

export function readRenditions(reader: YamlReader, entry: MapEntry | undefined): RenditionSpec[] {
  if (entry === undefined || entry.node === null) return [];
  const list = reader.sequence(entry, "renditions");
  if (list === null) return [];
  const renditions: RenditionSpec[] = [];
  const seen = new Map<string, Where>();
  list.items.forEach((item, index) => {
    const node = reader.resolve(item, `renditions[${index}]`);
    if (node === null && isAlias(item)) return; // refused, reported
    const at = reader.where(`renditions[${index}]`, node ?? item, entry.at.line);
    const fields = reader.entries(node, at, RENDITION_KEYS, "a rendition");
    if (fields === null) return;
    const name = reader.text(fields.get("name"));
    const width = reader.integer(fields.get("width"), 1, RENDITION_MAX_SIDE);
    const height = reader.integer(fields.get("height"), 1, RENDITION_MAX_SIDE);
    for (const [key, value] of [["name", name], ["width", width], ["height", height]] as const) {
      if (value === undefined && fields.get(key)?.node == null && !fields.get(key)?.refused) reader.issues.add({ ...at, field: `${at.field}.${key}` }, "is required");
    }
    if (name !== undefined) {
      const nameAt = fields.get("name")?.at ?? at;
      const problem = idProblem(name);
      const earlier = seen.get(name);
      if (problem !== null) reader.issues.add(nameAt, problem);
      else if (RESERVED_RENDITION_NAMES.includes(name)) reader.issues.add(nameAt, `${JSON.stringify(name)} is reserved for the output folders (${RESERVED_RENDITION_NAMES.join(", ")})`);
      else if (earlier !== undefined) reader.issues.add(nameAt, `rendition ${JSON.stringify(name)} is already defined at ${earlier.field} (line ${earlier.line})`);
      seen.set(name, nameAt);
    }
    const rendition: RenditionSpec = {
      name: name ?? "",
      width: width ?? 0,
      height: height ?? 0,
      fit: readChoice(reader, fields.get("fit"), FITS, "fit", RENDITION_DEFAULTS.fit),
      position: readChoice(reader, fields.get("position"), POSITIONS, "position", RENDITION_DEFAULTS.position),
      format: readChoice(reader, fields.get("format"), FORMATS, "format", RENDITION_DEFAULTS.format),
      quality: reader.integer(fields.get("quality"), 1, 100) ?? RENDITION_DEFAULTS.quality,
    };
    renditions.push(rendition);
  });
  return renditions;
}

export function defaultThumbnail(): ThumbnailSpec {
  return { ...DEFAULTS.thumbnail };
}

export function readThumbnail(reader: YamlReader, entry: MapEntry | undefined): ThumbnailSpec {
  const fallback = defaultThumbnail();
  if (entry === undefined || entry.node === null) return fallback;
  const fields = reader.entries(entry.node, entry.at, THUMBNAIL_KEYS, "thumbnail");
  if (fields === null) return fallback;
  return {
    size: reader.integer(fields.get("size"), THUMBNAIL_MIN_SIZE, THUMBNAIL_MAX_SIZE) ?? fallback.size,
    format: readChoice(reader, fields.get("format"), FORMATS, "format", fallback.format),
    quality: reader.integer(fields.get("quality"), 1, 100) ?? fallback.quality,
  };
}
