// The environment is read here and nowhere else.
import { registerSecret } from "./secrets.js";

export interface Environment {
  pictoryApiKey: string | null;
  pictoryBaseUrl: string;
  /** IMGBATCH_FSYNC_EACH_FILE=1: fsync each delivered file instead of batched syncfs (file-sync.ts). */
  fsyncEachFile: boolean;
  /** IMGBATCH_DB: the state database when --db is not given (a PostgreSQL URL shares a run between machines). */
  database: string | null;
}

export const DEFAULT_PICTORY_BASE_URL = "https://api.pictory.ai/pictoryapis";

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const key = env.PICTORY_API_KEY?.trim();
  const base = env.PICTORY_BASE_URL?.trim();
  // Masked from here on in every log line, stored message and report (secrets.ts).
  registerSecret(key);
  return {
    pictoryApiKey: key ? key : null,
    pictoryBaseUrl: base ? base.replace(/\/+$/, "") : DEFAULT_PICTORY_BASE_URL,
    fsyncEachFile: /^(1|true|yes)$/i.test(env.IMGBATCH_FSYNC_EACH_FILE?.trim() ?? ""),
    database: env.IMGBATCH_DB?.trim() || null,
  };
}
