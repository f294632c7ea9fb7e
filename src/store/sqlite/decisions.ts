// The morning review's decisions in SQLite: each one on the image it was made on (key and
// sha256), history kept, the latest for an image being its decision. A remade image has another
// sha256, so it starts undecided.
import type { DecisionRecord, ReviewDecision } from "../types.js";
import { type Row, toDecision } from "../rows.js";
import type { WriteCommit } from "./commit-groups.js";
import type { Statement } from "./reads.js";

export class DecisionBook {
  constructor(
    private readonly statement: Statement,
    private readonly beforeWrite: (commit: WriteCommit) => void,
    private readonly now: () => number,
  ) {}

  /** A decision (or a note) alone in its commit: a reviewer's click is on disk when answered. */
  record(d: { key: string; sha256: string; decision: ReviewDecision; note: string | null; reviewer: string }): DecisionRecord {
    this.beforeWrite("fsync");
    const at = this.now();
    const id = Number(
      this.statement(`INSERT INTO decisions (item_key, sha256, decision, note, reviewer, at) VALUES (?, ?, ?, ?, ?, ?)`).run(d.key, d.sha256, d.decision, d.note, d.reviewer, at)
        .lastInsertRowid,
    );
    return { id, ...d, at };
  }

  /** Every decision on an item's images, oldest first. */
  history(key: string): DecisionRecord[] {
    return (this.statement(`SELECT * FROM decisions WHERE item_key = ? ORDER BY id`).all(key) as Row[]).map(toDecision);
  }

  /** The latest decision on each live item's current image, by key. */
  current(): Map<string, DecisionRecord> {
    const rows = this.statement(
      `SELECT d.* FROM items i JOIN decisions d ON d.id = (SELECT MAX(id) FROM decisions WHERE item_key = i.key AND sha256 = i.sha256)
       WHERE i.superseded_at IS NULL AND i.sha256 IS NOT NULL`,
    ).all() as Row[];
    return new Map(rows.map((row) => [row.item_key as string, toDecision(row)]));
  }

  /** Takes the latest decision on this image back: the one before it is the image's again (or none). */
  undo(key: string, sha256: string, reviewer: string): DecisionRecord | null {
    const [latest, before] = (this.statement(`SELECT * FROM decisions WHERE item_key = ? AND sha256 = ? ORDER BY id DESC LIMIT 2`).all(key, sha256) as Row[]).map(toDecision);
    if (!latest) return null;
    return this.record({ key, sha256, decision: before?.decision ?? "undecided", note: before?.note ?? null, reviewer });
  }

  /** Changes when any item moves or any decision is made: a live view polls it. */
  changeMark(): string {
    return this.statement(`SELECT (SELECT COALESCE(MAX(id), 0) FROM events) || ':' || (SELECT COALESCE(MAX(id), 0) FROM decisions)`).pluck().get() as string;
  }
}
