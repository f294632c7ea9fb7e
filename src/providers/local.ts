// The offline renderer: a deterministic placeholder picture per request (same request →
// same bytes), so a manifest can be previewed and the pipeline run with no key and no
// network. It is honest about being a placeholder: the style shows as a pattern, the
// prompt's first words are written on it, and sidecars say `provider: local`.
import { createHash } from "node:crypto";
import sharp from "sharp";
import { RATIO_PIXELS, type Style } from "./catalog.js";
import type { ImageRequest, JobState, LostJobSearch, Provider } from "./provider.js";
import { DEFAULTS } from "../defaults.js";
import { PermanentError } from "../errors.js";

interface Palette {
  from: string;
  to: string;
  ink: string;
}

const STYLE_PALETTES: Record<Style | "none", Palette> = {
  photorealistic: { from: "#87a9c9", to: "#3c5a3a", ink: "#ffffff" },
  artistic: { from: "#f2a65a", to: "#a23b72", ink: "#fff7e6" },
  cartoon: { from: "#ffe066", to: "#4ecdc4", ink: "#1a1a2e" },
  minimalist: { from: "#f4f4f2", to: "#e6e6e1", ink: "#222222" },
  vintage: { from: "#d8c3a5", to: "#8e6c4a", ink: "#3b2a1a" },
  futuristic: { from: "#0b0c2a", to: "#1f0f3d", ink: "#4df3ff" },
  none: { from: "#6c7a89", to: "#2c3e50", ink: "#ffffff" },
};

