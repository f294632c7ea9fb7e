// What a webhook may do to an item (next-step.ts afterHint, as a table) and the board that
// carries it out: wake a waiting read, keep a hint that beat the submit's answer, take one hint
// per job. Fake timers: no test waits on the wall clock.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HintBoard } from "../src/runner/hint-board.js";
import { afterHint, type HintStep, type HintTarget } from "../src/runner/next-step.js";

describe("afterHint: what a webhook that passed the receiver's checks leads to", () => {
  const waiting: HintTarget = { listened: true, jobId: "job-1", hinted: false, waiting: true };
  it.each<[string, HintTarget | null, string | null, HintStep]>([
    ["the item waits for its next read: read now", waiting, "job-1", { step: "read-now" }],
    ["a body naming no job is a hint for the job the item follows", waiting, null, { step: "read-now" }],
    ["the item is not waiting (in a read, a retry): read when it next waits", { ...waiting, waiting: false }, "job-1", { step: "read-when-waiting" }],
    ["its submit's answer has not come yet: kept until the job id is known", { ...waiting, jobId: null, waiting: false }, "job-1", { step: "read-when-waiting" }],
    ["the item is no longer at the service (delivered, failed) or not this run's", null, "job-1", { step: "ignore", reason: "finished" }],
    ["a body naming another job", waiting, "job-0", { step: "ignore", reason: "unknown-job" }],
    ["a hint was taken for this job already (a duplicate, a replay)", { ...waiting, hinted: true }, "job-1", { step: "ignore", reason: "repeat" }],
    ["its submit carried no address of this run (an earlier run's job, the manifest's own webhook)", { ...waiting, listened: false }, "job-1", { step: "ignore", reason: "unknown-job" }],
  ])("%s", (_name, target, named, expected) => {
    expect(afterHint(target, named)).toEqual(expected);
  });
});

describe("the hint board", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function listenedItem(board: HintBoard, key = "a", jobId = "job-1"): void {
    board.enter(key, null);
    board.submitting(key, true);
    board.accepted(key, jobId, 1_000);
  }

  it("a wait ends when its time comes, without a hint", async () => {
    const board = new HintBoard();
    listenedItem(board);
    const waited = board.wait("a", 5_000, new AbortController().signal);
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(waited).resolves.toBe(false);
    expect(board.awaitingHint("a")).toBe(true);
  });

  it("a hint ends a wait at once, and is taken once per job", async () => {
    const board = new HintBoard();
    listenedItem(board);
    const waited = board.wait("a", 60_000, new AbortController().signal);
    expect(board.hint("a", "job-1")).toEqual({ step: "read-now" });
    await expect(waited).resolves.toBe(true);
    expect(board.awaitingHint("a")).toBe(false);
    expect(board.hint("a", "job-1")).toEqual({ step: "ignore", reason: "repeat" });
    expect(board.counts).toEqual({ used: 1, finished: 0, "unknown-job": 0, repeat: 1 });
  });

  it("a hint that comes while the item is not waiting ends its next wait at once", async () => {
    const board = new HintBoard();
    board.enter("a", null);
    board.submitting("a", true);
    expect(board.hint("a", "job-1")).toEqual({ step: "read-when-waiting" });
    board.accepted("a", "job-1", 1_000);
    await expect(board.wait("a", 60_000, new AbortController().signal)).resolves.toBe(true);
  });

  it("a hint kept for a job the submit did not make is dropped when the job id arrives", async () => {
    const board = new HintBoard();
    board.enter("a", null);
    board.submitting("a", true);
    board.hint("a", "job-forged");
    board.accepted("a", "job-1", 1_000);
    expect(board.counts).toMatchObject({ used: 0, "unknown-job": 1 });
    // The real one is still taken.
    const waited = board.wait("a", 60_000, new AbortController().signal);
    expect(board.hint("a", "job-1")).toEqual({ step: "read-now" });
    await expect(waited).resolves.toBe(true);
  });

  it("ignores hints for items that left the service side, and for items whose submit carried no address of this run", () => {
    const board = new HintBoard();
    listenedItem(board, "done-item");
    board.leave("done-item");
    expect(board.hint("done-item", "job-1")).toEqual({ step: "ignore", reason: "finished" });
    board.enter("resumed", "job-7");
    expect(board.hint("resumed", "job-7")).toEqual({ step: "ignore", reason: "unknown-job" });
    expect(board.awaitingHint("resumed")).toBe(false);
  });

  it("after a hinted read finds the job still running, the item is polled at the ordinary pace", () => {
    const board = new HintBoard();
    listenedItem(board);
    board.hint("a", "job-1");
    board.hintWasEarly("a");
    expect(board.awaitingHint("a")).toBe(false);
    // The job's real completion later cannot wake it again: one hint per job.
    expect(board.hint("a", "job-1").step).toBe("ignore");
  });

  it("a stop ends a wait with the signal's reason", async () => {
    const board = new HintBoard();
    listenedItem(board);
    const stop = new AbortController();
    const waited = board.wait("a", 60_000, stop.signal);
    stop.abort(new DOMException("run stopping", "AbortError"));
    await expect(waited).rejects.toMatchObject({ name: "AbortError" });
    // The hint that comes after the stop finds no one waiting: kept, harmlessly.
    expect(board.hint("a", "job-1")).toEqual({ step: "read-when-waiting" });
  });

  it("trusts hints once one came and while at least half of the latest jobs were hinted first", () => {
    const board = new HintBoard();
    // Nothing heard yet: items awaiting a hint are read as polling alone would.
    expect(board.expectsHints()).toBe(false);
    const end = (key: string, hinted: boolean) => {
      listenedItem(board, key);
      board.ended(key, hinted);
      board.leave(key);
    };
    end("lost-1", false);
    expect(board.expectsHints()).toBe(false);
    end("hinted-1", true);
    expect(board.expectsHints()).toBe(true);
    end("lost-2", false);
    expect(board.expectsHints()).toBe(false);
    for (let i = 0; i < 20; i++) end(`hinted-${i + 2}`, true);
    expect(board.expectsHints()).toBe(true);
    // A receiver that stops hearing (its tunnel went down): ten of the last twenty lost.
    for (let i = 0; i < 10; i++) end(`lost-${i + 3}`, false);
    expect(board.expectsHints()).toBe(true);
    end("lost-13", false);
    expect(board.expectsHints()).toBe(false);
  });

  it("jobs whose submit carried no address of this run do not count toward the trust", () => {
    const board = new HintBoard();
    board.enter("resumed", "job-7");
    board.ended("resumed", false);
    listenedItem(board, "a");
    board.ended("a", true);
    expect(board.expectsHints()).toBe(true);
  });
});
