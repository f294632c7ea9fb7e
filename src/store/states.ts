// The item state machine (DESIGN.md "States"). Pure: the store asks it before every write.

export const ITEM_STATES = ["queued", "submitting", "running", "downloading", "done", "failed"] as const;
export type ItemState = (typeof ITEM_STATES)[number];

const ALLOWED: Record<ItemState, readonly ItemState[]> = {
  queued: ["submitting", "failed"],
  // running: job id known. downloading: a lost submit reconciled to a finished image.
  // queued: not created (or reconciled as not created), try again later.
  submitting: ["running", "downloading", "queued", "failed"],
  running: ["downloading", "queued", "failed"],
  // running: the result URL expired and the service no longer has the job's output at hand.
  downloading: ["done", "running", "queued", "failed"],
  done: [],
  failed: ["queued"],
};

export function canTransition(from: ItemState, to: ItemState): boolean {
  return ALLOWED[from].includes(to);
}
