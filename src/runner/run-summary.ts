// What a run reports of itself: why it stopped, its figures, and each move as it happens.
import type { FatalRunError } from "../errors.js";
import type { ItemState } from "../store/states.js";
import type { ItemRecord } from "../store/types.js";

export type StopReason = "signal" | "deadline" | "max-runtime" | "credits" | "fatal" | "service-unreachable";

export interface RunSummary {
  stopReason: StopReason | null;
  fatal: FatalRunError | null;
  creditsThisRun: number;
  doneThisRun: number;
  failedThisRun: number;
}

export interface TransitionEvent {
  item: ItemRecord;
  from: ItemState;
  to: ItemState;
  detail: string | null;
}
