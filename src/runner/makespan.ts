// How long a run will take, before it is made (imgbatch plan). Pure. Three things bound a run:
// the slots (`--concurrency` items at the service at once, each for the time its job takes,
// polling included), the rate (`--rpm` over every request: a submit and its reads, about 2.2 per
// item at the tuned poll schedule, bench scenario 1), and the image stage (download, checks,
// thumbnail, renditions: about 6 images a second on 2 cores, bench scenario 5). The run takes
// about the longest of the three, plus start-up and the last item's image stage.

export type Bound = "concurrency" | "rate" | "image stage";

export interface MakespanInput {
  /** Each item's time in a slot (submit → its completion seen), in the order they are submitted. */
  slotMs: readonly number[];
  concurrency: number;
  /** Requests per minute allowed (`--rpm`); 0 or null: no limit. */
  rpm: number | null;
  /** API requests per item: its submit and its reads. */
  requestsPerItem: number;
  /** Requests besides the items': the quota read, a generateurl per reference to upload. */
  extraRequests: number;
  /** The image stage's throughput, images per second. */
  imagesPerSecond: number;
  /** After the last slot frees: that item's image stage (and the sync of its files). */
  tailMs: number;
  /** Before the first submit: the manifest, the sync, the quota read. */
  startupMs: number;
}

export interface MakespanEstimate {
  ms: number;
  /** What the run waits on most; null when nothing is to be made. */
  bound: Bound | null;
  concurrencyMs: number;
  /** null: no --rpm. */
  rateMs: number | null;
  imageStageMs: number;
}

/**
 * The slots' makespan: each item takes the slot that frees first, in order (as the runner fills
 * its slots). A binary heap of the slots' free times: O(n log c).
 */
export function slotsMakespanMs(slotMs: readonly number[], concurrency: number): number {
  const slots = Math.max(1, Math.min(concurrency, slotMs.length));
  const heap: number[] = new Array<number>(slots).fill(0);
  let end = 0;
  for (const ms of slotMs) {
    // The root is the slot that frees first: it takes this item, then sinks to its place.
    const free = heap[0]! + ms;
    end = Math.max(end, free);
    heap[0] = free;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < slots && heap[left]! < heap[least]!) least = left;
      if (right < slots && heap[right]! < heap[least]!) least = right;
      if (least === i) break;
      [heap[i], heap[least]] = [heap[least]!, heap[i]!];
      i = least;
    }
  }
  return end;
}

export function estimateMakespan(input: MakespanInput): MakespanEstimate {
  const n = input.slotMs.length;
  if (n === 0) return { ms: 0, bound: null, concurrencyMs: 0, rateMs: input.rpm ? 0 : null, imageStageMs: 0 };
  const concurrencyMs = slotsMakespanMs(input.slotMs, input.concurrency);
  const rateMs = input.rpm ? ((n * input.requestsPerItem + input.extraRequests) / input.rpm) * 60_000 : null;
  const imageStageMs = (n / input.imagesPerSecond) * 1000;
  const candidates: [Bound, number][] = [
    ["concurrency", concurrencyMs],
    ["rate", rateMs ?? 0],
    ["image stage", imageStageMs],
  ];
  const [bound, longest] = candidates.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { ms: Math.round(input.startupMs + longest + input.tailMs), bound, concurrencyMs: Math.round(concurrencyMs), rateMs: rateMs === null ? null : Math.round(rateMs), imageStageMs: Math.round(imageStageMs) };
}

/** The middle of the samples (the mean of the two middle ones for an even count); null for none. */
export function median(samples: readonly number[]): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The sample below which a quarter of them lie (nearest rank); null for none. */
export function lowerQuartile(samples: readonly number[]): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 4) - 1]!;
}
