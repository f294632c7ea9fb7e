// The review app's data: the store's live items as the page shows them (rows of variants in
// contact-sheet order, each with the decision on its current image), and the review's writes,
// each checked against the item's current image: a decision belongs to the image it was made on.
import { MAX_KEY_LENGTH } from "../manifest/values.js";
import type { Store } from "../store/port.js";
import type { DecisionRecord, ItemQcFlag, ItemRecord, ReviewDecision } from "../store/types.js";

/** An item key as the manifest makes them (ids, slugs, `--vN`): anything else is no item. */
export const KEY_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_KEY_LENGTH - 1}}$`);
export const MAX_NOTE_LENGTH = 2000;

export interface DecisionView {
  decision: ReviewDecision;
  note: string | null;
  reviewer: string;
  /** ISO time. */
  at: string;
}

export interface ReviewItem {
  key: string;
  rowId: string;
  state: ItemRecord["state"];
  inManifest: boolean;
  prompt: string;
  model: string;
  aspectRatio: string;
  style: string | null;
  provider: string;
  width: number | null;
  height: number | null;
  /** The image a decision is made on; null until one is delivered. */
  sha256: string | null;
  /** Delivered and on record: it can be approved or rejected. */
  hasImage: boolean;
  /** The row names a local reference image: `/reference/<key>` serves its copy. */
  hasReference: boolean;
  hasThumb: boolean;
  qcFlags: ItemQcFlag[];
  /** The latest decision on the current image (null: none yet); "undecided" after an undo. */
  decision: DecisionView | null;
  error: { code: string; message: string } | null;
}

export interface ReviewRow {
  rowId: string;
  inManifest: boolean;
  items: ReviewItem[];
}

export interface ReviewCounts {
  total: number;
  approved: number;
  rejected: number;
  /** Delivered images without an approval or a rejection. */
  undecided: number;
  /** Failed or missing. */
  failed: number;
  /** Still on their way (queued, submitting, running, downloading). */
  pending: number;
  flagged: number;
}

export interface ReviewPayload {
  name: string;
  reviewer: string;
  /** The store's change mark this answer was read at: the page refreshes when it moves. */
  mark: string;
  counts: ReviewCounts;
  rows: ReviewRow[];
}

export interface HistoryEntry extends DecisionView {
  /** Made on the item's current image (false: on an earlier one, since made anew). */
  current: boolean;
}

export function decisionView(d: DecisionRecord): DecisionView {
  return { decision: d.decision, note: d.note, reviewer: d.reviewer, at: new Date(d.at).toISOString() };
}

function isDecidable(item: ItemRecord): item is ItemRecord & { sha256: string } {
  return item.state === "done" && item.sha256 !== null;
}

export function reviewItem(item: ItemRecord, decision: DecisionRecord | undefined): ReviewItem {
  const failed = item.state === "failed" || item.state === "missing";
  return {
    key: item.key,
    rowId: item.rowId,
    state: item.state,
    inManifest: item.inManifest,
    prompt: item.request.prompt,
    model: item.request.model,
    aspectRatio: item.request.aspectRatio,
    style: item.request.style ?? null,
    provider: item.provider,
    width: item.width,
    height: item.height,
    sha256: item.sha256,
    hasImage: isDecidable(item) && item.filePath !== null,
    hasReference: item.request.referenceImage !== undefined,
    hasThumb: item.thumbPath !== null,
    qcFlags: item.qcFlags,
    decision: decision && isDecidable(item) && decision.sha256 === item.sha256 ? decisionView(decision) : null,
    error: failed || item.errorCode ? { code: item.errorCode ?? item.state.toUpperCase(), message: item.errorMessage ?? "" } : null,
  };
}

export function countItems(items: Iterable<ReviewItem>): ReviewCounts {
  const counts: ReviewCounts = { total: 0, approved: 0, rejected: 0, undecided: 0, failed: 0, pending: 0, flagged: 0 };
  for (const item of items) {
    counts.total++;
    if (item.qcFlags.length > 0) counts.flagged++;
    if (item.state === "failed" || item.state === "missing") counts.failed++;
    else if (item.state !== "done") counts.pending++;
    if (!item.hasImage) continue;
    const decision = item.decision?.decision ?? "undecided";
    counts[decision]++;
  }
  return counts;
}

/** Every live item in contact-sheet order, rows kept together, with its current decision. */
export async function readReview(store: Store, name: string, reviewer: string): Promise<ReviewPayload> {
  // The mark is read first: a change made while the items are read moves it again, so the
  // page asks once more instead of missing it.
  const mark = await store.changeMark();
  const decisions = await store.currentDecisions();
  const rows: ReviewRow[] = [];
  const all: ReviewItem[] = [];
  for await (const sheet of store.liveItemsInSheetOrder()) {
    const item = reviewItem(sheet.item, decisions.get(sheet.item.key));
    all.push(item);
    const last = rows[rows.length - 1];
    if (sheet.startsGroup || !last) rows.push({ rowId: item.rowId, inManifest: item.inManifest, items: [item] });
    else last.items.push(item);
  }
  return { name, reviewer, mark, counts: countItems(all), rows };
}

/** The decisions on an item's images, oldest first, or null for no such item. */
export async function readHistory(store: Store, key: string): Promise<HistoryEntry[] | null> {
  const item = await store.byKey(key);
  if (!item) return null;
  return (await store.decisionHistory(key)).map((d) => ({ ...decisionView(d), current: d.sha256 === item.sha256 }));
}

export type ReviewWrite = { ok: true; decision: DecisionView | null } | { ok: false; status: 404 | 409; message: string };

export type ReviewAction =
  | { action: "decide"; key: string; sha256: string; decision: "approved" | "rejected" }
  | { action: "undo"; key: string; sha256: string }
  | { action: "note"; key: string; sha256: string; note: string };

/** The latest decision on this very image, from the item's history (a handful of records). */
async function latestOn(store: Store, key: string, sha256: string): Promise<DecisionRecord | undefined> {
  return (await store.decisionHistory(key)).filter((d) => d.sha256 === sha256).at(-1);
}

/**
 * Carries out one review action on the image the page showed. An image made anew since the
 * page loaded is a 409: the click was about the earlier image, whose record is superseded.
 */
export async function applyReview(store: Store, reviewer: string, a: ReviewAction): Promise<ReviewWrite> {
  const item = await store.byKey(a.key);
  if (!item) return { ok: false, status: 404, message: `no item ${a.key}` };
  if (!isDecidable(item)) return { ok: false, status: 409, message: `${a.key} has no delivered image to decide on (it is ${item.state})` };
  if (item.sha256 !== a.sha256) return { ok: false, status: 409, message: `the image of ${a.key} changed since the page loaded: look at the new one` };
  const latest = await latestOn(store, a.key, a.sha256);
  if (a.action === "undo") {
    const undone = await store.undoDecision(a.key, a.sha256, reviewer);
    return { ok: true, decision: undone ? decisionView(undone) : null };
  }
  if (a.action === "note") {
    // A note keeps the decision: the current one is recorded again with it.
    const note = a.note.trim() === "" ? null : a.note;
    if (latest?.note === note) return { ok: true, decision: decisionView(latest) };
    const d = await store.recordDecision({ key: a.key, sha256: a.sha256, decision: latest?.decision ?? "undecided", note, reviewer });
    return { ok: true, decision: decisionView(d) };
  }
  // The same decision again adds nothing to the history; a new one keeps the image's note.
  if (latest?.decision === a.decision) return { ok: true, decision: decisionView(latest) };
  const d = await store.recordDecision({ key: a.key, sha256: a.sha256, decision: a.decision, note: latest?.note ?? null, reviewer });
  return { ok: true, decision: decisionView(d) };
}

/** A POST body as a review action, or what is wrong with it. */
export function parseReviewAction(action: ReviewAction["action"], body: unknown): ReviewAction | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body must be a JSON object";
  const b = body as Record<string, unknown>;
  if (typeof b.key !== "string" || !KEY_PATTERN.test(b.key)) return "key: not an item key";
  if (typeof b.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(b.sha256)) return "sha256: 64 hex digits expected";
  const { key, sha256 } = b;
  if (action === "undo") return { action, key, sha256 };
  if (action === "decide") {
    if (b.decision !== "approved" && b.decision !== "rejected") return `decision: "approved" or "rejected" expected`;
    return { action, key, sha256, decision: b.decision };
  }
  if (typeof b.note !== "string") return "note: a string expected";
  if (b.note.length > MAX_NOTE_LENGTH) return `note: at most ${MAX_NOTE_LENGTH} characters`;
  // Control characters have no place in a one-line note; they would only hide in the page.
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(b.note)) return "note: control characters are not allowed";
  return { action, key, sha256, note: b.note };
}
