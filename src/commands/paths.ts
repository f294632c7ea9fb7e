import { join, resolve } from "node:path";
import { DEFAULTS } from "../defaults.js";

export interface RunPaths {
  db: string;
  outDir: string;
}

/** Defaults: `jobs/<name>.sqlite` and `output/<name>/`, relative to the working folder. */
export function runPaths(name: string, options: { db?: string; out?: string }): RunPaths {
  return {
    db: resolve(options.db ?? join(DEFAULTS.jobsDir, `${name}.sqlite`)),
    outDir: resolve(options.out ?? join(DEFAULTS.outputDir, name)),
  };
}
