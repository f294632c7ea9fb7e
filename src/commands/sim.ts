// `imgbatch sim`: the local Pictory simulator, until SIGINT/SIGTERM.
import { EXIT, ExitError } from "../errors.js";
import { formatSimBanner, loadSimConfig, startSimulator, type SimOptionsPatch } from "../sim/index.js";
import type { CommandContext } from "./context.js";
import { parsePositiveInt } from "./option-values.js";

export async function simCommand(flags: { port?: string; config?: string }, ctx: CommandContext): Promise<number> {
  let options: SimOptionsPatch = {};
  try {
    if (flags.config) options = loadSimConfig(flags.config);
  } catch (error) {
    throw new ExitError(EXIT.usage, (error as Error).message);
  }
  if (flags.port !== undefined) options = { ...options, port: parsePositiveInt(flags.port, "--port", 65535) };
  const sim = await startSimulator(options);
  ctx.stdout.write(`${formatSimBanner(sim)}\n`);
  await new Promise<void>((resolve) => {
    const unregister = ctx.onStopSignal(() => {
      unregister();
      resolve();
    });
  });
  await sim.stop();
  return EXIT.ok;
}