/** A pattern per style, so a contact sheet of a style matrix shows the styles apart. */
function stylePattern(style: Style | "none", w: number, h: number, seed: number, ink: string): string {
  const unit = Math.round(Math.min(w, h) / 8);
  switch (style) {
    case "futuristic": {
      let lines = "";
      for (let x = 0; x <= w; x += unit) lines += `<line x1="${x}" y1="0" x2="${x}" y2="${h}"/>`;
      for (let y = 0; y <= h; y += unit) lines += `<line x1="0" y1="${y}" x2="${w}" y2="${y}"/>`;
      return `<g stroke="${ink}" stroke-opacity="0.35" stroke-width="2">${lines}</g>`;
    }
    case "cartoon": {
      let dots = "";
      for (let i = 0; i < 7; i++) {
        const cx = ((seed >>> (i * 3)) % 97) / 97;
        const cy = ((seed >>> (i * 2 + 1)) % 89) / 89;
        dots += `<circle cx="${Math.round(cx * w)}" cy="${Math.round(cy * h)}" r="${unit * (0.6 + (i % 3) * 0.4)}"/>`;
      }
      return `<g fill="#ffffff" fill-opacity="0.55" stroke="#1a1a2e" stroke-width="6">${dots}</g>`;
    }
    case "artistic": {
      let stripes = "";
      for (let i = -h; i < w; i += unit) stripes += `<line x1="${i}" y1="${h}" x2="${i + h}" y2="0"/>`;
      return `<g stroke="#ffffff" stroke-opacity="0.25" stroke-width="${Math.round(unit / 3)}">${stripes}</g>`;
    }
    case "minimalist":
      return `<line x1="${w * 0.2}" y1="${h * 0.72}" x2="${w * 0.8}" y2="${h * 0.72}" stroke="${ink}" stroke-width="3"/>`;
    case "vintage":
      return `<rect x="0" y="0" width="${w}" height="${h}" fill="url(#vignette)"/>`;
    case "photorealistic":
      return `<ellipse cx="${w * 0.7}" cy="${h * 0.3}" rx="${unit}" ry="${unit}" fill="#fff3c4" fill-opacity="0.9"/><rect x="0" y="${h * 0.62}" width="${w}" height="${h * 0.38}" fill="#2f4a2b" fill-opacity="0.7"/>`;
    case "none":
      return "";
  }
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** The first words of the prompt, wrapped into at most three short lines. */
export function captionLines(prompt: string, maxChars = 22): string[] {
  const words = prompt.trim().split(/\s+/).slice(0, 9);
  const lines: string[] = [];
  let current = "";
  for (const word of words) {
    const next = current ? `${current} ${word}` : word;
    if (next.length > maxChars && current) {
      lines.push(current);
      current = word.slice(0, maxChars);
    } else current = next.slice(0, maxChars);
    if (lines.length === 3) break;
  }
  if (current && lines.length < 3) lines.push(current);
  return lines;
}

export function localJobId(request: ImageRequest): string {
  return `local-${requestDigest(request).slice(0, 24)}`;
}

function requestDigest(request: ImageRequest): string {
  const canonical = JSON.stringify([request.prompt, request.model, request.aspectRatio, request.style ?? null, request.referenceImageUrl ?? null]);
  return createHash("sha256").update(canonical).digest("hex");
}

export async function renderPlaceholder(request: ImageRequest): Promise<{ bytes: Buffer; width: number; height: number }> {
  const { width: w, height: h } = RATIO_PIXELS[request.aspectRatio];
  const style = request.style ?? "none";
  const palette = STYLE_PALETTES[style];
  const seed = parseInt(requestDigest(request).slice(0, 8), 16);
  const fontSize = Math.round(Math.min(w, h) / 14);
  const lines = captionLines(request.prompt);
  const text = lines
    .map((line, i) => `<text x="${w / 2}" y="${h / 2 + (i - (lines.length - 1) / 2) * fontSize * 1.25}">${escapeXml(line)}</text>`)
    .join("");
  const label = `${style === "none" ? "no style" : style} · ${request.model} · ${request.aspectRatio} · local preview`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">
    <defs>
      <linearGradient id="bg" x1="0" y1="0" x2="${(seed % 2) + 0.2}" y2="1"><stop offset="0" stop-color="${palette.from}"/><stop offset="1" stop-color="${palette.to}"/></linearGradient>
      <radialGradient id="vignette"><stop offset="0.55" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#2a1a0a" stop-opacity="0.65"/></radialGradient>
    </defs>
    <rect width="${w}" height="${h}" fill="url(#bg)"/>
    ${stylePattern(style, w, h, seed, palette.ink)}
    <g font-family="DejaVu Sans, Arial, sans-serif" font-weight="bold" font-size="${fontSize}" fill="${palette.ink}" text-anchor="middle" dominant-baseline="middle">${text}</g>
    <text x="${w / 2}" y="${h - fontSize}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${Math.round(fontSize / 2.2)}" fill="${palette.ink}" fill-opacity="0.8" text-anchor="middle">${escapeXml(label)}</text>
  </svg>`;
  const bytes = await sharp(Buffer.from(svg)).png({ compressionLevel: 6 }).toBuffer();
  return { bytes, width: w, height: h };
}

export class LocalProvider implements Provider {
  readonly name = "local" as const;
  readonly keyId = "local";
  readonly pollIntervalMs: number = DEFAULTS.localPollIntervalMs;

  async submit(request: ImageRequest): Promise<{ jobId: string }> {
    return { jobId: localJobId(request) };
  }

  /** Renders on read: the job id carries nothing the request does not, so it survives restarts. */
  async getJob(job: { jobId: string; request: ImageRequest }): Promise<JobState> {
    let rendered: { bytes: Buffer; width: number; height: number };
    try {
      rendered = await renderPlaceholder(job.request);
    } catch (error) {
      // The same request fails the same way every time: a failure of the item, at once.
      throw new PermanentError(`the local renderer refused the request: ${(error as Error).message}`, "RENDER_FAILED");
    }
    return { status: "completed", image: { kind: "bytes", bytes: rendered.bytes }, width: rendered.width, height: rendered.height, credits: 0 };
  }

  async findLostJob(): Promise<LostJobSearch> {
    // Nothing is paid locally: a lost submit is simply made again.
    return { found: "none", detail: "local renders are free; submitting again" };
  }

  async preflight(): Promise<{ creditsRemaining: number | null }> {
    return { creditsRemaining: null };
  }

  async close(): Promise<void> {}
}
