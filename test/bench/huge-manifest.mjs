// A manifest of 10^7 items in a few rows (issue 17): three rows whose matrices and variants
// multiply to 5, 4 and 1 million items, about 60 KB of YAML. Shared by the size test and the
// benchmark of the cap.
import { writeFileSync } from "node:fs";

const values = (prefix, n) => `[${Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(", ")}]`;

/** [id, colours, surfaces, variants]: 1000 × 50 × 100 + 1000 × 40 × 100 + 1000 × 10 × 100 = 10^7. */
export const HUGE_ROWS = [
  ["grid-a", 1000, 50, 100],
  ["grid-b", 1000, 40, 100],
  ["grid-c", 1000, 10, 100],
];

export function writeHugeManifest(path) {
  const lines = ["name: huge", "defaults:", "  model: flux-schnell", "rows:"];
  for (const [id, colours, surfaces, variants] of HUGE_ROWS) {
    lines.push(`  - id: ${id}`, '    prompt: "Aurora Pro earbuds in {{colour}} on {{surface}}"', `    variants: ${variants}`, "    matrix:", `      colour: ${values("c", colours)}`, `      surface: ${values("s", surfaces)}`);
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
}

export function writeTinyManifest(path) {
  writeFileSync(path, ["name: tiny", "rows:", "  - id: one", "    prompt: Aurora Pro earbuds on a desk", ""].join("\n"));
}
