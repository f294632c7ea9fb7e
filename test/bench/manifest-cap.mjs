// Not a bench scenario: what `validate` takes to refuse a manifest of 10^7 items (issue 17: under
// a second and under 100 MB), beside the same command on a one-item manifest. Run after `npm run build`:
//   node test/bench/manifest-cap.mjs
// Each is run three times as `/usr/bin/time -v dist/cli.js validate <file>` (the bin, with its
// launcher's node flags, as a user runs it) and as `node dist/cli.js …` (plain node); the median
// wall time and peak RSS are printed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeHugeManifest, writeTinyManifest } from "./huge-manifest.mjs";

const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const TARGET = { rssMiB: 100, seconds: 1 };
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function measure(command, file, cwd) {
  const result = spawnSync("/usr/bin/time", ["-v", ...command, "validate", file], { cwd, encoding: "utf8" });
  const field = (label) => result.stderr.match(new RegExp(`${label}: (.+)`))?.[1];
  const [minutes, seconds] = (field("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)") ?? "0:0").split(":").map(Number);
  return { exit: Number(field("Exit status")), rssMiB: Number(field("Maximum resident set size \\(kbytes\\)")) / 1024, seconds: minutes * 60 + seconds };
}

const dir = mkdtempSync(join(tmpdir(), "imgbatch-cap-"));
try {
  writeHugeManifest(join(dir, "huge.yaml"));
  writeTinyManifest(join(dir, "tiny.yaml"));
  let failed = false;
  for (const [label, command] of [["dist/cli.js (bin)", [CLI]], ["node dist/cli.js", [process.execPath, CLI]]]) {
    for (const file of ["huge.yaml", "tiny.yaml"]) {
      const runs = [0, 1, 2].map(() => measure(command, file, dir));
      const m = { exit: runs[0].exit, rssMiB: median(runs.map((r) => r.rssMiB)), seconds: median(runs.map((r) => r.seconds)) };
      const huge = file === "huge.yaml";
      const pass = !huge || (m.exit === 1 && m.rssMiB < TARGET.rssMiB && m.seconds < TARGET.seconds);
      if (!pass) failed = true;
      console.log(`${label} validate ${file}${huge ? " (10^7 items)" : " (1 item)"}: exit ${m.exit}, ${m.seconds.toFixed(2)} s, peak RSS ${m.rssMiB.toFixed(0)} MiB${huge ? ` (target < ${TARGET.seconds} s, < ${TARGET.rssMiB} MiB: ${pass ? "pass" : "FAIL"})` : ""}`);
    }
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
