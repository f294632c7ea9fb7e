// What an image costs at the service, for the credit cap and the preflight estimate.
import { MODEL_SPECS } from "../providers/catalog.js";
import type { ItemRecord } from "../store/types.js";

/** Price of one image at the service. The local renderer is free. */
export function priceOf(item: ItemRecord): number {
  return item.provider === "local" ? 0 : MODEL_SPECS[item.request.model].creditsPerImage;
}
