// What the Pictory AI Studio image endpoint accepts (PICTORY.md §1.2–1.3). The manifest
// validator, the pictory client and the simulator all read this one table, so a model or
// ratio added here is accepted everywhere at once.

export const IMAGE_MODELS = ["seedream3.0", "flux-schnell", "nanobanana", "nanobanana-pro"] as const;
export type ImageModel = (typeof IMAGE_MODELS)[number];

export const ASPECT_RATIOS = ["1:1", "16:9", "9:16"] as const;
export type AspectRatio = (typeof ASPECT_RATIOS)[number];

export const STYLES = ["photorealistic", "artistic", "cartoon", "minimalist", "vintage", "futuristic"] as const;
export type Style = (typeof STYLES)[number];

export const DEFAULT_MODEL: ImageModel = "seedream3.0";

export interface ModelSpec {
  /** Supported ratios in documented order; the first is the service's default. */
  aspectRatios: readonly AspectRatio[];
  /** AI credits charged per completed image (fractional: 0.6). */
  creditsPerImage: number;
}

export const MODEL_SPECS: Record<ImageModel, ModelSpec> = {
  "seedream3.0": { aspectRatios: ["1:1", "16:9", "9:16"], creditsPerImage: 2 },
  "flux-schnell": { aspectRatios: ["1:1", "16:9", "9:16"], creditsPerImage: 0.6 },
  nanobanana: { aspectRatios: ["1:1", "16:9", "9:16"], creditsPerImage: 4 },
  "nanobanana-pro": { aspectRatios: ["1:1", "16:9", "9:16"], creditsPerImage: 14 },
};

/** Pixel size per ratio, used by the local renderer and the simulator (PICTORY.md Unknown 11). */
export const RATIO_PIXELS: Record<AspectRatio, { width: number; height: number }> = {
  "1:1": { width: 1024, height: 1024 },
  "16:9": { width: 1280, height: 720 },
  "9:16": { width: 720, height: 1280 },
};

export const PROMPT_MIN_CODE_POINTS = 5;
export const PROMPT_MAX_UTF16_UNITS = 5000;

export function isImageModel(value: string): value is ImageModel {
  return (IMAGE_MODELS as readonly string[]).includes(value);
}
export function isAspectRatio(value: string): value is AspectRatio {
  return (ASPECT_RATIOS as readonly string[]).includes(value);
}
export function isStyle(value: string): value is Style {
  return (STYLES as readonly string[]).includes(value);
}

/** Absolute http(s) URL, as the service requires for referenceImageUrl and webhook. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0;
  } catch {
    return false;
  }
}

/**
 * Conservative prompt check (PICTORY.md Unknown 3): at least 5 code points, at most 5000
 * UTF-16 units, so a prompt we accept is accepted however the service counts.
 * Returns the reason it is refused, or null.
 */
export function promptProblem(prompt: string): string | null {
  const codePoints = [...prompt].length;
  if (codePoints < PROMPT_MIN_CODE_POINTS) return `must be at least ${PROMPT_MIN_CODE_POINTS} characters (has ${codePoints})`;
  if (prompt.length > PROMPT_MAX_UTF16_UNITS) return `must be at most ${PROMPT_MAX_UTF16_UNITS} characters (has ${prompt.length})`;
  return null;
}
