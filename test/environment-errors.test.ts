// Issue 14: a problem of the environment (a path that is the wrong kind of thing, a database
// of another version) is a usage or configuration error: exit 1 with one sentence, nothing
// submitted. Exit 70 stays for imgbatch's own bugs.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS } from "../src/store/migrations.js";
import { runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const CSV = "id,prompt\nmug,A ceramic mug on a wooden desk at dawn\n";

function project(): string {
  const dir = tempDir();
  writeFileSync(join(dir, "summer.csv"), CSV);
  return dir;
}

describe("environment errors exit 1 with a sentence, never 70", () => {
  it.each([
    ["the output folder is a file", (dir: string) => {
      writeFileSync(join(dir, "taken"), "a file");
      return ["run", "summer.csv", "--out", "taken"];
    }, /the output folder .*taken: a file stands where the folder/],
    ["a folder above the output folder is a file", (dir: string) => {
      writeFileSync(join(dir, "taken"), "a file");
      return ["run", "summer.csv", "--out", "taken/out"];
    }, /a file stands where the folder/],
    ["--db is a folder", (dir: string) => {
      mkdirSync(join(dir, "db-folder"));
      return ["run", "summer.csv", "--db", "db-folder"];
    }, /the job database .*db-folder cannot be opened or created/],
    ["--db is garbage", (dir: string) => {
      writeFileSync(join(dir, "garbage.sqlite"), "not a database ".repeat(500));
      return ["run", "summer.csv", "--db", "garbage.sqlite"];
    }, /cannot be used: .*imgbatch rebuild summer\.csv/s],
    ["--db is of a newer imgbatch", (dir: string) => {
      const db = new Database(join(dir, "newer.sqlite"));
      db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
      db.close();
      return ["run", "summer.csv", "--db", "newer.sqlite"];
    }, /schema \(\d+\) is newer than this imgbatch's/],
    ["status with --db a folder", (dir: string) => {
      mkdirSync(join(dir, "db-folder"));
      return ["status", "summer.csv", "--db", "db-folder"];
    }, /the job database .*db-folder cannot be opened or created/],
    ["report with --out a file", (dir: string) => {
      new Database(join(dir, "state.sqlite")).close();
      writeFileSync(join(dir, "taken"), "a file");
      return ["report", "summer.csv", "--db", "state.sqlite", "--out", "taken"];
    }, /the output folder .*taken: a file stands where the folder/],
    ["rebuild with --db a folder (which it must never set aside)", (dir: string) => {
      mkdirSync(join(dir, "db-folder"));
      writeFileSync(join(dir, "db-folder", "keep.txt"), "mine");
      return ["rebuild", "summer.csv", "--db", "db-folder"];
    }, /db-folder is not a file: --db names the database file\. Nothing was changed\./],
    ["--log-file is a folder", (dir: string) => {
      mkdirSync(join(dir, "logs"));
      return ["--log-file", "logs", "run", "summer.csv"];
    }, /--log-file logs: cannot be written \(EISDIR: it is a folder\)/],
  ])("%s", async (_name, arrange, message) => {
    const dir = project();
    const result = await runCli(arrange(dir), { cwd: dir });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  });

  it("rebuild given a folder as --db leaves that folder where it is, untouched", async () => {
    const dir = project();
    mkdirSync(join(dir, "db-folder"));
    writeFileSync(join(dir, "db-folder", "keep.txt"), "mine");
    const result = await runCli(["rebuild", "summer.csv", "--db", "db-folder"], { cwd: dir });
    expect(result.code, result.stderr).toBe(1);
    expect(readFileSync(join(dir, "db-folder", "keep.txt"), "utf8")).toBe("mine");
    expect(readdirSync(dir).filter((n) => n.startsWith("db-folder."))).toEqual([]);
  });
});
