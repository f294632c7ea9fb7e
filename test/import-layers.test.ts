// Imports only run downhill: a module may import its own layer or a lower one, never a higher
// one (DESIGN.md layout, STYLE.md "pure core, I/O at the edges"). Type-only imports count too:
// a type that belongs below lives below.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src", import.meta.url));

/** Lowest first. Top-level files of src/ are named without their extension. */
const LAYERS: readonly (readonly string[])[] = [
  ["errors", "defaults", "env", "secrets", "deferred", "heap", "retryable", "log"],
  ["providers"],
  ["manifest", "sim"],
  ["store", "assets"],
  ["report"],
  ["review"],
  ["runner"],
  ["commands"],
  ["cli"],
];

function layerOf(path: string): number {
  const top = relative(SRC, path).split(/[\\/]/)[0]!.replace(/\.(ts|js)$/, "");
  const layer = LAYERS.findIndex((names) => names.includes(top));
  if (layer === -1) throw new Error(`src/${top} has no layer in test/import-layers.test.ts: give it one`);
  return layer;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g)].map((m) => resolve(dirname(file), m[1]!));
}

describe("the import graph", () => {
  it("has every module of src/ import only its own layer or lower ones", () => {
    const upward: string[] = [];
    for (const file of sourceFiles(SRC)) {
      for (const target of importsOf(file)) {
        if (layerOf(target) > layerOf(file)) upward.push(`src/${relative(SRC, file)} imports src/${relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("sees an upward import when there is one (the check itself works)", () => {
    expect(layerOf(join(SRC, "providers", "pictory.ts"))).toBeLessThan(layerOf(join(SRC, "runner", "retry-policy.ts")));
    expect(importsOf(join(SRC, "cli.ts")).some((target) => target.includes(`${join("src", "commands")}`))).toBe(true);
  });
});

describe("module size", () => {
  it("keeps every module of src/ at 350 lines or fewer, so each reads in one pass", () => {
    const long = sourceFiles(SRC)
      .map((file) => ({ file: `src/${relative(SRC, file)}`, lines: readFileSync(file, "utf8").split("\n").length - 1 }))
      .filter((m) => m.lines > 350);
    expect(long).toEqual([]);
  });
});
