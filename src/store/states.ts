// The item state machine (DESIGN.md "States"). Pure: the store asks it before every write.

export const ITEM_STATES = ["queued", "submitting", "running", "downloading", "done", "failed"] as const;
export type ItemState = (typeof ITEM_STATES)[number];

/** States in which the item holds one of the `concurrency` slots at the service. */
export const AT_SERVICE_STATES: readonly ItemState[] = ["submitting", "running"];

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

export function isItemState(value: string): value is ItemState {
  return (ITEM_STATES as readonly string[]).includes(value);
}
