// What an image costs at the service, for the credit cap and the preflight estimate.
import { type ImageModel, MODEL_SPECS } from "../providers/catalog.js";
import type { ProviderName } from "../providers/provider.js";
import type { ItemRecord } from "../store/types.js";

/** Price of one image at the service. The local renderer is free. */
export function priceOf(item: ItemRecord): number {
  return priceOfModel(item.provider, item.request.model);
}

export function priceOfModel(provider: ProviderName, model: ImageModel): number {
  return provider === "local" ? 0 : MODEL_SPECS[model].creditsPerImage;
}
