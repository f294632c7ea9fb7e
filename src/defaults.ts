// Every default of imgbatch in one place. Durations carry their unit in the name.

export const DEFAULTS = {
  jobsDir: "jobs",
  outputDir: "output",
  concurrency: 4,
  maxAttempts: 5,
  /** Pictory's docs ask for 10–30 s between polls. */
  pictoryPollIntervalMs: 10_000,
  localPollIntervalMs: 0,
  /** Requests per minute over every request to one provider; 0 means no limit. */
  rpm: 0,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  /** Used when a 429 carries no Retry-After. */
  throttleFallbackMs: 5_000,
  downloadMaxBytes: 64 * 1024 * 1024,
  /**
   * A manifest that expands past this many items is refused before it is expanded (a matrix
   * typo can ask for millions); the manifest's `maxItems:` or `--max-items` raise it.
   */
  maxItems: 10_000,
  /**
   * `imgbatch plan`'s estimate before this database has seen a job of a model: the time a job
   * holds a slot (submit → its completion seen), in ms. Guesses: Pictory documents only "a few
   * minutes" at most; the simulator's defaults are 2–15 s, and the first read comes after the
   * poll interval (10 s). Then the image stage's pace (bench scenario 5: about 6 images a second
   * on 2 cores, sharp's work spread over them), API requests per item (bench scenario 1: 2.2 at
   * the tuned poll schedule), a run's start-up to its first submit (node, the manifest, the sync,
   * the quota read: about 0.4 s from the shell), and the last item's image stage.
   */
  plan: {
    jobMs: { pictory: { "flux-schnell": 10_000, "seedream3.0": 15_000, nanobanana: 20_000, "nanobanana-pro": 30_000 }, local: 250 },
    imagesPerSecondPerCore: 3,
    requestsPerItem: 2.2,
    startupMs: 400,
    tailMs: 300,
  },
  /** The largest local reference image (`referenceImage:`) accepted: Pictory documents none; a product shot is a few MB. */
  referenceImageMaxBytes: 20 * 1024 * 1024,
  /** sharp's decode guard: larger images are refused rather than decoded. */
  maxInputPixels: 64 * 1024 * 1024,
  downloadConcurrency: 2,
  /**
   * Delivered files are made durable together: one `sync -f` for those written in this
   * window (file-sync.ts). An item becomes `done` up to this much later, plus the sync. Each
   * `sync -f` forks node, and a fork write-protects all of its memory: at 200 ms the image
   * stage ran 5 % slower than with an fsync per file (benchmark scenario 5); at 1 s the two are
   * within the rounds' noise.
   */
  fileSyncWindowMs: 1_000,
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  /** How long a submit with a lost response may still be running at the service. */
  reconcileWindowMs: 30 * 60_000,
  /** A job still in progress this long after its submit fails JOB_TIMEOUT (its job id kept). */
  jobTimeoutMs: 30 * 60_000,
  /** The longest Retry-After obeyed; a longer one stops the run, resumable (exit 3). */
  retryAfterCapMs: 10 * 60_000,
  /** Only failures from the service (429, 5xx, timeouts) for this long stop the run, resumable (exit 3). */
  serviceDownMs: 15 * 60_000,
  /** A download's whole time, and the least rate it may average once past its grace. */
  downloadDeadlineMs: 5 * 60_000,
  downloadMinBytesPerSecond: 8 * 1024,
  downloadRateGraceMs: 15_000,
  summaryEveryMs: 30_000,
  /**
   * With `--listen`, an item whose submit carried the receiver's address is still read, later
   * than polling alone would (a lost webhook costs latency, never an image): its first read at
   * `first` × the poll schedule's estimate (without probes), each later read at `later` × the
   * ordinary delay. `first` is small: the estimate sits near the 90th percentile of the jobs'
   * times, and an item whose hint was lost holds its slot until that read (benchmark scenario 8).
   */
  hintStretch: { first: 1.02, later: 4 },
  /** A claim on an item not renewed for this long is free to take (a dead worker's items). */
  leaseMs: 60_000,
  /** The manifest's `thumbnail:` when it has none (a ThumbnailSpec: manifest/outputs.ts checks the shape). */
  thumbnail: { size: 256, format: "webp", quality: 80 },
  /**
   * The manifest's `qc:` when it has none (a QcSettings: manifest/qc.ts checks the shape; the
   * thresholds' measurements are in assets/qc.ts). A blank frame is never usable, so it is
   * remade, once; a wrong size or a near-duplicate is still an image, so a person decides.
   */
  qc: {
    blank: "retry",
    size: "flag",
    duplicates: "flag",
    maxRetries: 1,
    blankMaxDeviation: 4,
    blankMinSharpness: 0.1,
    duplicateMaxDistance: 10,
    sizeTolerance: 0.02,
  },
} as const;
