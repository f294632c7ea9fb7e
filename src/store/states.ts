// The item state machine (DESIGN.md "States"). Pure: the store asks it before every write.

export const ITEM_STATES = ["queued", "submitting", "running", "downloading", "done", "failed", "missing"] as const;
export type ItemState = (typeof ITEM_STATES)[number];

/** States whose item is still on its way: neither delivered nor ended. */
export const UNFINISHED_STATES: readonly ItemState[] = ["queued", "submitting", "running", "downloading"];

const ALLOWED: Record<ItemState, readonly ItemState[]> = {
  queued: ["submitting", "failed"],
  // running: job id known. downloading: a lost submit reconciled to a finished image.
  // queued: not created (or reconciled as not created), try again later.
  submitting: ["running", "downloading", "queued", "failed"],
  // missing: an image delivered before, whose job (read again) cannot give it now.
  running: ["downloading", "queued", "failed", "missing"],
  // running: the result URL expired and the service no longer has the job's output at hand.
  // missing: a paid image delivered again, and the service no longer has it.
  downloading: ["done", "running", "queued", "failed", "missing"],
  // downloading: its image is gone from disk, delivered again from the same job (no new submit).
  done: ["downloading"],
  // running: a retry of an item whose job could not be followed reads that job again first.
  // submitting: a retry of a lost submit that could not be settled looks for its job once more.
  // downloading: a retry of an item whose charged job's image never arrived reads that job again.
  failed: ["queued", "running", "submitting", "downloading"],
  // queued: only an explicit `retry --missing` pays for it again.
  missing: ["queued", "downloading"],
};

export function canTransition(from: ItemState, to: ItemState): boolean {
  return ALLOWED[from].includes(to);
}
