// The few error classes of imgbatch. Per-item outcomes are values (see runner/outcome.ts);
// these are for what stops an item's attempt or the whole run.

/** A failure of one request to a service, classified once where it happened. */
export class ServiceError extends Error {
  override name = "ServiceError";
  constructor(
    message: string,
    readonly code: string,
    readonly options: {
      httpStatus?: number;
      retryable: boolean;
      /** The request may have reached the service and created a job (a lost response). */
      maybeCreated?: boolean;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options.cause });
  }
  get retryable(): boolean {
    return this.options.retryable;
  }
  get maybeCreated(): boolean {
    return this.options.maybeCreated ?? false;
  }
  get httpStatus(): number | undefined {
    return this.options.httpStatus;
  }
}

/** 429: the whole provider pauses; the item's attempt is not counted. */
export class ThrottledError extends ServiceError {
  override name = "ThrottledError";
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message, "RATE_LIMITED", { httpStatus: 429, retryable: true });
  }
}

/** Bad input or policy: retrying the same request cannot help. */
export class PermanentError extends ServiceError {
  override name = "PermanentError";
  constructor(message: string, code: string, httpStatus?: number, readonly fields: { name: string; errors: string }[] = []) {
    super(message, code, { httpStatus, retryable: false });
  }
}

/**
 * Stops the whole run: every further item would fail the same way (bad key, no credits,
 * disk full). `exitCode` is 1 when the run cannot work as configured, 3 when it can resume.
 */
export class FatalRunError extends Error {
  override name = "FatalRunError";
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode: 1 | 3,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A bug: an invariant did not hold. */
export class InternalError extends Error {
  override name = "InternalError";
}

/**
 * A worker's write refused because the item was claimed since (by another worker, or anew):
 * the stale writer drops the item instead of overwriting what its new owner did.
 */
export class ClaimLostError extends Error {
  override name = "ClaimLostError";
}

/** Thrown by commands to end the process with a code; only cli.ts calls process.exit. */
export class ExitError extends Error {
  override name = "ExitError";
  constructor(
    readonly exitCode: number,
    message = "",
  ) {
    super(message);
  }
}

export const EXIT = {
  ok: 0,
  usage: 1,
  someFailed: 2,
  stoppedEarly: 3,
  locked: 4,
  /** An error imgbatch did not expect: a bug (sysexits' EX_SOFTWARE). */
  internal: 70,
} as const;

/**
 * Errors of the local file system (full, read-only, refused, the wrong kind of thing in the
 * way): the environment's, met by every further write too, never a bug of imgbatch.
 */
export const FILE_SYSTEM_ERROR_CODES: ReadonlySet<string> = new Set([
  "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE", "EIO", "ENOTDIR", "EISDIR", "EEXIST", "ENAMETOOLONG", "EXDEV",
]);

/** Walks `.cause` links, nearest first. */
export function* causeChain(error: unknown): Generator<unknown> {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
