#!/usr/bin/env node
// launcher: the build (scripts/write-bin.mjs) makes these two lines start node with heap.ts's flags
// Entry: parses argv, calls one command, maps what it throws to an exit code. The only
// place that calls process.exit.
import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { readEnvironment } from "./env.js";
import { EXIT, ExitError, FILE_SYSTEM_ERROR_CODES, causeChain, errorMessage } from "./errors.js";
import { LOG_FORMATS, createLogger, defaultLogFormat, maskSecrets, type LogFormat, type Logger } from "./log.js";
import { PROVIDER_NAMES, type ProviderName } from "./providers/provider.js";
import { Terminal, plainLogStream } from "./report/terminal.js";
import type { CommandContext } from "./commands/context.js";
import { parseDeadline, parseDuration, parseList, parseListenFlags, parseNonNegativeNumber, parsePositiveInt, parseRoles } from "./commands/option-values.js";
import { rebuildCommand } from "./commands/rebuild.js";
import { reportCommand } from "./commands/report.js";
import { exportCommand } from "./commands/export.js";
import { reviewCommand, type ReviewOptions } from "./commands/review.js";
import { runCommand, type RunCommandOptions } from "./commands/run.js";
import { simCommand } from "./commands/sim.js";
import { statusCommand } from "./commands/status.js";
import { validateCommand } from "./commands/validate.js";
import { verifyCommand } from "./commands/verify.js";

interface GlobalOptions {
  logLevel?: string;
  logFile?: string;
  logFormat?: LogFormat;
  quiet?: boolean;
}

interface RunFlags {
  provider?: ProviderName;
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

/** The package's version: package.json is one folder above both src/ and dist/. */
const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

const stopListeners = new Set<(signal: string) => void>();
let signalsSeen = 0;

function installSignalHandlers(warn: (message: string) => void): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      signalsSeen++;
      if (signalsSeen > 1 || stopListeners.size === 0) {
        warn(`${signal} again: exiting at once (the next run resumes from the database)`);
        process.exit(EXIT.stoppedEarly);
      }
      for (const listener of stopListeners) listener(signal);
    });
  }
}

/** Made with the command's context: main() clears its status line before a closing message. */
let liveTerminal: Terminal | null = null;

function logFormatOf(globals: GlobalOptions): LogFormat {
  return globals.logFormat ?? defaultLogFormat(process.stderr.isTTY === true);
}

function makeContext(globals: GlobalOptions): CommandContext {
  const terminal = (liveTerminal = process.stderr.isTTY ? new Terminal(process.stderr) : null);
  const level = globals.quiet ? "warn" : (globals.logLevel ?? "info");
  const format = logFormatOf(globals);
  const destination = terminal ? terminal.logStream(format) : format === "text" ? plainLogStream(process.stderr) : process.stderr;
  let logger: Logger;
  try {
    logger = createLogger({ level, destination, logFile: globals.logFile });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? errorMessage(error);
    throw new ExitError(EXIT.usage, `--log-file ${globals.logFile}: cannot be written (${code}${code === "EISDIR" ? ": it is a folder" : ""}); nothing was run`);
  }
  return {
    logger,
    env: readEnvironment(),
    stdout: process.stdout,
    terminal,
    now: Date.now,
    onStopSignal(listener) {
      stopListeners.add(listener);
      return () => stopListeners.delete(listener);
    },
  };
}

