// Local reference images on their way to the service: each file (by its sha256) is uploaded once,
// before the first item that uses it is submitted, and its permanent URL recorded in the store,
// so a resumed or later run reuses it. The items that share a file wait on the same upload. An
// upload's faults are retried as data (retry-policy.ts: 429s honour Retry-After and use no
// attempt, 5xx and network faults back off, an expired signed URL asks for a fresh one); a file
// that cannot be uploaded fails only the items that use it (REFERENCE_UPLOAD_FAILED).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { StagedReference } from "../assets/reference-copies.js";
import { PermanentError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ImageRequest, Provider, ReferenceImage } from "../providers/provider.js";
import type { Store } from "../store/port.js";
import { backoffDelayMs, canRetry, classifyFailure, type BackoffPolicy } from "./retry-policy.js";
import type { ServiceGate } from "./service-gate.js";
import { sleepMs } from "./sleep.js";

export const REFERENCE_UPLOAD_FAILED = "REFERENCE_UPLOAD_FAILED";

/** Where the bytes of a reference are: the run's staged copy (assets/reference-copies.ts). */
export type ReferenceLookup = (ref: ReferenceImage) => StagedReference | null;

export interface ReferenceStagerDeps {
  store: Store;
  provider: Provider;
  gate: Pick<ServiceGate, "take" | "send" | "retryAfterMs">;
  references: ReferenceLookup;
  options: BackoffPolicy;
  log: Logger;
  now: () => number;
  random: () => number;
  /** Aborted by any stop: waits end. */
  softSignal: AbortSignal;
  /** Aborted by a hard stop: requests in flight end too. */
  hardSignal: AbortSignal;
}

export class ReferenceStager {
  /** One upload per file for the whole run, shared by every item that uses it (and its outcome). */
  private readonly urls = new Map<string, Promise<string>>();

  constructor(private readonly deps: ReferenceStagerDeps) {}

  /**
   * The request as it is sent: a local reference named by the URL it was uploaded to. A provider
   * that takes files (local) gets it as it is. Throws PermanentError REFERENCE_UPLOAD_FAILED
   * when the file cannot be uploaded; an abort when the run stops meanwhile.
   */
  async resolve(request: ImageRequest): Promise<ImageRequest> {
    const ref = request.referenceImage;
    if (ref === undefined || this.deps.provider.references === undefined) return request;
    let url = this.urls.get(ref.sha256);
    if (url === undefined) {
      url = this.upload(ref);
      this.urls.set(ref.sha256, url);
      // Stopped while uploading: the next item (next run) tries again.
      url.catch((error: unknown) => {
        if (classifyFailure(error).kind === "aborted") this.urls.delete(ref.sha256);
      });
    }
    return { ...request, referenceImageUrl: await url };
  }

  private async upload(ref: ReferenceImage): Promise<string> {
    const uploader = this.deps.provider.references!;
    const known = await this.deps.store.uploadOf(ref.sha256, uploader.service);
    if (known !== undefined) return known.url;
    const staged = this.deps.references(ref);
    const name = staged?.fileName ?? `${ref.sha256.slice(0, 12)}…`;
    if (staged === null) throw failed(`the reference ${name} has no copy in the output folder's references/ (its file changed on disk, or the manifest no longer names it): run again`);
    const bytes = await readFile(staged.path);
    if (createHash("sha256").update(bytes).digest("hex") !== ref.sha256) throw failed(`the reference ${name} changed on disk since the manifest was read: run again`);
    for (let attempt = 1; ; ) {
      await this.deps.gate.take(this.deps.softSignal);
      try {
        const { url, key } = await this.deps.gate.send(uploader.upload({ bytes, fileName: staged.fileName, contentType: ref.contentType }, this.deps.hardSignal));
        await this.deps.store.recordUpload({ sha256: ref.sha256, service: uploader.service, url, key, contentType: ref.contentType, bytes: bytes.length, uploadedAt: this.deps.now() });
        this.deps.log.info({ reference: staged.fileName, sha256: ref.sha256 }, `uploaded reference ${staged.fileName} (${ref.sha256.slice(0, 12)}, ${bytes.length} bytes, attempt ${attempt})`);
        return url;
      } catch (error) {
        const failure = classifyFailure(error);
        if (failure.kind === "aborted" || failure.kind === "fatal") throw error;
        if (failure.kind === "throttled") {
          await sleepMs(this.deps.gate.retryAfterMs(failure.retryAfterMs), this.deps.softSignal);
          continue; // a 429 uses no attempt
        }
        if (failure.kind === "permanent" || !canRetry(attempt, this.deps.options)) {
          throw failed(`the reference ${staged.fileName} could not be uploaded (${failure.code}: ${failure.message}; ${attempt} attempt${attempt === 1 ? "" : "s"}); \`imgbatch retry --code ${REFERENCE_UPLOAD_FAILED}\` tries again`);
        }
        const delayMs = backoffDelayMs(attempt, this.deps.options, this.deps.random);
        this.deps.log.warn({ reference: staged.fileName, code: failure.code }, `upload of reference ${staged.fileName} failed (${failure.code}); trying again in ${delayMs} ms`);
        attempt++;
        await sleepMs(delayMs, this.deps.softSignal);
      }
    }
  }
}

function failed(message: string): PermanentError {
  return new PermanentError(message, REFERENCE_UPLOAD_FAILED);
}
