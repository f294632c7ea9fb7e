// Which webhook each submit carries: the manifest's (the row's, else the defaults'), else this
// run's receiver address for the item when the run listens, else none. Only a submit carrying
// the receiver's address expects a hint (hint-board.ts); the manifest's webhook is the user's
// own system's, whose deliveries this run never sees.
import { webhookOf, type WebhookPlan } from "../manifest/types.js";
import { HintBoard } from "./hint-board.js";
import { itemWebhookUrl, type WebhookTokens } from "./webhook-tokens.js";

export interface Listening {
  publicUrl: string;
  tokens: WebhookTokens;
}

export class WebhookRoutes {
  readonly board = new HintBoard();

  constructor(
    private readonly plan: WebhookPlan,
    private readonly listening: Listening | null,
  ) {}

  forSubmit(item: { key: string; rowId: string }): { url: string; listened: boolean } | null {
    const own = webhookOf(this.plan, item.rowId);
    if (own !== null) return { url: own, listened: false };
    if (this.listening === null) return null;
    return { url: itemWebhookUrl(this.listening.publicUrl, item.key, this.listening.tokens.tokenFor(item.key)), listened: true };
  }
}
