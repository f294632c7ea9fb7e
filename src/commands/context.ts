// What cli.ts hands every command: the logger, the environment, output streams, and a
// way to hear about SIGINT/SIGTERM (cli.ts owns the process; commands never exit it).
import type { Environment } from "../env.js";
import type { Logger } from "../log.js";
import type { Terminal } from "../report/terminal.js";

export interface CommandContext {
  logger: Logger;
  env: Environment;
  /** Human and machine output (tables, --json). Logs go to the logger, never here. */
  stdout: NodeJS.WritableStream;
  /** Registers what a first SIGINT/SIGTERM does; returns a function that unregisters it. */
  onStopSignal(listener: (signal: string) => void): () => void;
  now(): number;
  /** Present when stderr is a terminal: the live progress line and pretty log lines share it. */
  terminal: Terminal | null;
}
