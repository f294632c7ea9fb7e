// An error that ends a command reads as sentences in a terminal (issue 13 item 7): no JSON,
// no timestamp, the manifest's line or row and field named. Pipes keep JSON lines unless
// `--log-format text` asks for plain ones.
import { spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI, jsonLines, runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

const BAD_YAML = `name: bad
provider: local
rows:
  - id: a
    prompt: A calm lake at dawn
  - id: b
    prompt: A red fox in snow
  - id: c
    prompt: A lighthouse at night
    style: neon
  - id: d
    prompt: ""
`;

const BAD_CSV = "id,prompt,style\na,A calm lake at dawn,artistic\nb,A red fox in snow,neon\n";

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/** Runs the built CLI in a pseudo-terminal (util-linux `script`), as a person's shell would. */
function runInTerminal(args: string[], cwd: string): { code: number | null; screen: string } {
  const command = [process.execPath, CLI, ...args].map(quote).join(" ");
  const result = spawnSync("script", ["-qefc", command, "/dev/null"], { cwd, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: "xterm" } });
  if (result.error) throw result.error;
  // The terminal's line discipline turns each \n into \r\n.
  return { code: result.status, screen: result.stdout.replaceAll("\r\n", "\n") };
}

/** What a person reading the screen would call JSON, a log line's time, or a colour code. */
function expectPlainSentences(text: string): void {
  expect(text).not.toContain('{"level"');
  expect(text).not.toMatch(/\d\d:\d\d:\d\d/);
  expect(text).not.toContain("\x1b");
}

describe("in a real terminal, an error that ends the command", () => {
  it("lists a YAML manifest's problems as plain lines with line, row and field", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.yaml"), BAD_YAML);
    const { code, screen } = runInTerminal(["validate", "bad.yaml"], cwd);
    expect(code, screen).toBe(1);
    const lines = screen.trimEnd().split("\n");
    expect(lines[0]).toBe("bad.yaml: 2 problems");
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}bad\.yaml line 10, rows\[2\]\.style: "neon" is not a known style/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}bad\.yaml line \d+, rows\[3\]\.prompt: /));
    expectPlainSentences(screen);
  }, 60_000);

  it("says a missing manifest file is missing, in one sentence", () => {
    const cwd = tempDir();
    const { code, screen } = runInTerminal(["run", "nowhere.yaml"], cwd);
    expect(code, screen).toBe(1);
    expect(screen).toMatch(/^nowhere\.yaml: 1 problem\n {2}nowhere\.yaml: no such (manifest )?file\n$/);
    expectPlainSentences(screen);
  }, 60_000);

  it("names the CSV row and column that a run refuses, and creates nothing", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.csv"), BAD_CSV);
    const { code, screen } = runInTerminal(["run", "bad.csv"], cwd);
    expect(code, screen).toBe(1);
    expect(screen).toContain("bad.csv: 1 problem\n");
    expect(screen).toMatch(/^ {2}bad\.csv row 2 \(line 3\), style: "neon" is not a known style/m);
    expectPlainSentences(screen);
    expect(readdirSync(cwd)).toEqual(["bad.csv"]);
  }, 60_000);

  it("still masks a key that the message echoes, as JSON lines do", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.yaml"), BAD_YAML.replace("style: neon", "style: pictai_s3cretKey"));
    const { code, screen } = runInTerminal(["validate", "bad.yaml"], cwd);
    expect(code, screen).toBe(1);
    expect(screen).not.toContain("s3cretKey");
    expect(screen).toContain('rows[2].style: "pictai_[redacted]" is not a known style');
    expectPlainSentences(screen);
    const piped = await runCli(["validate", "bad.yaml"], { cwd });
    expect(piped.stderr).not.toContain("s3cretKey");
    expect(jsonLines(piped.stderr)[0]!.msg).toContain('rows[2].style: "pictai_[redacted]" is not a known style');
  }, 60_000);

  it("prints JSON lines there too when asked with --log-format json", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.yaml"), BAD_YAML);
    const { code, screen } = runInTerminal(["--log-format", "json", "validate", "bad.yaml"], cwd);
    expect(code, screen).toBe(1);
    const [line] = jsonLines(screen);
    expect(line).toMatchObject({ level: 50, msg: expect.stringMatching(/^bad\.yaml: 2 problems\n {2}bad\.yaml line 10, rows\[2\]\.style: /) });
  }, 60_000);
});

describe("on a pipe", () => {
  it("stays JSON lines by default", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.yaml"), BAD_YAML);
    const result = await runCli(["validate", "bad.yaml"], { cwd });
    expect(result.code, result.stderr).toBe(1);
    const lines = jsonLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: expect.stringContaining("bad.yaml line 10, rows[2].style:") });
  }, 60_000);

  it("prints the same plain lines, without colour, with --log-format text", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.csv"), BAD_CSV);
    const result = await runCli(["--log-format", "text", "run", "bad.csv"], { cwd });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toBe(
      'bad.csv: 1 problem\n  bad.csv row 2 (line 3), style: "neon" is not a known style (known: photorealistic, artistic, cartoon, minimalist, vintage, futuristic)\n',
    );
  }, 60_000);

  it("prints a run's log lines as `HH:MM:SS level message` without colour, with --log-format text", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "ok.yaml"), "name: ok\nprovider: local\nrows:\n  - id: a\n    prompt: A calm lake at dawn\n    variants: 2\n");
    const result = await runCli(["--log-format", "text", "run", "ok.yaml"], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^\d\d:\d\d:\d\d (trace|debug|info |warn |error|fatal) \S/);
    expect(result.stderr).toMatch(/finished: 2\/2 done/);
    expect(result.stderr).not.toContain("\x1b");
    expect(result.stderr).not.toContain("{");
  }, 60_000);
});
