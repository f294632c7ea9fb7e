// What `npm pack` puts in the tarball a user installs: the built CLI, the example manifests the
// README starts from, and the license package.json names.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const ROOT = new URL("..", import.meta.url).pathname;

describe("the packed tarball", () => {
  it("carries the example manifests and an MIT LICENSE, and no state or tests", () => {
    // --ignore-scripts: the file list does not need `prepare` (a build) to run.
    const packed = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(packed.status, packed.stderr).toBe(0);
    const files = (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["LICENSE", "manifests/example.yaml", "manifests/example.csv", "package.json"]));
    expect(files.filter((f) => /^(jobs|output|test|src)\//.test(f))).toEqual([]);

    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { license: string };
    const license = readFileSync(`${ROOT}LICENSE`, "utf8");
    expect(pkg.license).toBe("MIT");
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} imgbatch contributors\n/);
  }, 60_000);
});
