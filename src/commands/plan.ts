// `imgbatch plan <manifest>`: how many, how much, how long, before paying. Read → plan → print:
// the manifest and the database (a SQLite file opened read-only: plan never writes it; none yet
// means nothing is done; a PostgreSQL URL opened as every command opens it) are read here, the plan is pure (plan-items.ts, plan-estimate.ts), the print too
// (plan-print.ts). With PICTORY_API_KEY and the pictory provider, one GET /v1/quota.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { DEFAULTS } from "../defaults.js";
import { EXIT, errorMessage } from "../errors.js";
import { requestHash } from "../manifest/index.js";
import { createProvider } from "../providers/index.js";
import { serviceOf } from "../providers/pictory-upload.js";
import type { ProviderName } from "../providers/provider.js";
import { isDatabaseUrl } from "../store/index.js";
import type { Store } from "../store/port.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { openStoreOrExit } from "./open-store.js";
import { runPaths } from "./paths.js";
import { planEstimate } from "./plan-estimate.js";
import { PlanTally } from "./plan-items.js";
import { formatPlan, type PlanReport } from "./plan-print.js";
import { chooseProvider, describeChoice } from "./provider-choice.js";
import { shellWord } from "./shell.js";

export interface PlanOptions {
  provider?: ProviderName;
  db?: string;
  out?: string;
  concurrency?: number;
  rpm?: number;
  maxItems?: number;
  json?: boolean;
}

/** Keys asked of the store at a time (as the sync reads them). */
const CHUNK_ITEMS = 500;
/** Done items whose times the estimate learns from, newest first. */
const TIMINGS = 2_000;

export async function planCommand(manifestPath: string, options: PlanOptions, ctx: CommandContext): Promise<number> {
  const manifest = await loadManifestOrExit(manifestPath, ctx, { maxItems: options.maxItems });
  const paths = runPaths(manifest, options);
  const dbExists = isDatabaseUrl(paths.db) || existsSync(paths.db);
  const store = dbExists ? await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: true }) : null;
  try {
    const choice = chooseProvider({ flag: options.provider, manifest: manifest.provider, remembered: (await store?.rememberedProvider()) ?? null, sidecars: () => null });
    const tally = new PlanTally(choice.name, requestHash);
    for (let at = 0; at < manifest.items.length; at += CHUNK_ITEMS) {
      const chunk = manifest.items.slice(at, at + CHUNK_ITEMS).map((item) => ({ item, requestHash: requestHash(item.request, choice.name) }));
      tally.add(chunk, store ? await store.planDigests(chunk.map(({ item }) => item.key)) : { live: [], doneBefore: [] });
    }
    const items = tally.result();
    const toUpload = choice.name === "pictory" ? await notUploaded(store, items.references, serviceOf(ctx.env.pictoryBaseUrl)) : 0;
    const estimate = planEstimate({
      provider: choice.name,
      submitModels: items.submitModels,
      timings: store ? await store.jobTimings(TIMINGS) : [],
      concurrency: options.concurrency ?? DEFAULTS.concurrency,
      rpm: options.rpm ?? null,
      uploads: toUpload,
      cores: availableParallelism(),
    });
    const { submitModels: _models, references, ...counted } = items;
    const needed = items.credits + items.inFlightCredits;
    const report: PlanReport = {
      ...counted,
      manifest: manifestPath,
      name: manifest.name,
      db: paths.dbLabel,
      dbExists,
      provider: choice.name,
      providerFrom: describeChoice(choice).replace(/^\S+ \((.*)\)$/, "$1"),
      references: { files: references.size, toUpload },
      estimate,
      account: choice.name === "pictory" && ctx.env.pictoryApiKey ? await accountCredits(ctx, needed) : null,
    };
    ctx.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatPlan(report));
    return EXIT.ok;
  } finally {
    await store?.close();
  }
}

async function notUploaded(store: Store | null, references: ReadonlySet<string>, service: string): Promise<number> {
  let count = 0;
  for (const sha256 of references) if ((await store?.uploadOf(sha256, service)) === undefined) count++;
  return count;
}

/** One GET /v1/quota; a refused key or an outage is reported in the plan, not thrown. */
async function accountCredits(ctx: CommandContext, needed: number): Promise<PlanReport["account"]> {
  const provider = createProvider("pictory", ctx.env, { concurrency: 1 });
  try {
    const { creditsRemaining } = await provider.preflight();
    return { creditsRemaining, needed, enough: creditsRemaining === null ? null : creditsRemaining + 1e-9 >= needed };
  } catch (error) {
    return { error: errorMessage(error) };
  } finally {
    await provider.close();
  }
}
