// End to end with the offline renderer, through the built CLI, checking files on disk.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { readXmp } from "../src/assets/provenance.js";
import { jsonLines, runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();
const EXAMPLE = new URL("../manifests/example.yaml", import.meta.url).pathname;

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function snapshot(dir: string): Map<string, number> {
  const files = new Map<string, number>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files.set(path, statSync(path).mtimeMs);
    }
  }
  return files;
}

describe("imgbatch run --provider local", () => {
  it("delivers every item whole, then does nothing on a second run", async () => {
    const cwd = tempDir();
    copyFileSync(EXAMPLE, join(cwd, "example.yaml"));
    const first = await runCli(["run", "example.yaml"], { cwd });
    expect(first.code, first.stderr).toBe(0);
    // Not a TTY: no escape codes, and every log line is JSON.
    expect(first.stderr).not.toMatch(/\x1b\[/);
    expect(() => jsonLines(first.stderr)).not.toThrow();

    const out = join(cwd, "output", "aurora-launch");
    const db = new Database(join(cwd, "jobs", "aurora-launch.sqlite"), { readonly: true });
    const items = db.prepare("SELECT * FROM items WHERE superseded_at IS NULL").all() as Record<string, unknown>[];
    expect(items.length).toBe(13);
    for (const item of items) {
      expect(item.state).toBe("done");
      const key = item.key as string;
      const sidecar = JSON.parse(readFileSync(join(out, "images", `${key}.json`), "utf8")) as Record<string, unknown>;
      const imagePath = join(out, "images", sidecar.image as string);
      expect(sidecar).toMatchObject({ key, provider: "local", sha256: item.sha256 });
      expect(sha256(imagePath)).toBe(sidecar.sha256);
      const meta = await sharp(imagePath).metadata();
      expect([meta.width, meta.height]).toEqual([sidecar.width, sidecar.height]);
      expect(readXmp(readFileSync(imagePath))).toContain("trainedAlgorithmicMedia");
      const thumb = await sharp(join(out, "thumbs", `${key}.webp`)).metadata();
      expect(thumb.format).toBe("webp");
      expect(Math.max(thumb.width!, thumb.height!)).toBe(320);
    }
    db.close();
    const csv = readFileSync(join(out, "results.csv"), "utf8").trim().split("\r\n");
    expect(csv.length).toBe(14);
    expect(readFileSync(join(out, "results.jsonl"), "utf8").trim().split("\n").length).toBe(13);

    const before = snapshot(out);
    const second = await runCli(["run", "example.yaml"], { cwd });
    expect(second.code, second.stderr).toBe(0);
    expect(snapshot(out)).toEqual(before);
    expect(second.stderr).not.toMatch(/"msg":"done /);
  }, 60_000);

  it("regenerates exactly the edited row's items", async () => {
    const cwd = tempDir();
    const manifest = join(cwd, "m.yaml");
    const write = (prompt: string) =>
      writeFileSync(manifest, `name: m\nprovider: local\nrows:\n  - id: keep\n    prompt: A lighthouse at dusk\n    variants: 2\n  - id: edit\n    prompt: ${prompt}\n    matrix:\n      style: [cartoon, vintage]\n`);
    write("A red bicycle by a wall");
    expect((await runCli(["run", "m.yaml"], { cwd })).code).toBe(0);
    const shaBefore = sha256(join(cwd, "output/m/images/keep--v1.png"));
    write("A blue bicycle by a wall");
    const again = await runCli(["run", "m.yaml", "--log-level", "debug"], { cwd });
    expect(again.code, again.stderr).toBe(0);
    const done = jsonLines(again.stderr).filter((l) => String(l.msg).startsWith("done "));
    expect(done.map((l) => l.item).sort()).toEqual(["edit--cartoon", "edit--vintage"]);
    expect(sha256(join(cwd, "output/m/images/keep--v1.png"))).toBe(shaBefore);
    const sidecar = JSON.parse(readFileSync(join(cwd, "output/m/images/edit--cartoon.json"), "utf8")) as { prompt: string };
    expect(sidecar.prompt).toBe("A blue bicycle by a wall");
  }, 60_000);
});

describe("imgbatch validate", () => {
  it("lists every mistake with its line and field, exits 1 and creates no database", async () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, "bad.yaml"),
      ["name: bad", "rows:", "  - id: one", "    prompt: hi", "  - id: two", "    prompt: A fine prompt here", "    style: neon", "  - id: three", "    prompt: Another fine prompt", "    model: dall-e", ""].join("\n"),
    );
    const result = await runCli(["validate", "bad.yaml"], { cwd });
    expect(result.code).toBe(1);
    const text = jsonLines(result.stderr).map((l) => String(l.msg)).join("\n");
    expect(text).toMatch(/bad\.yaml line 4, rows\[0\]\.prompt/);
    expect(text).toMatch(/bad\.yaml line 7, rows\[1\]\.style: .*neon/);
    expect(text).toMatch(/bad\.yaml line 10, rows\[2\]\.model: .*dall-e/);
    expect(existsSync(join(cwd, "jobs"))).toBe(false);

    const run = await runCli(["run", "bad.yaml"], { cwd });
    expect(run.code).toBe(1);
    expect(existsSync(join(cwd, "jobs"))).toBe(false);
  });

  it("accepts the examples", async () => {
    const cwd = tempDir();
    const yaml = await runCli(["validate", EXAMPLE], { cwd });
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(yaml.stdout).toMatch(/13 item/);
    const csv = await runCli(["validate", EXAMPLE.replace(/\.yaml$/, ".csv")], { cwd });
    expect(csv.code, csv.stderr).toBe(0);
  });
});

describe("imgbatch status", () => {
  it("prints the documented JSON shape", async () => {
    const cwd = tempDir();
    copyFileSync(EXAMPLE, join(cwd, "example.yaml"));
    expect((await runCli(["run", "example.yaml"], { cwd })).code).toBe(0);
    const status = await runCli(["status", "example.yaml", "--json"], { cwd });
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      name: "aurora-launch",
      counts: { queued: 0, submitting: 0, running: 0, downloading: 0, done: 13, failed: 0 },
      credits: 0,
      failed: [],
    });
    expect(report.db).toBe(join(cwd, "jobs", "aurora-launch.sqlite"));
  }, 60_000);
});
