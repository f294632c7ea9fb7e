// The output folder is a backup of the state: each delivered image has a sidecar (request,
// provider, job id, sha256). A run on a new or emptied database adopts every image whose
// sidecar matches an item's request and whose bytes match the sidecar's sha256, as `done`,
// paying nothing; `imgbatch rebuild` does the same for a damaged database.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { storedPath, type OutputLayout } from "../assets/image-stage.js";
import { PROVIDER_NAMES, type ImageRequest, type ProviderName } from "../providers/provider.js";
import type { Store } from "../store/port.js";
import type { HashWith } from "../store/sync.js";
import type { ItemRecord } from "../store/types.js";

/** What a sidecar must say for its image to be adopted. */
export interface Sidecar {
  key: string;
  provider: ProviderName;
  request: ImageRequest;
  jobId: string | null;
  adoptedImage: string | null;
  credits: number;
  /** Relative to images/. */
  image: string;
  thumbnail: string | null;
  format: string;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  attempts: number;
  submittedAt: number | null;
  deliveredAt: number | null;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const timeOf = (v: unknown): number | null => (isString(v) && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null);

/** A sidecar's text as a Sidecar, or null when it lacks what adoption needs. */
export function parseSidecar(text: string): Sidecar | null {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null) return null;
  const request = raw.request as ImageRequest | undefined;
  const provider = raw.provider as ProviderName;
  if (!isString(raw.key) || !PROVIDER_NAMES.includes(provider) || typeof request !== "object" || request === null || !isString(request.prompt)) return null;
  if (!isString(raw.image) || raw.image.includes("/") || raw.image.includes("\\") || !isString(raw.sha256) || !isNumber(raw.bytes)) return null;
  const times = (raw.times ?? {}) as Record<string, unknown>;
  return {
    key: raw.key,
    provider,
    request,
    jobId: isString(raw.jobId) ? raw.jobId : null,
    adoptedImage: isString(raw.adoptedImage) ? raw.adoptedImage : null,
    credits: isNumber(raw.credits) ? raw.credits : 0,
    image: raw.image,
    thumbnail: isString(raw.thumbnail) ? raw.thumbnail : null,
    format: isString(raw.format) ? raw.format : "",
    sha256: raw.sha256,
    bytes: raw.bytes,
    width: isNumber(raw.width) ? raw.width : 0,
    height: isNumber(raw.height) ? raw.height : 0,
    attempts: isNumber(raw.attempts) ? raw.attempts : 1,
    submittedAt: timeOf(times.submitted),
    deliveredAt: timeOf(times.delivered),
  };
}

/**
 * Pure: whether an item may take a sidecar's image. The request must be the same; the image
 * is taken when the chosen provider made it, and also when a paying one did (a paid image is
 * never made again only because the database was lost); a local preview is not taken for a
 * run with a paying provider (it is made anew, the preview kept aside).
 */
export function adoptionOf(
  item: Pick<ItemRecord, "request" | "provider">,
  sidecar: Pick<Sidecar, "request" | "provider">,
  hashWith: HashWith,
): { adopt: true; requestHash: string } | { adopt: false; reason: string } {
  const sidecarHash = hashWith(sidecar.request, sidecar.provider);
  if (hashWith(item.request, sidecar.provider) !== sidecarHash) return { adopt: false, reason: "its request differs from the manifest's" };
  if (sidecar.provider !== item.provider && sidecar.provider === "local") return { adopt: false, reason: `a local preview, and this run makes images with ${item.provider}` };
  return { adopt: true, requestHash: sidecarHash };
}

/** The readable sidecars in images/, by key. */
export function readSidecars(layout: OutputLayout): Map<string, Sidecar> {
  let names: string[];
  try {
    names = readdirSync(layout.imagesDir);
  } catch {
    return new Map();
  }
  return sidecarsOf(layout, names.filter((name) => name.endsWith(".json")).map((name) => name.slice(0, -".json".length)));
}

/**
 * The sidecars in images/ of queued items never submitted: one stat each. Found on any run,
 * not only on a new database, so a run killed between its sync and its adoption adopts next time.
 */
