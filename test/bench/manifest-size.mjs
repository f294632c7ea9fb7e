// Not a bench scenario: the memory and time `validate` takes on a 50 MB manifest, YAML and
// its CSV twin (issue 14: the YAML took 2.2 GB and 17 s, the CSV 294 MB). Target for the
// YAML: under 500 MB peak RSS and under 10 s. Run after `npm run build`:
//   node test/bench/manifest-size.mjs [rows]       (default 100,001 rows, about 50 MB)
// Each manifest is validated by `/usr/bin/time -v node dist/cli.js validate <file>` (plain
// node, without the bin's heap flags: the worse case), with `--max-items 100000`: 100,001 rows
// is one more item than that, so validate exits 1 with that one issue after reading every row.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const ROWS = Number(process.argv[2] ?? 100_001);
const TARGET = { rssMiB: 500, seconds: 10 };

/** About 500 bytes a row, every prompt distinct. */
function prompt(i) {
  return `Poster number ${i} of a quiet harbour town at dusk, fishing boats tied at the pier, warm lamplight in the windows, gulls over the water, soft mist rolling in from the sea, a lighthouse on the far headland, cobbled streets wet from the rain, people walking home with umbrellas, a bakery with its door open and bread on the shelves, a cat asleep on a windowsill, painted in the style of a travel poster from the nineteen thirties, flat colours and clean lines`;
}

function writeYaml(path) {
  const lines = ["name: big", "defaults:", "  model: flux-schnell", "rows:"];
  for (let i = 0; i < ROWS; i++) lines.push(`  - id: r${i}`, `    prompt: "${prompt(i)}"`, `    aspectRatio: "1:1"`, `    style: photorealistic`);
  writeFileSync(path, `${lines.join("\n")}\n`);
}

function writeCsv(path) {
  const lines = ["id,prompt,model,aspectRatio,style"];
  for (let i = 0; i < ROWS; i++) lines.push(`r${i},"${prompt(i)}",flux-schnell,1:1,photorealistic`);
  writeFileSync(path, `${lines.join("\n")}\n`);
}

function measure(file) {
  const result = spawnSync("/usr/bin/time", ["-v", process.execPath, CLI, "validate", file, "--max-items", "100000"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const field = (label) => result.stderr.match(new RegExp(`${label}: (.+)`))?.[1];
  const [minutes, seconds] = (field("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)") ?? "0:0").split(":").map(Number);
  const firstLine = result.stderr.split("\n").find((line) => line.trim() !== "" && !line.startsWith("\t") && !line.startsWith("Command")) ?? "";
  return { exit: Number(field("Exit status")), rssMiB: Number(field("Maximum resident set size \\(kbytes\\)")) / 1024, seconds: minutes * 60 + seconds, firstLine };
}

const dir = mkdtempSync(join(tmpdir(), "imgbatch-size-"));
try {
  execFileSync(process.execPath, ["--version"]);
  let failed = false;
  for (const [name, write] of [["big.yaml", writeYaml], ["big.csv", writeCsv]]) {
    const file = join(dir, name);
    write(file);
    const m = measure(file);
    const mb = statSync(file).size / 1e6;
    const yaml = name.endsWith(".yaml");
    const pass = !yaml || (m.rssMiB < TARGET.rssMiB && m.seconds < TARGET.seconds);
    if (!pass) failed = true;
    console.log(
      `${name}: ${ROWS} rows, ${mb.toFixed(1)} MB: peak RSS ${m.rssMiB.toFixed(0)} MiB, ${m.seconds.toFixed(2)} s, exit ${m.exit}${yaml ? ` (target < ${TARGET.rssMiB} MiB, < ${TARGET.seconds} s: ${pass ? "pass" : "FAIL"})` : ""}`,
    );
    console.log(`  ${m.firstLine.slice(0, 160)}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
