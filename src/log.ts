// The pino logger factory. Secrets are redacted by path, and every string of a line passes
// redactSecrets (secrets.ts), so a key pasted into a prompt or echoed by an error body still
// never reaches a log line.
import { createWriteStream, openSync } from "node:fs";
import pino, { type Logger } from "pino";
import { redactSecrets, redactSecretsIn } from "./secrets.js";

export type { Logger };

/** The one redaction of secrets.ts, under the name the CLI's last words use. */
export const maskSecrets = redactSecrets;

/**
 * How stderr reads: `text` for a person (log lines as `HH:MM:SS level message`, an error
 * that ends the command as the plain sentences it was built from), `json` for a program
 * (one pino object a line). The log file is JSON either way.
 */
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Text when a person is watching stderr; JSON for pipes, files and cron, as before the flag. */
export function defaultLogFormat(stderrIsTTY: boolean): LogFormat {
  return stderrIsTTY ? "text" : "json";
}

export interface LoggerOptions {
  level?: string;
  /** Where human/JSON lines go; defaults to stderr. */
  destination?: NodeJS.WritableStream;
  /** Also append JSON lines to this file. */
  logFile?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const streams: pino.StreamEntry[] = [{ level: "trace", stream: options.destination ?? process.stderr }];
  if (options.logFile) {
    // Opened now, so a path that cannot take a log (a folder, no permission) is refused before
    // anything runs; a write that fails later (a full disk) is told once on stderr, never a crash.
    const fd = openSync(options.logFile, "a");
    const file = createWriteStream(options.logFile, { fd });
    file.on("error", (error) => process.stderr.write(`the log file ${options.logFile} stopped taking lines: ${error.message}\n`));
    streams.push({ level: "trace", stream: file });
  }
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      redact: { paths: ["apiKey", "*.apiKey", "headers.authorization", "*.headers.authorization", "authorization"], censor: "[redacted]" },
      formatters: {
        log(object) {
          return redactSecretsIn(JSON.parse(JSON.stringify(object))) as Record<string, unknown>;
        },
      },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === "string" ? maskSecrets(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    pino.multistream(streams),
  );
}
