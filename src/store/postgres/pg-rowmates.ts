// The duplicate gate's read: a delivered image's rowmates. Most rows make one item, and the
// read would be a round trip per image for nothing: the rows with more than one live record
// are read (after the manifest sync, and again every half minute) and only theirs are asked
// for. Keys are added to a row only by a sync of a changed manifest, which no other worker
// runs while this one lives; the re-read bounds what a worker let in by a race could miss.
import type { Store } from "../port.js";
import { toRowImage } from "../rows.js";
import type { Connection } from "./connection.js";

type Rowmate = Awaited<ReturnType<Store["rowImages"]>>[number];

const READ_AGAIN_AFTER_MS = 30_000;

export class PgRowmates {
  private shared: Promise<Set<string>> | null = null;
  private readAt = 0;

  constructor(private readonly connection: Connection) {}

  /** What is known of the rows is read again at the next ask: this worker's sync or import changed them. */
  forget(): void {
    this.shared = null;
  }

  async of(rowId: string, exceptKey: string): Promise<Rowmate[]> {
    if (this.shared === null || Date.now() - this.readAt > READ_AGAIN_AFTER_MS) {
      this.readAt = Date.now();
      const shared = this.connection
        .query<{ row_id: string }>("SELECT row_id FROM items WHERE superseded_at IS NULL GROUP BY row_id HAVING COUNT(*) > 1")
        .then((rows) => new Set(rows.map((r) => r.row_id)));
      // A failed read is asked again next time, not remembered.
      shared.catch(() => this.shared === shared && this.forget());
      this.shared = shared;
    }
    if (!(await this.shared).has(rowId)) return [];
    const rows = await this.connection.query(
      "SELECT key, phash, qc_flags FROM items WHERE row_id = $1 AND key <> $2 AND superseded_at IS NULL AND state = 'done' AND phash IS NOT NULL ORDER BY id",
      [rowId, exceptKey],
    );
    return rows.map(toRowImage);
  }
}
