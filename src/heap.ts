// How imgbatch asks V8 to keep a long run's peak memory close to a short one's (bench 4).
// The flags are the bin's: the build (scripts/write-bin.mjs) writes them into dist/cli.js's
// launcher, so they apply when it runs as `imgbatch`, `npx imgbatch`, `npm start` or
// `./dist/cli.js`. `node dist/cli.js` starts without them: the same run, a higher peak.

/**
 * Peak RSS of a run at 20,000 items, against 100 (bench 4's pipeline child, 2026-11-24):
 * plain node 172–178 MiB (1.37–1.41 ×); with the first flag 163–166; with the first two
 * 151–152; with all three and releaseManifestMemory 145–147 (1.15–1.19 ×). N=100: 124–127
 * in every case. The second without the first, or the third without the second, bought
 * nothing measurable.
 * - `--max-semi-space-size=4`: V8's young generation stays at 4 MiB a half instead of
 *   growing to 16 while the manifest loads; what a run allocates per item is short-lived.
 * - `--heap-growing-percent=50`: after a full GC, the old space may grow by half of what is
 *   live before the next one, where V8 would let it grow to four times (13.5 → 54 MB).
 * - `--expose-gc`: lets the run collect the manifest's items once they are in the database.
 * What they cost in CPU per item is bench 3's "plain node ÷ with them" figure. They are V8's
 * flags, not Node's: a Node whose V8 dropped one would refuse to start (exit 9), and
 * test/bin.test.ts would fail first.
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
