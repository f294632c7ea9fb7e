// The flags `run` and `retry` share: their declaration and their reading into the command's options.
import { Option, type Command } from "commander";
import { MAX_ITEMS_LIMIT } from "../manifest/values.js";
import { PROVIDER_NAMES, type ProviderName } from "../providers/provider.js";
import { parseDeadline, parseDuration, parseListenFlags, parseNonNegativeNumber, parsePositiveInt, parseRoles } from "./option-values.js";
import type { RunCommandOptions } from "./run.js";

export interface RunFlags {
  provider?: ProviderName;
  maxItems?: string;
  db?: string;
  out?: string;
  concurrency?: string;
  maxAttempts?: string;
  pollInterval?: string;
  rpm?: string;
  deadline?: string;
  maxRuntime?: string;
  maxCredits?: string;
  retryFailed?: boolean;
  switchProvider?: boolean;
  abandonInFlight?: boolean;
  jobTimeout?: string;
  worker?: string;
  lease?: string;
  roles?: string;
  listen?: string;
  publicUrl?: string;
}

export const maxItemsOf = (flags: { maxItems?: string }) => (flags.maxItems === undefined ? undefined : parsePositiveInt(flags.maxItems, "--max-items", MAX_ITEMS_LIMIT));
export const MAX_ITEMS_HELP = "refuse a manifest that expands past n items (default: its maxItems:, else 10000)";

export function runOptionsFrom(flags: RunFlags, globals: { quiet?: boolean }): RunCommandOptions {
  return {
    provider: flags.provider,
    maxItems: maxItemsOf(flags),
    db: flags.db,
    out: flags.out,
    concurrency: flags.concurrency === undefined ? undefined : parsePositiveInt(flags.concurrency, "--concurrency", 1000),
    maxAttempts: flags.maxAttempts === undefined ? undefined : parsePositiveInt(flags.maxAttempts, "--max-attempts", 100),
    pollIntervalMs: flags.pollInterval === undefined ? undefined : parseDuration(flags.pollInterval, "--poll-interval"),
    rpm: flags.rpm === undefined ? undefined : parsePositiveInt(flags.rpm, "--rpm", 1_000_000),
    stopSubmittingAt: flags.deadline === undefined ? undefined : parseDeadline(flags.deadline, "--deadline"),
    maxRuntimeMs: flags.maxRuntime === undefined ? undefined : parseDuration(flags.maxRuntime, "--max-runtime"),
    maxCredits: flags.maxCredits === undefined ? undefined : parseNonNegativeNumber(flags.maxCredits, "--max-credits"),
    retryFailed: flags.retryFailed,
    switchProvider: flags.switchProvider,
    abandonInFlight: flags.abandonInFlight,
    jobTimeoutMs: flags.jobTimeout === undefined ? undefined : parseDuration(flags.jobTimeout, "--job-timeout"),
    worker: flags.worker,
    leaseMs: flags.lease === undefined ? undefined : parseDuration(flags.lease, "--lease"),
    roles: flags.roles === undefined ? undefined : parseRoles(flags.roles),
    quiet: globals.quiet,
    ...parseListenFlags(flags.listen, flags.publicUrl),
  };
}

export function addRunFlags(command: Command): Command {
  return command
    .addOption(new Option("--provider <name>", "image service (default: the manifest's, else local)").choices([...PROVIDER_NAMES]))
    .option("--db <file|url>", "state database: a SQLite file (default <project>/jobs/<name>.sqlite) or postgres://… shared by several workers (IMGBATCH_DB)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .option("--worker <name>", "this process's name in a shared run's claims (default host:pid)")
    .option("--lease <duration>", "how long a claim holds without renewal: a dead worker's items are taken over after it (default 60s)")
    .option("--roles <roles>", "what this worker does in a shared run: submit, deliver, or both (default submit,deliver)")
    .option("--max-items <n>", MAX_ITEMS_HELP)
    .option("--concurrency <n>", "items in flight at the service (default 4)")
    .option("--max-attempts <n>", "attempts per item before it fails (default 5)")
    .option("--poll-interval <duration>", "time between polls of a job, e.g. 250ms, 10s, 2m (default 10s for pictory)")
    .option("--rpm <n>", "requests per minute over every request to the service (default: no limit)")
    .option("--deadline <HH:MM|ISO>", "stop submitting at this time, exit 3")
    .option("--max-runtime <duration>", "stop submitting after this long, exit 3")
    .option("--max-credits <n>", "stop submitting before this run's credits (spent + in flight) would pass n, exit 3")
    .option("--job-timeout <duration>", "a job still in progress this long after its submit fails JOB_TIMEOUT, job id kept (default 30m)")
    .option("--listen <[host:]port>", "receive the service's webhooks here (host 127.0.0.1 unless given) as hints to read a job at once; needs --public-url")
    .option("--public-url <url>", "the address at which the service reaches --listen (each item gets <url>/<key>/<token>)")
    .option("--abandon-in-flight", "make items whose request changed anew although their paid jobs are still at the service")
    .option("--switch-provider", "make items another (paying) provider made anew with this run's provider (their images are kept in superseded/)");
}
