// Editing a manifest between runs, through the built CLI (offline renderer): an edited row is
// made anew (its old record kept as superseded), unchanged items are not touched, removed rows
// are left alone and shown by `status` as no longer in the manifest, and a row put back is not
// made again.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jsonLines, runCli } from "./helpers/cli.js";
import { readDb } from "./helpers/db.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

const sha256 = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

function writeManifest(cwd: string, rows: { id: string; prompt: string; extra?: string }[]): void {
  const lines = ["name: m", "provider: local", "rows:"];
  for (const r of rows) lines.push(`  - id: ${r.id}`, `    prompt: ${r.prompt}`, ...(r.extra ? [`    ${r.extra}`] : []));
  writeFileSync(join(cwd, "m.yaml"), `${lines.join("\n")}\n`);
}

const doneKeys = (stderr: string): string[] =>
  jsonLines(stderr)
    .filter((l) => String(l.msg).startsWith("done "))
    .map((l) => String(l.item))
    .sort();

describe("editing the manifest between runs", () => {
  it("remakes only the edited row, leaves removed rows alone and lists them in status", async () => {
    const cwd = tempDir();
    const keep = { id: "keep", prompt: "A lighthouse at dusk", extra: "variants: 2" };
    const edit = { id: "edit", prompt: "A red bicycle by a wall" };
    const gone = { id: "gone", prompt: "A tram in the rain" };
    writeManifest(cwd, [keep, edit, gone]);
    const first = await runCli(["run", "m.yaml", "--log-level", "debug"], { cwd });
    expect(first.code, first.stderr).toBe(0);
    expect(doneKeys(first.stderr)).toEqual(["edit", "gone", "keep--v1", "keep--v2"]);
    const images = join(cwd, "output", "m", "images");
    const keepPath = join(images, "keep--v1.png");
    const keepBefore = { sha: sha256(keepPath), mtime: statSync(keepPath).mtimeMs };
    const editBefore = sha256(join(images, "edit.png"));
    const goneBefore = sha256(join(images, "gone.png"));

    writeManifest(cwd, [keep, { ...edit, prompt: "A blue bicycle by a wall" }]);
    const second = await runCli(["run", "m.yaml", "--log-level", "debug"], { cwd });
    expect(second.code, second.stderr).toBe(0);
    expect(doneKeys(second.stderr)).toEqual(["edit"]);
    const msgs = jsonLines(second.stderr).map((l) => String(l.msg));
    expect(msgs.some((m) => m.startsWith("1 item(s) changed in the manifest: made anew by local"))).toBe(true);
    expect(msgs).toContain("1 item(s) are no longer in the manifest: left alone");

    // The edited row: a new picture and sidecar; the old record kept, superseded, with its event.
    expect(sha256(join(images, "edit.png"))).not.toBe(editBefore);
    expect((JSON.parse(readFileSync(join(images, "edit.json"), "utf8")) as { prompt: string }).prompt).toBe("A blue bicycle by a wall");
    const db = join(cwd, "jobs", "m.sqlite");
    const editRecords = readDb(db, (conn) => conn.prepare("SELECT state, superseded_at, request_json FROM items WHERE key = 'edit' ORDER BY id").all() as { state: string; superseded_at: number | null; request_json: string }[])!;
    expect(editRecords.map((r) => ({ state: r.state, superseded: r.superseded_at !== null, prompt: (JSON.parse(r.request_json) as { prompt: string }).prompt }))).toEqual([
      { state: "done", superseded: true, prompt: "A red bicycle by a wall" },
      { state: "done", superseded: false, prompt: "A blue bicycle by a wall" },
    ]);
    const supersededEvent = readDb(db, (conn) => conn.prepare("SELECT e.detail FROM events e JOIN items i ON i.id = e.item_id WHERE i.key = 'edit' AND e.detail LIKE 'superseded%'").all())!;
    expect(supersededEvent).toHaveLength(1);

    // Unchanged items are not touched; the removed row's record and files stay as they were.
    expect(statSync(keepPath).mtimeMs).toBe(keepBefore.mtime);
    expect(sha256(keepPath)).toBe(keepBefore.sha);
    expect(sha256(join(images, "gone.png"))).toBe(goneBefore);
    expect(readDb(db, (conn) => conn.prepare("SELECT state, in_manifest FROM items WHERE key = 'gone' AND superseded_at IS NULL").get())).toEqual({ state: "done", in_manifest: 0 });

    const status = await runCli(["status", "m.yaml"], { cwd });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/m: 3\/3 done, 0 failed/);
    expect(status.stdout).toMatch(/No longer in the manifest \(left alone\): 1\n {2}gone \(done\)/);
    const json = JSON.parse((await runCli(["status", "m.yaml", "--json"], { cwd })).stdout) as { counts: Record<string, number>; notInManifest: unknown[] };
    expect(json.counts.done).toBe(3);
    expect(json.notInManifest).toEqual([{ key: "gone", state: "done" }]);

    // Put back unchanged: it is in the manifest again, and nothing is made.
    writeManifest(cwd, [keep, { ...edit, prompt: "A blue bicycle by a wall" }, gone]);
    const third = await runCli(["run", "m.yaml", "--log-level", "debug"], { cwd });
    expect(third.code, third.stderr).toBe(0);
    expect(doneKeys(third.stderr)).toEqual([]);
    expect(sha256(join(images, "gone.png"))).toBe(goneBefore);
    const back = JSON.parse((await runCli(["status", "m.yaml", "--json"], { cwd })).stdout) as { counts: Record<string, number>; notInManifest: unknown[] };
    expect(back.counts.done).toBe(4);
    expect(back.notInManifest).toEqual([]);
    expect(existsSync(join(images, "gone.json"))).toBe(true);
  }, 60_000);
});
