// How imgbatch asks V8 to keep its memory flat in the manifest's size (bench 4). The flags
// are the bin's: dist/cli.js starts with `#!/usr/bin/env -S node <NODE_FLAGS>`, so they apply
// when it runs as `imgbatch`, `npx imgbatch` or `./dist/cli.js` (a test keeps the two equal).
// `node dist/cli.js` starts without them: the run is the same, its peak memory higher.

/**
 * Measured at 20,000 items against 100 (bench 4, side by side with plain `node`):
 * - `--max-semi-space-size=4`: the young generation stays at 4 MiB a half instead of
 *   growing to 16. A run allocates ~200 KB per item, all of it short-lived, so the
 *   larger space bought no CPU (bench 3) and held ~30 MiB more.
 * - `--heap-growing-percent=50`: after a full GC the old space may grow by half of what is
 *   live before the next one, not up to four times: ~17 MB live grew to 54 MB before.
 * - `--expose-gc`: lets the run collect the manifest's items once they are in the database
 *   (releaseManifestMemory), before the long phase that would otherwise start on top of them.
 */
export const NODE_FLAGS = ["--max-semi-space-size=4", "--heap-growing-percent=50", "--expose-gc"] as const;

/**
 * One full GC, now: called when the manifest's items have gone to the database and nothing
 * holds them. 20,000 items and their parse are ~20 MB of heap that V8 would otherwise keep
 * committed into the run. Takes ~10 ms; does nothing when gc is not exposed.
 */
export function releaseManifestMemory(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
