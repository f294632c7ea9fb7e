// Build step after tsc: makes dist/cli.js the bin that starts node with heap.ts's NODE_FLAGS.
// Its first two lines become a launcher that both sh and JavaScript read:
//   #!/bin/sh
//   ":" //; exec /usr/bin/env node <flags> "$0" "$@"
// sh runs `:` (a no-op), then execs node on this same file (same pid, so signals and the exit
// code are node's); node skips the first line and reads the second as a string and a comment.
// A shebang with `env -S node <flags>` would be one line, but BusyBox's env (Alpine) has no -S.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { NODE_FLAGS } from "../dist/heap.js";

const BIN = new URL("../dist/cli.js", import.meta.url);
const lines = readFileSync(BIN, "utf8").split("\n");
// src/cli.ts keeps these two lines for the launcher, so dist/cli.js keeps its line numbers.
if (lines[0] !== "#!/usr/bin/env node" || !lines[1]?.startsWith("// launcher:")) {
  throw new Error(`dist/cli.js: expected "#!/usr/bin/env node" and a "// launcher:" line on top, found:\n${lines.slice(0, 2).join("\n")}`);
}
lines[0] = "#!/bin/sh";
lines[1] = `":" //; exec /usr/bin/env node ${NODE_FLAGS.join(" ")} "$0" "$@"`;
writeFileSync(BIN, lines.join("\n"));
chmodSync(BIN, 0o755);
