// Delivered files reach the disk before their item is `done`: batched syncfs where the system
// has it, each file fsynced where it does not.
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { chooseFileSync, FSYNC_EACH_FILE, gnuSyncCommand, kernelReportsSyncfsErrors, SyncfsBatches, syncfsWith, type SyncFolders } from "../src/assets/file-sync.js";
import { runCommand } from "../src/commands/run.js";
import { ExitError, FatalRunError } from "../src/errors.js";
import { testContext } from "./helpers/context.js";
import { useTempDir } from "./helpers/tmp.js";

const tempDir = useTempDir();

/** A sync that finishes when the test says so, recording what each call was asked. */
function heldSync() {
  const calls: { folders: readonly string[]; finish: (error?: Error) => void }[] = [];
  const syncFolders: SyncFolders = (folders) =>
    new Promise((resolve, reject) => {
      calls.push({ folders, finish: (error) => (error ? reject(error) : resolve()) });
    });
  return { calls, syncFolders };
}

const settle = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe("SyncfsBatches", () => {
  // The window's timer on a fake clock: a loaded machine cannot fire it early or late.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const advance = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

  it("syncs every folder asked for within the window in one call, and only then resolves", async () => {
    const { calls, syncFolders } = heldSync();
    const batches = new SyncfsBatches(syncFolders, 20);
    let resolved = 0;
    const waits = [batches.durable(["/out/images", "/out/thumbs"]), batches.durable(["/out/images"]), batches.durable(["/out/renditions/web"])];
    for (const wait of waits) void wait.then(() => resolved++);
    await advance(5);
    expect(calls).toHaveLength(0); // still gathering
    await advance(40);
    expect(calls.map((c) => [...c.folders].sort())).toEqual([["/out/images", "/out/renditions/web", "/out/thumbs"]]);
    await advance();
    expect(resolved).toBe(0); // not durable until the sync ends
    calls[0]!.finish();
    await Promise.all(waits);
    expect(resolved).toBe(3);
  });

  it("a request made while a sync runs waits for the next sync: its file may not be in this one", async () => {
    const { calls, syncFolders } = heldSync();
    const batches = new SyncfsBatches(syncFolders, 10);
    const first = batches.durable(["/out/images"]);
    await advance(30);
    expect(calls).toHaveLength(1);
    let secondDone = false;
    const second = batches.durable(["/out/images"]).then(() => (secondDone = true));
    calls[0]!.finish();
    await first;
    await advance();
    expect(secondDone).toBe(false);
    await advance(30);
    expect(calls).toHaveLength(2);
    calls[1]!.finish();
    await second;
    expect(secondDone).toBe(true);
  });

  it("syncs at once, without waiting out the window, when a request says nothing more is coming", async () => {
    const { calls, syncFolders } = heldSync();
    const batches = new SyncfsBatches(syncFolders, 60_000);
    const waits = [batches.durable(["/out/images"]), batches.durable(["/out/thumbs"], { soon: true })];
    await advance(20);
    expect(calls.map((c) => [...c.folders].sort())).toEqual([["/out/images", "/out/thumbs"]]);
    calls[0]!.finish();
    await Promise.all(waits);
  });

  it("after a failed sync, every later request fails too: a sync that then succeeds proves nothing", async () => {
    const { calls, syncFolders } = heldSync();
    const batches = new SyncfsBatches(syncFolders, 10);
    const failing = batches.durable(["/out/images"]);
    await advance(30);
    const joinedDuringTheSync = batches.durable(["/out/images"]);
    calls[0]!.finish(new Error("EIO"));
    await expect(failing).rejects.toThrow("EIO");
    await expect(joinedDuringTheSync).rejects.toThrow("EIO");
    await expect(batches.durable(["/out/thumbs"])).rejects.toThrow("EIO");
    await advance(30);
    expect(calls).toHaveLength(1); // no sync ran after the failure
  });

  it("close() at the end of a run drops the batch still gathering and ends the sync in progress", async () => {
    const signals: AbortSignal[] = [];
    const { calls, syncFolders } = heldSync();
    const batches = new SyncfsBatches((folders, signal) => {
      if (signal) signals.push(signal);
      return syncFolders(folders, signal);
    }, 10);
    const syncing = batches.durable(["/out/images"]);
    syncing.catch(() => {});
    await advance(30);
    const gathering = batches.durable(["/out/thumbs"]);
    batches.close();
    await expect(gathering).rejects.toMatchObject({ name: "AbortError" });
    expect(signals[0]?.aborted).toBe(true); // the running `sync -f` is killed
    await advance(30);
    expect(calls).toHaveLength(1); // and no other starts
  });
});

