import { DEFAULTS } from "../defaults.js";
import type { Environment } from "../env.js";
import { ExitError, EXIT } from "../errors.js";
import { registerSecret } from "../secrets.js";
import { LocalProvider } from "./local.js";
import { DEFAULT_RETRYABLE_JOB_CODES, PictoryProvider } from "./pictory.js";
import type { Provider, ProviderName, ReferenceImage } from "./provider.js";

export const USER_AGENT = "imgbatch/0.1 (+https://github.com/imgbatch/imgbatch)";

export interface NetworkTimeouts {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export function createProvider(
  name: ProviderName,
  env: Environment,
  options: { pollIntervalMs?: number; concurrency: number; timeouts?: Partial<NetworkTimeouts>; referenceBytes?: (ref: ReferenceImage) => Buffer | null },
): Provider {
  if (name === "local") return new LocalProvider(options.referenceBytes);
  if (!env.pictoryApiKey) {
    throw new ExitError(EXIT.usage, "the pictory provider needs PICTORY_API_KEY (your pictai_ key from https://app.pictory.ai/api-access); or use --provider local");
  }
  // readEnvironment registered it already; an Environment built by hand (tests, embedders) too.
  registerSecret(env.pictoryApiKey);
  return new PictoryProvider({
    apiKey: env.pictoryApiKey,
    baseUrl: env.pictoryBaseUrl,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pictoryPollIntervalMs,
    connectTimeoutMs: options.timeouts?.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    headersTimeoutMs: options.timeouts?.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
    bodyTimeoutMs: options.timeouts?.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
    connections: Math.max(2, Math.min(64, options.concurrency + 2)),
    retryableJobCodes: DEFAULT_RETRYABLE_JOB_CODES,
    clockSkewMs: 60_000,
    userAgent: USER_AGENT,
  });
}
