// Response bodies built from jobs: the §2.1 job read, the §4.1 job list item, the §4.2
// image history item, and the opaque page keys of both listings.
import { jobPixels, signedUrl } from "./files.js";
import type { SimJob, SimState } from "./state.js";

export interface ViewContext {
  state: SimState;
  origin: string;
  secret: string;
}

type JobData = Record<string, unknown> & { status: string };

/** What `echoKeyInErrors` appends to an error text: the key, and its part after `pictai_` alone. */
export function keyEcho(apiKey: string): string {
  return ` (key ${apiKey}, account ${apiKey.slice("pictai_".length)})`;
}

function jobData(job: SimJob, ctx: ViewContext): { success: boolean; data: JobData } {
  const status = ctx.state.status(job);
  const outcome = job.outcome;
  if (status === "completed" && outcome?.kind === "completed") {
    const url = signedUrl(ctx.origin, ctx.secret, job, ctx.state.now(), ctx.state.options.urlTtlMs);
    return { success: true, data: { status, url, ...jobPixels(job), aiCreditsUsed: outcome.credits } };
  }
  if (status === "failed" && outcome?.kind === "failed") {
    const message = ctx.state.options.echoKeyInErrors ? `${outcome.message}${keyEcho(job.apiKey)}` : outcome.message;
    return { success: false, data: { status, error_code: outcome.code, error_message: message } };
  }
  return { success: true, data: { status } };
}

/** GET /v1/jobs/{id}, and the webhook body. */
export function jobBody(job: SimJob, ctx: ViewContext): unknown {
  return { job_id: job.id, ...jobData(job, ctx) };
}

/** One item of GET /v1/jobs. */
export function jobListItem(job: SimJob, ctx: ViewContext): unknown {
  const { success, data } = jobData(job, ctx);
  const { status, ...rest } = data;
  return {
    job_id: job.id,
    success,
    data: { jobId: job.id, status, createdAt: new Date(job.createdAt).toISOString(), ...rest },
  };
}

/** One item of GET /v1/aistudio/images (completed jobs only). */
export function imageItem(job: SimJob, ctx: ViewContext): unknown {
  const r = job.request;
  const item: Record<string, unknown> = {
    url: signedUrl(ctx.origin, ctx.secret, job, ctx.state.now(), ctx.state.options.urlTtlMs),
    id: job.imageId,
    prompt: r.prompt,
    aspectRatio: r.aspectRatio,
    createdDate: new Date(job.createdAt).toISOString(),
    model: r.model,
    ...jobPixels(job),
  };
  if (r.style !== undefined) item["style"] = r.style;
  if (r.referenceImageUrl !== undefined) item["referenceImageUrl"] = r.referenceImageUrl;
  return item;
}

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64");

function decode(token: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Page keys of GET /v1/jobs: `{"lastEvaluatedKey":{"created_at","job_id"}}`, DynamoDB style. */
export function jobsPageKey(job: SimJob): string {
  return encode({ lastEvaluatedKey: { created_at: new Date(job.createdAt).toISOString(), job_id: job.id } });
}

export function jobIdFromJobsPageKey(token: string): string | null {
  const key = decode(token)?.["lastEvaluatedKey"];
  const id = typeof key === "object" && key !== null ? (key as Record<string, unknown>)["job_id"] : undefined;
  return typeof id === "string" ? id : null;
}

/** Page keys of GET /v1/aistudio/images: `{"partitionKey":"user#<uid>","sortKey":"<createdDate>#<id>"}`. */
export function imagesPageKey(job: SimJob): string {
  return encode({ partitionKey: `user#${job.userId}`, sortKey: `${new Date(job.createdAt).toISOString()}#${job.imageId}` });
}

export function imageIdFromImagesPageKey(token: string): string | null {
  const sortKey = decode(token)?.["sortKey"];
  if (typeof sortKey !== "string") return null;
  const id = sortKey.slice(sortKey.lastIndexOf("#") + 1);
  return id.length > 0 ? id : null;
}

/**
 * One page of a newest-first list, resuming after the job with sequence `afterSeq`, so
 * jobs created while a client pages never shift or repeat items.
 */
export function pageAfter(jobs: SimJob[], afterSeq: number | null, pageSize: number): { page: SimJob[]; more: boolean } {
  const start = afterSeq === null ? 0 : jobs.findIndex((j) => j.seq < afterSeq);
  if (start < 0) return { page: [], more: false };
  const page = jobs.slice(start, start + pageSize);
  return { page, more: start + pageSize < jobs.length };
}