export async function sidecarsOfUntriedItems(store: Store, layout: OutputLayout): Promise<Map<string, Sidecar>> {
  const found: string[] = [];
  for (const key of await store.untriedKeys()) if (existsSync(join(layout.imagesDir, `${key}.json`))) found.push(key);
  return sidecarsOf(layout, found);
}

/** The readable sidecars `images/<key>.json` of these keys that name their own key, by key. */
function sidecarsOf(layout: OutputLayout, keys: readonly string[]): Map<string, Sidecar> {
  const sidecars = new Map<string, Sidecar>();
  for (const key of keys) {
    let sidecar: Sidecar | null = null;
    try {
      sidecar = parseSidecar(readFileSync(join(layout.imagesDir, `${key}.json`), "utf8"));
    } catch {
      /* unreadable: not adopted */
    }
    if (sidecar && sidecar.key === key) sidecars.set(key, sidecar);
  }
  return sidecars;
}

/** The provider most sidecars name (ties: a paying one first), or null when there are none. */
export function providerOfSidecars(sidecars: ReadonlyMap<string, Sidecar>): ProviderName | null {
  const counts = new Map<ProviderName, number>();
  for (const s of sidecars.values()) counts.set(s.provider, (counts.get(s.provider) ?? 0) + 1);
  let best: ProviderName | null = null;
  for (const [provider, n] of counts) {
    const bestN = best === null ? -1 : counts.get(best)!;
    if (n > bestN || (n === bestN && best === "local")) best = provider;
  }
  return best;
}

export interface AdoptionResult {
  adopted: number;
  /** Keys whose sidecar was not taken, with why. */
  refused: { key: string; reason: string }[];
}

/** Adopts, for each queued item never tried, the image its sidecar describes when both agree. */
export async function adoptFromSidecars(store: Store, layout: OutputLayout, sidecars: ReadonlyMap<string, Sidecar>, hashWith: HashWith): Promise<AdoptionResult> {
  const result: AdoptionResult = { adopted: 0, refused: [] };
  for (const sidecar of sidecars.values()) {
    const item = await store.byKey(sidecar.key);
    if (!item || item.state !== "queued" || item.attempts > 0) continue;
    const decision = adoptionOf(item, sidecar, hashWith);
    if (!decision.adopt) {
      result.refused.push({ key: sidecar.key, reason: decision.reason });
      continue;
    }
    const imagePath = join(layout.imagesDir, sidecar.image);
    let bytes: Buffer;
    try {
      bytes = readFileSync(imagePath);
    } catch {
      result.refused.push({ key: sidecar.key, reason: `its image ${sidecar.image} is not on disk` });
      continue;
    }
    if (bytes.length !== sidecar.bytes || createHash("sha256").update(bytes).digest("hex") !== sidecar.sha256) {
      result.refused.push({ key: sidecar.key, reason: `its image ${sidecar.image} is not the one the sidecar describes (sha256 differs)` });
      continue;
    }
    const thumbnail = sidecar.thumbnail === null ? null : join(layout.imagesDir, sidecar.thumbnail);
    await store.adoptDelivered(
      item,
      {
        provider: sidecar.provider,
        requestHash: decision.requestHash,
        patch: {
          attempts: sidecar.attempts,
          jobId: sidecar.jobId,
          imageRef: sidecar.adoptedImage,
          credits: sidecar.credits,
          submittedAt: sidecar.submittedAt,
          completedAt: sidecar.deliveredAt,
          filePath: storedPath(layout, imagePath),
          thumbPath: thumbnail !== null && existsSync(thumbnail) ? storedPath(layout, thumbnail) : null,
          sha256: sidecar.sha256,
          bytes: sidecar.bytes,
          width: sidecar.width,
          height: sidecar.height,
          format: sidecar.format,
          resultWidth: sidecar.width,
          resultHeight: sidecar.height,
        },
      },
      `adopted from its sidecar (${sidecar.provider}${sidecar.jobId ? `, job ${sidecar.jobId}` : ""}): the database had no record of it`,
    );
    result.adopted++;
  }
  await store.flush();
  return result;
}