describe("chooseFileSync", () => {
  it("trusts syncfs only from Linux 5.8 on, where it reports a failed writeback", () => {
    expect(kernelReportsSyncfsErrors("linux", "6.1.0-13-amd64")).toBe(true);
    expect(kernelReportsSyncfsErrors("linux", "5.8.0")).toBe(true);
    expect(kernelReportsSyncfsErrors("linux", "5.4.0-150-generic")).toBe(false);
    expect(kernelReportsSyncfsErrors("linux", "4.19.0")).toBe(false);
    expect(kernelReportsSyncfsErrors("darwin", "23.1.0")).toBe(false);
    expect(kernelReportsSyncfsErrors("win32", "10.0.22631")).toBe(false);
  });

  it.runIf(kernelReportsSyncfsErrors())("batches where GNU `sync -f` works, and that command syncs a real folder", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "a.txt"), "x");
    const command = await gnuSyncCommand();
    expect(command).toMatch(/^\/(usr\/)?bin\/sync$/); // by absolute path, never from PATH
    await expect(syncfsWith(command!)([dir])).resolves.toBeUndefined();
    expect((await chooseFileSync([dir], { windowMs: 10 })).batched).toBe(true);
  });

  it("fsyncs each file when the probe fails or IMGBATCH_FSYNC_EACH_FILE asks for it", async () => {
    const dir = tempDir();
    const failing: SyncFolders = async () => {
      throw new Error("sync: unknown option -- f");
    };
    expect(await chooseFileSync([dir], { windowMs: 10, syncFolders: failing })).toBe(FSYNC_EACH_FILE);
    expect(await chooseFileSync([dir], { windowMs: 10, eachFile: true })).toBe(FSYNC_EACH_FILE);
    expect(testContext({ IMGBATCH_FSYNC_EACH_FILE: "1" }).ctx.env.fsyncEachFile).toBe(true);
    expect(testContext({}).ctx.env.fsyncEachFile).toBe(false);
  });

  it.runIf(kernelReportsSyncfsErrors())("a failing `sync -f` names the folder and stops the run as resumable (exit 3)", async () => {
    const missing = join(tempDir(), "gone");
    const error = await syncfsWith((await gnuSyncCommand())!)([missing]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalRunError);
    expect((error as FatalRunError).code).toBe("SYNC_FAILED");
    expect((error as FatalRunError).message).toContain(missing);
    expect((error as FatalRunError).exitCode).toBe(3);
  });
});

function manifest(dir: string, rows: number): string {
  const lines = ["name: sync", "provider: local", "rows:"];
  for (let i = 0; i < rows; i++) lines.push(`  - id: r${i}`, `    prompt: Poster number ${i} of a quiet harbour town`);
  const path = join(dir, "sync.yaml");
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

function doneKeys(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare("SELECT key FROM items WHERE state = 'done'").all() as { key: string }[]).map((r) => r.key);
  } finally {
    db.close();
  }
}

function sidecarKeys(imagesDir: string): string[] {
  try {
    return readdirSync(imagesDir).filter((name) => name.endsWith(".json")).map((name) => name.slice(0, -".json".length));
  } catch {
    return [];
  }
}

describe("a run with batched file sync", () => {
  it("commits an item `done` only after a sync that began once its files were written", async () => {
    const dir = tempDir();
    const db = join(dir, "db.sqlite");
    const imagesDir = join(dir, "out", "images");
    // What existed when each sync began, and what was done by then.
    const syncs: { folders: readonly string[]; written: string[]; done: string[] }[] = [];
    const syncFolders: SyncFolders = async (folders) => {
      syncs.push({ folders, written: sidecarKeys(imagesDir), done: doneKeys(db) });
      await settle(5);
    };
    const t = testContext();
    const code = await runCommand(manifest(dir, 12), { db, out: join(dir, "out"), concurrency: 4, syncFolders }, t.ctx);
    expect(code, t.logs()).toBe(0);
    expect(doneKeys(db)).toHaveLength(12);
    expect(syncs.length).toBeGreaterThan(1); // the probe, then the batches
    for (let k = 1; k < syncs.length; k++) {
      // Done by the time sync k began: written before an earlier sync began (which has ended).
      const syncedBefore = new Set(syncs[k - 1]!.written);
      for (const key of syncs[k]!.done) expect(syncedBefore.has(key), `${key} done before its files were synced`).toBe(true);
    }
    // And every item done at the end was written before the last sync began.
    const lastSynced = new Set(syncs.at(-1)!.written);
    for (const key of doneKeys(db)) expect(lastSynced.has(key), `${key} done without a sync after its files`).toBe(true);
    expect(new Set(syncs.slice(1).flatMap((s) => s.folders))).toEqual(new Set([imagesDir, join(dir, "out", "thumbs")]));
  }, 30_000);

  it("a failed sync stops the run (exit 3) with its items still `downloading`; the next run delivers them", async () => {
    const dir = tempDir();
    const db = join(dir, "db.sqlite");
    const path = manifest(dir, 6);
    let calls = 0;
    const failAfterProbe: SyncFolders = async () => {
      if (++calls > 1) throw new FatalRunError("cannot make the output durable (sync -f out): Input/output error", "SYNC_FAILED", 3);
    };
    const t = testContext();
    const error = await runCommand(path, { db, out: join(dir, "out"), concurrency: 2, syncFolders: failAfterProbe }, t.ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExitError);
    expect((error as ExitError).exitCode).toBe(3);
    expect(t.logs()).toContain("Input/output error");
    expect(doneKeys(db)).toEqual([]);

    const again = testContext();
    expect(await runCommand(path, { db, out: join(dir, "out"), concurrency: 2, syncFolders: async () => {} }, again.ctx), again.logs()).toBe(0);
    expect(doneKeys(db)).toHaveLength(6);
  }, 30_000);
});