function runOptionsFrom(flags: RunFlags, globals: GlobalOptions): RunCommandOptions {
  return {
    provider: flags.provider,
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

function addRunFlags(command: Command): Command {
  return command
    .addOption(new Option("--provider <name>", "image service (default: the manifest's, else local)").choices([...PROVIDER_NAMES]))
    .option("--db <file|url>", "state database: a SQLite file (default <project>/jobs/<name>.sqlite) or postgres://… shared by several workers (IMGBATCH_DB)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .option("--worker <name>", "this process's name in a shared run's claims (default host:pid)")
    .option("--lease <duration>", "how long a claim holds without renewal: a dead worker's items are taken over after it (default 60s)")
    .option("--roles <roles>", "what this worker does in a shared run: submit, deliver, or both (default submit,deliver)")
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

export function buildProgram(exit: { code: number }): Command {
  const program = new Command();
  let ctx: CommandContext | null = null;
  const context = () => (ctx ??= makeContext(program.opts<GlobalOptions>()));
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      exit.code = await fn(...args);
    };
  program
    .name("imgbatch")
    .version(VERSION, "-V, --version", "print the version of imgbatch")
    .description("Batch image generation from a YAML or CSV manifest: resumable, crash-safe, nothing paid twice.")
    .option("--log-level <level>", "trace, debug, info, warn, error (default info)")
    .option("--log-file <file>", "also append JSON log lines to this file")
    .addOption(new Option("--log-format <format>", "stderr as plain lines or JSON lines (default: text on a terminal, else json)").choices([...LOG_FORMATS]))
    .option("-q, --quiet", "only warnings and errors; no progress line")
    .showHelpAfterError();
  // IMGBATCH_DB stands in for --db on every command that takes one (a PostgreSQL URL, usually).
  program.hook("preAction", (_program, action) => {
    const database = readEnvironment().database;
    if (database !== null && action.options.some((o) => o.long === "--db") && action.getOptionValue("db") === undefined) action.setOptionValue("db", database);
  });

  addRunFlags(program.command("run <manifest>").description("expand, submit, poll, download, thumbnail; resumes whatever the database holds"))
    .option("--retry-failed", "re-queue every failed item first")
    .action(act(async (manifest: string, flags: RunFlags) => runCommand(manifest, runOptionsFrom(flags, program.opts()), context())));

  addRunFlags(program.command("retry <manifest>").description("re-queue failed items (all, or by --rows / --items / --code) with fresh attempts, then run; --missing: the missing ones; --rejected: those rejected in review"))
    .option("--rows <ids>", "only these row ids, or item keys as status and the contact sheet show them (comma-separated)")
    .option("--items <keys>", "only these item keys (comma-separated)")
    .option("--code <codes>", "only items that failed with these error codes (comma-separated)")
    .option("--missing", "re-queue missing items instead (images lost from disk that the service no longer has): each is paid for again")
    .option("--rejected", "remake the items whose image was rejected in review instead (each paid again; the rejected image is kept in superseded/)")
    .action(
      act(async (manifest: string, flags: RunFlags & { rows?: string; items?: string; code?: string; missing?: boolean; rejected?: boolean }) =>
        runCommand(
          manifest,
          {
            ...runOptionsFrom(flags, program.opts()),
            command: "retry",
            retryFilter: {
              rowIds: flags.rows === undefined ? undefined : parseList(flags.rows),
              keys: flags.items === undefined ? undefined : parseList(flags.items),
              codes: flags.code === undefined ? undefined : parseList(flags.code),
              missing: flags.missing,
              rejected: flags.rejected,
            },
          },
          context(),
        ),
      ),
    );

  program
    .command("verify <manifest>")
    .description("check every delivered file against its sidecar and the database (sha256); exit 2 when one differs")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .option("--json", "machine-readable output")
    .action(act(async (manifest: string, flags: { db?: string; out?: string; json?: boolean }) => verifyCommand(manifest, flags, context())));

  program
    .command("rebuild <manifest>")
    .description("rebuild a lost or damaged database from the output folder's sidecars, paying nothing (the old file is kept aside)")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .addOption(new Option("--provider <name>", "provider for items without an image (default: the manifest's, else the sidecars')").choices([...PROVIDER_NAMES]))
    .option("--force", "rebuild even a database that opens")
    .action(act(async (manifest: string, flags: { db?: string; out?: string; provider?: ProviderName; force?: boolean }) => rebuildCommand(manifest, flags, context())));

  program
    .command("status <manifest>")
    .description("counts by state, credits, failures with reasons, the last runs")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder, for its superseded images (default <project>/output/<name>/)")
    .option("--json", "machine-readable output")
    .action(act(async (manifest: string, flags: { db?: string; out?: string; json?: boolean }) => statusCommand(manifest, flags, context())));

  program
    .command("report <manifest>")
    .description("write results.csv, results.jsonl and index.html for the output folder")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .action(act(async (manifest: string, flags: { db?: string; out?: string }) => reportCommand(manifest, flags, context())));

  program
    .command("export <manifest>")
    .description("hand off the approved images (and chosen renditions) with their sidecars and export.csv, as a folder or a zip")
    .option("--approved", "the images approved in `imgbatch review` (required)")
    .option("--to <dir>", "write a folder")
    .option("--zip <file>", "write a zip (the same inputs give the same bytes)")
    .option("--renditions <names>", "also these renditions (comma-separated)")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .action(
      act(async (manifest: string, flags: { approved?: boolean; to?: string; zip?: string; renditions?: string; db?: string; out?: string }) =>
        exportCommand(manifest, { ...flags, renditions: flags.renditions === undefined ? undefined : parseList(flags.renditions) }, context()),
      ),
    );

  program
    .command("review <manifest>")
    .description("a local web app to approve or reject the images, with live updates while a run goes on (prints one URL with a token)")
    .option("--db <file>", "state database (default <project>/jobs/<name>.sqlite)")
    .option("--out <dir>", "output folder (default <project>/output/<name>/)")
    .option("--port <n>", "port to listen on (default: a free one)")
    .option("--host <address>", "address to listen on (default 127.0.0.1; any other is reachable from the network)")
    .option("--reviewer <name>", "name recorded with each decision (default: your user name)")
    .action(act(async (manifest: string, flags: ReviewOptions) => reviewCommand(manifest, flags, context())));

  program
    .command("validate <manifest>")
    .description("check a manifest without submitting anything")
    .action(act(async (manifest: string) => validateCommand(manifest, context())));

  program
    .command("sim")
    .description("start the local Pictory simulator (for tests and dry runs)")
    .option("--port <n>", "port on 127.0.0.1 (default: a free one)")
    .option("--config <file>", "simulator options (JSON): latency, faults, keys")
    .action(act(async (flags: { port?: string; config?: string }) => simCommand(flags, context())));

  program.exitOverride();
  program.configureOutput({
    writeErr: (text) => process.stderr.write(text),
  });
  return program;
}

/**
 * An error that escaped a command but is the environment's: a file or folder that could not be
 * written (exit 3: whatever the run did is in the database, and it resumes), or a database found
 * damaged past its first pages (exit 1, naming rebuild). Anything else stays a bug (exit 70).
 */
function environmentFailure(error: unknown): { exitCode: number; message: string } | null {
  for (const link of causeChain(error)) {
    const code = (link as { code?: unknown } | null)?.code;
    if (typeof code !== "string") continue;
    if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
      return { exitCode: EXIT.usage, message: `the job database is damaged (${errorMessage(link)}): imgbatch rebuild <manifest> rebuilds it from the output folder's sidecars without paying (it keeps the damaged file aside)` };
    }
    if (code === "SQLITE_FULL" || FILE_SYSTEM_ERROR_CODES.has(code)) {
      return { exitCode: EXIT.stoppedEarly, message: `a file or folder could not be written (${errorMessage(link)}); stopped, and the next run resumes from the database` };
    }
  }
  return null;
}

async function main(): Promise<void> {
  const exit = { code: EXIT.ok as number };
  const program = buildProgram(exit);
  let logger: Logger | null = null;
  // A message that ends the command: in json, a line like every log line (the logger masks
  // keys); in text, the sentences themselves (a manifest's problems one a line), no time or
  // level in front.
  const printLast = (level: "warn" | "error", message: string, fields?: Record<string, unknown>): void => {
    if (logFormatOf(program.opts<GlobalOptions>()) === "json") {
      logger ??= createLogger({ level: "info", destination: process.stderr });
      if (fields) logger[level](fields, message);
      else logger[level](message);
      return;
    }
    liveTerminal?.clearStatus();
    process.stderr.write(`${maskSecrets(message)}\n`);
  };
  installSignalHandlers((message) => printLast("warn", message));
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with their own code (0).
      exit.code = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else if (error instanceof ExitError) {
      if (error.message) printLast("error", error.message);
      exit.code = error.exitCode;
    } else {
      const environment = environmentFailure(error);
      if (environment) {
        printLast("error", environment.message);
        exit.code = environment.exitCode;
      } else {
        printLast("error", `internal error: ${errorMessage(error)}`, { err: errorMessage(error) });
        exit.code = EXIT.internal;
      }
    }
  }
  process.exitCode = exit.code;
  // Let pino flush, then leave even if a stray handle would keep the loop alive.
  setTimeout(() => process.exit(exit.code), 50).unref();
}

void main();
