// How imgbatch asks V8 to keep a long run's peak memory close to a short one's (bench 4).
// The flags are the bin's: the build (scripts/write-bin.mjs) writes them into dist/cli.js's
// launcher, so they apply when it runs as `imgbatch`, `npx imgbatch`, `npm start` or
// `./dist/cli.js`. `node dist/cli.js` starts without them: the same run, a higher peak.

/**
 * The flags, each kept because bench 4 showed it lowering the peak (its figures are in
 * test/bench/results.json):
 * - `--max-semi-space-size=4`: the young generation stays small while the manifest loads;
 *   what a run allocates per item is short-lived.
 * - `--heap-growing-percent=50`: after a full GC the old space grows by half of what is live,
 *   not fourfold, before the next one.
 * - `--expose-gc`: lets the run collect the manifest's items once they are in the database.
 * They are V8's flags, not Node's: a Node whose V8 dropped one would refuse to start (exit 9),
 * and test/bin.test.ts would fail first.
 */
export const NODE_FLAGS = ["--max-semi-space-size=4", "--heap-growing-percent=50", "--expose-gc"] as const;

/**
 * One full GC, now. Called once the manifest's items are in the database and nothing holds
 * them: without it V8 keeps them, and the heap they grew, into the run. Does nothing when the
 * process was started without `--expose-gc`.
 */
export function releaseManifestMemory(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
