import { Writable } from "node:stream";
import type { CommandContext } from "../../src/commands/context.js";
import { readEnvironment } from "../../src/env.js";
import { createLogger } from "../../src/log.js";

/** A command context whose log lines and stdout are kept in memory, for in-process runs. */
export function testContext(env: NodeJS.ProcessEnv = {}, level = "debug") {
  const logs: string[] = [];
  const out: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        into.push(chunk.toString());
        done();
      },
    });
  const stopListeners = new Set<(signal: string) => void>();
  const ctx: CommandContext = {
    logger: createLogger({ level, destination: sink(logs) }),
    env: readEnvironment(env),
    stdout: sink(out),
    terminal: null,
    now: Date.now,
    onStopSignal(listener) {
      stopListeners.add(listener);
      return () => stopListeners.delete(listener);
    },
  };
  return {
    ctx,
    logs: () => logs.join(""),
    stdout: () => out.join(""),
    signal: (name = "SIGINT") => [...stopListeners].forEach((l) => l(name)),
  };
}
