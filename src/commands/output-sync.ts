// After the manifest sync, the output folder follows the store: earlier files of items made
// anew move to superseded/, a request asked for again gets its files back, and items never
// submitted adopt the images their sidecars describe. Also `retry`'s choice of items.
import { restoreSuperseded, supersedeFiles } from "../assets/superseded.js";
import type { OutputLayout } from "../assets/image-stage.js";
import type { Logger } from "../log.js";
import { requestHash } from "../manifest/index.js";
import type { ProviderName } from "../providers/provider.js";
import { adoptFromSidecars, sidecarsOfUntriedItems, type Sidecar } from "../runner/adopt-sidecars.js";
import type { SyncSummary } from "../store/sync.js";
import type { Store } from "../store/port.js";

export async function applySyncToOutput(input: {
  store: Store;
  layout: OutputLayout;
  plan: SyncSummary;
  providerName: ProviderName;
  /** A new database: every sidecar in images/ (read once, also for the provider's choice). */
  sidecars: (() => Map<string, Sidecar>) | null;
  log: Logger;
}): Promise<void> {
  const { store, layout, plan, providerName, sidecars, log } = input;
  const byReason = { request: 0, provider: 0 };
  const revived = new Set(plan.revived.map((r) => r.key));
  for (const s of plan.supersede) {
    if (!revived.has(s.key)) byReason[s.reason]++;
    // Their images leave images/ now: what is there is always the manifest's current item.
    const folder = supersedeFiles(layout, s.key);
    if (folder) log.debug({ item: s.key, folder }, `kept the earlier files of ${s.key} in ${folder}`);
  }
  for (const back of plan.revived) {
    const from = back.sha256 === null ? null : restoreSuperseded(layout, back.key, back.sha256);
    log.info({ item: back.key }, `${back.key}: the manifest asks for an earlier request again: its image is brought back${from ? ` from ${from}` : " (read again from its job)"}, not made again`);
  }
  if (byReason.request) log.info({ keys: plan.supersede.filter((s) => s.reason === "request" && !revived.has(s.key)).map((s) => s.key) }, `${byReason.request} item(s) changed in the manifest: made anew by ${providerName} (earlier images kept in ${layout.supersededDir})`);
  if (byReason.provider) {
    const makers = [...new Set(plan.supersede.filter((s) => s.reason === "provider").map((s) => s.oldProvider))].join(", ");
    log.info(`${byReason.provider} item(s) made by ${makers} will be made anew by ${providerName} (earlier images kept in ${layout.supersededDir})`);
  }
  if (plan.removed) log.info(`${plan.removed} item(s) are no longer in the manifest: left alone`);
  // The output folder is a backup of the state: an item never submitted whose sidecar is there
  // (a lost database, or a run killed before it adopted) takes that image, paying nothing.
  const found = sidecars ? sidecars() : await sidecarsOfUntriedItems(store, layout);
  if (found.size > 0) {
    const adoption = await adoptFromSidecars(store, layout, found, requestHash);
    if (adoption.adopted || adoption.refused.length) {
      log.info({ refused: adoption.refused.slice(0, 20) }, `adopted ${adoption.adopted} image(s) from their sidecars in ${layout.imagesDir}, paying nothing${adoption.refused.length ? `; ${adoption.refused.length} sidecar(s) not adopted (e.g. ${adoption.refused[0]!.key}: ${adoption.refused[0]!.reason})` : ""}`);
    }
  }
}

/** `retry`'s choice (or run --retry-failed): failed items, or missing ones, or rejected ones, by rows, keys and codes. */
export async function requeueChosen(store: Store, filter: { rowIds?: string[]; keys?: string[]; codes?: string[]; missing?: boolean; rejected?: boolean }, log: Logger): Promise<void> {
  if (filter.rejected) {
    const remade = await store.requeue({ rejected: true, ...(filter.rowIds ? { rowIds: filter.rowIds } : {}), ...(filter.keys ? { keys: filter.keys } : {}) });
    log.info({ keys: remade.map((i) => i.key) }, `re-queued ${remade.length} rejected item(s)${remade.length ? ": each is made anew and paid again (the rejected images are kept in superseded/)" : ""}`);
    if (remade.length === 0) log.warn("--rejected: no delivered image is rejected now (imgbatch review marks them)");
    return;
  }
  const states = filter.missing ? (["missing"] as const) : (["failed"] as const);
  const before = await store.inStates(states);
  const requeued = await store.requeue({ ...filter, states });
  const what = filter.missing ? "missing" : "failed";
  log.info({ keys: requeued.map((i) => i.key) }, `re-queued ${requeued.length} ${what} item(s)${filter.missing && requeued.length ? ": each is paid for again" : ""}`);
  // A typo in --rows, --items or --code would otherwise re-run nothing without a word.
  const chosen = (i: (typeof before)[number]) => !filter.codes || filter.codes.includes(i.errorCode ?? "");
  const idleRows = (filter.rowIds ?? []).filter((row) => !before.some((i) => (i.rowId === row || i.key === row) && chosen(i)));
  const idleKeys = (filter.keys ?? []).filter((key) => !before.some((i) => i.key === key && chosen(i)));
  const idleCodes = (filter.codes ?? []).filter((code) => !before.some((i) => i.errorCode === code));
  if (idleRows.length) log.warn(`--rows: no ${what} item in row(s) ${idleRows.join(", ")}`);
  if (idleKeys.length) log.warn(`--items: no ${what} item with key(s) ${idleKeys.join(", ")}`);
  if (idleCodes.length) log.warn(`--code: no ${what} item with code(s) ${idleCodes.join(", ")}`);
}

