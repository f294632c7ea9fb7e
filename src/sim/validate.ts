// Validation of the POST /v1/aistudio/images body as the simulator applies it
// (PICTORY.md §1.2–1.3, Unknowns 2, 3, 4, 20, 21): every bad field reported, unknown
// fields ignored, enums exact and case-sensitive, the prompt counted in UTF-16 units.
import { createHash } from "node:crypto";
import {
  ASPECT_RATIOS,
  DEFAULT_MODEL,
  IMAGE_MODELS,
  MODEL_SPECS,
  PROMPT_MAX_UTF16_UNITS,
  PROMPT_MIN_CODE_POINTS,
  STYLES,
  isAspectRatio,
  isHttpUrl,
  isImageModel,
  isStyle,
  type AspectRatio,
  type ImageModel,
  type Style,
} from "../providers/catalog.js";

/** A create request with the service's defaults applied. */
export interface SimImageRequest {
  prompt: string;
  model: ImageModel;
  aspectRatio: AspectRatio;
  style?: Style;
  referenceImageUrl?: string;
  webhook?: string;
}

export interface FieldError {
  name: string;
  errors: string;
}

export type ValidationResult = { ok: true; request: SimImageRequest } | { ok: false; fields: FieldError[] };

export function validateCreateBody(body: unknown, options: { rejectReferenceWithFlux: boolean }): ValidationResult {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, fields: [{ name: "body", errors: "Request body must be a JSON object" }] };
  }
  const raw = body as Record<string, unknown>;
  const fields: FieldError[] = [];
  const bad = (name: string, errors: string): void => {
    fields.push({ name, errors });
  };
  const present = (name: string): boolean => Object.hasOwn(raw, name) && raw[name] !== undefined;

  const prompt = raw["prompt"];
  if (!present("prompt")) bad("prompt", '"prompt" is required');
  else if (typeof prompt !== "string") bad("prompt", '"prompt" must be a string');
  else if (prompt.length < PROMPT_MIN_CODE_POINTS || prompt.length > PROMPT_MAX_UTF16_UNITS) {
    bad("prompt", `"prompt" length must be between ${PROMPT_MIN_CODE_POINTS} and ${PROMPT_MAX_UTF16_UNITS} characters`);
  }

  let model: ImageModel | null = DEFAULT_MODEL;
  if (present("model")) {
    const value = raw["model"];
    if (typeof value === "string" && isImageModel(value)) model = value;
    else {
      model = null;
      bad("model", `"model" must be one of [${IMAGE_MODELS.join(", ")}]`);
    }
  }

  let aspectRatio: AspectRatio | null = model === null ? null : MODEL_SPECS[model].aspectRatios[0] ?? null;
  if (present("aspectRatio")) {
    const value = raw["aspectRatio"];
    const allowed: readonly AspectRatio[] = model === null ? ASPECT_RATIOS : MODEL_SPECS[model].aspectRatios;
    if (typeof value === "string" && isAspectRatio(value) && allowed.includes(value)) aspectRatio = value;
    else {
      aspectRatio = null;
      const forModel = model === null ? "" : ` for model ${model}`;
      bad("aspectRatio", `"aspectRatio" must be one of [${allowed.join(", ")}]${forModel}`);
    }
  }

  let style: Style | undefined;
  if (present("style")) {
    const value = raw["style"];
    if (typeof value === "string" && isStyle(value)) style = value;
    else bad("style", `"style" must be one of [${STYLES.join(", ")}]`);
  }

  const uri = (name: "referenceImageUrl" | "webhook"): string | undefined => {
    if (!present(name)) return undefined;
    const value = raw[name];
    if (typeof value === "string" && isHttpUrl(value)) return value;
    bad(name, `"${name}" must be a valid uri`);
    return undefined;
  };
  const referenceImageUrl = uri("referenceImageUrl");
  const webhook = uri("webhook");
  if (referenceImageUrl !== undefined && model === "flux-schnell" && options.rejectReferenceWithFlux) {
    bad("referenceImageUrl", '"referenceImageUrl" is not supported by model flux-schnell');
  }

  if (fields.length > 0 || model === null || aspectRatio === null || typeof prompt !== "string") {
    return { ok: false, fields };
  }
  const request: SimImageRequest = { prompt, model, aspectRatio };
  if (style !== undefined) request.style = style;
  if (referenceImageUrl !== undefined) request.referenceImageUrl = referenceImageUrl;
  if (webhook !== undefined) request.webhook = webhook;
  return { ok: true, request };
}

/**
 * sha256 of the canonical JSON of what decides the image (defaults applied, webhook
 * excluded), as the ledger counts it. Tests of the client compute the same to prove
 * "nothing submitted twice".
 */
export function simRequestHash(request: {
  prompt: string;
  model?: string;
  aspectRatio?: string;
  style?: string;
  referenceImageUrl?: string;
}): string {
  const model = request.model ?? DEFAULT_MODEL;
  const aspectRatio =
    request.aspectRatio ?? (isImageModel(model) ? MODEL_SPECS[model].aspectRatios[0] : undefined) ?? null;
  const canonical = JSON.stringify({
    aspectRatio,
    model,
    prompt: request.prompt,
    referenceImageUrl: request.referenceImageUrl ?? null,
    style: request.style ?? null,
  });
  return createHash("sha256").update(canonical).digest("hex");
}
