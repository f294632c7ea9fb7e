// Which provider a run makes images with, and why. The provider belongs to the state, not only
// to the flags: `--provider` > the manifest's `provider:` > the one remembered for this
// database (or named by the output folder's sidecars when the database is new) > `local`.
import type { ProviderName } from "../providers/provider.js";
import type { PaidImagesWouldBeReplaced } from "../store/sync.js";

export type ProviderSource = "flag" | "manifest" | "remembered" | "sidecars" | "default";

export interface ProviderChoice {
  name: ProviderName;
  source: ProviderSource;
}

export function chooseProvider(input: {
  flag?: ProviderName | undefined;
  manifest: ProviderName | null;
  remembered: ProviderName | null;
  /** Read only when the others are silent (it costs a walk of the output folder). */
  sidecars: () => ProviderName | null;
}): ProviderChoice {
  if (input.flag) return { name: input.flag, source: "flag" };
  if (input.manifest) return { name: input.manifest, source: "manifest" };
  if (input.remembered) return { name: input.remembered, source: "remembered" };
  const fromSidecars = input.sidecars();
  if (fromSidecars) return { name: fromSidecars, source: "sidecars" };
  return { name: "local", source: "default" };
}

export function describeChoice(choice: ProviderChoice): string {
  switch (choice.source) {
    case "flag":
      return `${choice.name} (from --provider)`;
    case "manifest":
      return `${choice.name} (the manifest's provider:)`;
    case "remembered":
      return `${choice.name} (remembered: this manifest's last run used it)`;
    case "sidecars":
      return `${choice.name} (named by the sidecars in the output folder)`;
    case "default":
      return `${choice.name} (the default: no --provider, none in the manifest, none remembered)`;
  }
}

/** The refusal of a run that would remake paid images with another provider: what, and the flag that says "yes". */
export function paidReplacementMessage(refusal: PaidImagesWouldBeReplaced, choice: ProviderChoice, command: string, manifestAsTyped: string, outDir: string): string {
  if (refusal.kind === "in-flight") {
    const states = [...refusal.counts].map(([maker, byState]) => `${maker}: ${[...byState].map(([state, n]) => `${n} ${state}`).join(", ")}`).join("; ");
    return [
      `the request of ${refusal.total} item(s) changed in the manifest while their paid jobs are still at the service (${states}): ${refusal.examples.join(", ")}${refusal.total > refusal.examples.length ? ", …" : ""}.`,
      `Nothing was submitted and no file was touched.`,
      `  To keep those images: put those rows back as they were, run once (imgbatch ${command} ${manifestAsTyped}) so the jobs are delivered, then change them.`,
      `  To make them anew now and leave those jobs' images at the service: add --abandon-in-flight.`,
    ].join("\n");
  }
  const makers = [...refusal.counts.keys()];
  // e.g. "pictory made and charged for (7 done, 1 running)"
  const made = [...refusal.counts].map(([maker, byState]) => `${maker} made and charged for (${[...byState].map(([state, n]) => `${n} ${state}`).join(", ")})`).join(" and ");
  const keep = makers.length === 1 ? makers[0]! : "the provider that made them";
  const keepHow =
    choice.source === "manifest"
      ? `set the manifest's provider: to ${keep}, or run with --provider ${keep}`
      : `run with --provider ${keep}`;
  return [
    `this run would make ${refusal.total} item(s) anew with ${describeChoice(choice)} that ${made}: ${refusal.examples.join(", ")}${refusal.total > refusal.examples.length ? ", …" : ""}.`,
    `Nothing was submitted and no file was touched.`,
    `  To keep them: ${keepHow} (imgbatch ${command} ${manifestAsTyped} --provider ${keep}).`,
    `  To make them anew with ${choice.name} anyway (the earlier images are kept in ${outDir}/superseded/): add --switch-provider (imgbatch ${command} ${manifestAsTyped} --provider ${choice.name} --switch-provider).`,
  ].join("\n");
}
