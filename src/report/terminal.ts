// The terminal, when stderr is one: log lines are printed above a status line that is
// redrawn in place, so the two never interleave. Not used for pipes, files or cron; there,
// `--log-format text` takes the same lines without colour (plainLogStream).
import { Writable } from "node:stream";
import type { LogFormat } from "../log.js";

const LEVEL_NAMES: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };
const LEVEL_COLOURS: Record<number, string> = { 40: "\x1b[33m", 50: "\x1b[31m", 60: "\x1b[31m" };

export class Terminal {
  private status = "";
  constructor(private readonly out: NodeJS.WriteStream) {}

  get columns(): number {
    return this.out.columns || 100;
  }

  /** Prints a whole line above the status line. */
  printLine(line: string): void {
    this.out.write(`\r\x1b[2K${line}\n${this.status}`);
  }

  setStatus(status: string): void {
    this.status = status.length > this.columns - 1 ? `${status.slice(0, this.columns - 2)}…` : status;
    this.out.write(`\r\x1b[2K${this.status}`);
  }

  clearStatus(): void {
    if (this.status) this.out.write("\r\x1b[2K");
    this.status = "";
  }

  /** A stream for pino: each JSON line is shown as `HH:MM:SS level message` (`text`) or as it is (`json`). */
  logStream(format: LogFormat = "text"): Writable {
    return eachLine((line) => this.printLine(format === "json" ? line : prettyLogLine(line)));
  }
}

/** A stream for pino that writes each JSON line to `out` as `HH:MM:SS level message`, no colour. */
export function plainLogStream(out: NodeJS.WritableStream): Writable {
  return eachLine((line) => out.write(`${prettyLogLine(line, false)}\n`));
}

/** pino writes whole lines, but a stream may still be handed them in pieces. */
function eachLine(onLine: (line: string) => void): Writable {
  let pending = "";
  return new Writable({
    write: (chunk: Buffer, _enc, done) => {
      pending += chunk.toString("utf8");
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        onLine(line);
      }
      done();
    },
  });
}

export function prettyLogLine(jsonLine: string, colour = true): string {
  try {
    const entry = JSON.parse(jsonLine) as { level?: number; time?: number; msg?: string };
    const time = new Date(entry.time ?? Date.now()).toTimeString().slice(0, 8);
    const level = entry.level ?? 30;
    const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
    if (!colour) return `${time} ${name} ${entry.msg ?? ""}`;
    return `\x1b[2m${time}\x1b[0m ${LEVEL_COLOURS[level] ?? ""}${name}\x1b[0m ${entry.msg ?? ""}`;
  } catch {
    return jsonLine;
  }
}
