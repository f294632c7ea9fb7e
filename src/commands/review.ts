// `imgbatch review <manifest>`: the morning review's local web app over the run's database,
// until SIGINT/SIGTERM. It prints one line, the URL with its token; a run may go on beside it.
import { existsSync } from "node:fs";
import { networkInterfaces, userInfo } from "node:os";
import { outputLayout } from "../assets/image-stage.js";
import { EXIT, ExitError } from "../errors.js";
import { keysOf } from "../report/index.js";
import { isLoopback, startReviewServer } from "../review/server.js";
import type { CommandContext } from "./context.js";
import { loadManifestOrExit } from "./manifest-errors.js";
import { isDatabaseUrl } from "../store/index.js";
import { openStoreOrExit } from "./open-store.js";
import { parsePositiveInt } from "./option-values.js";
import { runPaths } from "./paths.js";
import { shellWord } from "./shell.js";

export interface ReviewOptions {
  db?: string;
  out?: string;
  port?: string;
  host?: string;
  reviewer?: string;
}

export const DEFAULT_REVIEW_HOST = "127.0.0.1";
const MAX_REVIEWER_LENGTH = 64;

/** The name kept with each decision: printable, at most 64 characters. */
export function reviewerName(given: string | undefined, osUser: () => string = () => userInfo().username): string {
  let name = given;
  if (name === undefined) {
    try {
      name = osUser();
    } catch {
      throw new ExitError(EXIT.usage, "no user name to record decisions under: give one with --reviewer NAME");
    }
  }
  name = name.trim();
  if (name === "" || name.length > MAX_REVIEWER_LENGTH || /[\p{C}]/u.test(name)) {
    throw new ExitError(EXIT.usage, `--reviewer: a name of 1 to ${MAX_REVIEWER_LENGTH} printable characters, not ${JSON.stringify(given ?? name)}`);
  }
  return name;
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === "0") return 0;
  return parsePositiveInt(value, "--port", 65535);
}

/** An address others on the network can open, for a server bound to every interface. */
function publicAddress(host: string): string {
  if (host !== "0.0.0.0" && host !== "::") return host;
  for (const addresses of Object.values(networkInterfaces())) {
    const outward = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (outward) return outward.address;
  }
  return host;
}

export async function reviewCommand(manifestPath: string, options: ReviewOptions, ctx: CommandContext): Promise<number> {
  const reviewer = reviewerName(options.reviewer);
  const port = parsePort(options.port);
  const host = options.host ?? DEFAULT_REVIEW_HOST;
  const manifest = await loadManifestOrExit(manifestPath, ctx);
  const paths = runPaths(manifest, options);
  // A review of nothing would make an empty database where the run will look for one.
  if (!isDatabaseUrl(paths.db) && !existsSync(paths.db)) throw new ExitError(EXIT.usage, `no database at ${paths.db}: this manifest has not been run yet (imgbatch run ${shellWord(manifestPath)})`);
  const store = await openStoreOrExit(paths, { name: manifest.name, asTyped: shellWord(manifestPath) }, { readonly: false });
  let server;
  try {
    await store.keepManifestOrder(keysOf(manifest.items));
    server = await startReviewServer({ store, layout: outputLayout(paths.outDir), name: manifest.name, reviewer, host, port, publicHost: publicAddress(host), logger: ctx.logger });
  } catch (error) {
    await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new ExitError(EXIT.usage, `--port ${port}: another program listens there; choose another, or leave --port out for a free one`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") throw new ExitError(EXIT.usage, `--host ${host}: not an address of this machine (${code})`);
    if (code === "EACCES") throw new ExitError(EXIT.usage, `--port ${port}: not allowed for this user (ports below 1024 need privileges)`);
    throw error;
  }
  if (!isLoopback(host)) {
    ctx.logger.warn(`review listens on ${host}: others on the network can reach it, and the token in its URL is all that protects it`);
  }
  ctx.stdout.write(`${server.url}\n`);
  await new Promise<void>((resolve) => {
    const unregister = ctx.onStopSignal(() => {
      unregister();
      resolve();
    });
  });
  await server.close();
  await store.close();
  return EXIT.ok;
}
