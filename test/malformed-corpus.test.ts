// The malformed-manifest corpus (test/fixtures/malformed/, written by its make-malformed.mjs):
// every file is one mistake a user makes. The built CLI's `validate` and `run --provider
// local` each exit 1 on it, name the file, the line (CSV: the row and line) and the field
// that index.json lists, and `run` leaves nothing behind: the file's folder holds only the
// file afterwards (no jobs/, no output/). Each file is run in a folder of its own, a few
// CLIs at a time. Needs `npm run build` first.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, type CliResult, runCli } from "./helpers/cli.js";

const DIR = fileURLToPath(new URL("./fixtures/malformed/", import.meta.url));

interface Expected {
  line: number;
  row?: number;
  field: string;
  /** A regular expression for the start of the message. */
  message: string;
  /** How many problems the file has; 1 unless said. */
  problems?: number;
}

const INDEX = JSON.parse(readFileSync(path.join(DIR, "index.json"), "utf8")) as Record<string, Expected>;
const FILES = Object.keys(INDEX).sort();
const COMMANDS = {
  validate: (file: string) => ["validate", file, "--log-format", "text"],
  run: (file: string) => ["run", file, "--provider", "local", "--log-format", "text"],
} as const;
type Command = keyof typeof COMMANDS;

const results = new Map<string, { result: CliResult; left: string[] }>();
let root = "";

/** Runs `tasks` with at most `limit` at a time. */
async function inBatches(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]?.();
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error("dist/cli.js is missing: run `npm run build` first");
  root = mkdtempSync(path.join(tmpdir(), "imgbatch-malformed-"));
  const tasks: (() => Promise<void>)[] = [];
  for (const file of FILES) {
    for (const command of Object.keys(COMMANDS) as Command[]) {
      const folder = path.join(root, command, file.replace(/\./g, "_"));
      mkdirSync(folder, { recursive: true });
      copyFileSync(path.join(DIR, file), path.join(folder, file));
      tasks.push(async () => {
        const result = await runCli(COMMANDS[command](file), { cwd: folder, timeoutMs: 60_000 });
        results.set(`${command} ${file}`, { result, left: readdirSync(folder) });
      });
    }
  }
  await inBatches(tasks, Math.max(2, availableParallelism() * 2));
}, 600_000);

afterAll(() => {
  if (root !== "") rmSync(root, { recursive: true, force: true });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("the corpus", () => {
  it("has at least 60 manifests, YAML and CSV, each listed in index.json", () => {
    const onDisk = readdirSync(DIR).filter((file) => !["index.json", "make-malformed.mjs"].includes(file));
    expect(onDisk.sort()).toEqual(FILES);
    expect(FILES.length).toBeGreaterThanOrEqual(60);
    expect(FILES.filter((file) => file.endsWith(".yaml")).length).toBeGreaterThanOrEqual(30);
    expect(FILES.filter((file) => file.endsWith(".csv")).length).toBeGreaterThanOrEqual(20);
  });
});

describe.each(Object.keys(COMMANDS) as Command[])("%s", (command) => {
  it.each(FILES)("%s: exit 1, the file, line or row and field named, nothing created", (file) => {
    const expected = INDEX[file]!;
    const outcome = results.get(`${command} ${file}`);
    expect(outcome, "the CLI did not run").toBeDefined();
    const { result, left } = outcome!;
    expect(result.signal, result.stderr).toBeNull();
    expect(result.code, result.stderr).toBe(1);
    const count = expected.problems ?? 1;
    expect(result.stderr).toContain(`${file}: ${count} problem${count === 1 ? "" : "s"}`);
    const where = expected.row !== undefined ? `${file} row ${expected.row} (line ${expected.line})` : `${file} line ${expected.line}`;
    const line = new RegExp(`^  ${escape(where)}${expected.field === "" ? "" : `, ${escape(expected.field)}`}: ${expected.message}`, "m");
    expect(result.stderr).toMatch(line);
    expect(left, "the folder holds only the manifest afterwards").toEqual([file]);
  });
});
