// Reference images uploaded to a service, in SQLite: one row per file (sha256) and service. A
// lost row costs only an upload again, so it commits with the turn's other writes.
import type { UploadRecord } from "../types.js";
import type { WriteCommit } from "./commit-groups.js";
import type { Statement } from "./reads.js";

export class UploadBook {
  constructor(
    private readonly statement: Statement,
    private readonly beforeWrite: (commit: WriteCommit) => void,
  ) {}

  /** A read-only database of an older imgbatch has no uploads table: nothing was uploaded. */
  private present(): boolean {
    return this.statement(`SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'uploads')`).pluck().get() === 1;
  }

  get(sha256: string, service: string): UploadRecord | undefined {
    if (!this.present()) return undefined;
    const row = this.statement(`SELECT * FROM uploads WHERE sha256 = ? AND service = ?`).get(sha256, service) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      sha256: row.sha256 as string,
      service: row.service as string,
      url: row.url as string,
      key: (row.upload_key as string | null) ?? null,
      contentType: row.content_type as string,
      bytes: row.bytes as number,
      uploadedAt: row.uploaded_at as number,
    };
  }

  record(u: UploadRecord): void {
    this.beforeWrite("grouped");
    this.statement(`INSERT OR REPLACE INTO uploads (sha256, service, url, upload_key, content_type, bytes, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(
      u.sha256,
      u.service,
      u.url,
      u.key,
      u.contentType,
      u.bytes,
      u.uploadedAt,
    );
  }
}
