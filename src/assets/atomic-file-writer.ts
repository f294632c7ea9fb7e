// A file written in pieces, still atomically: the pieces go to a temporary name in the same
// folder and the file is renamed into place only when whole (see atomic-file.ts). Used for
// reports of any size, so that a 20,000-line results file is never one string in memory.
import { createHash, type Hash } from "node:crypto";
import { closeSync, createReadStream, fsyncSync, writeSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { InternalError } from "../errors.js";
import { fsyncDir, openNewFile, tempPathFor } from "./atomic-file.js";

/** Pieces are gathered up to this size before they are written. */
const FLUSH_CHARS = 64 * 1024;

export interface AtomicFileWriterOptions {
  /**
   * What to ignore when telling whether the file changed: applied to the start of both the
   * new text and the file on disk (the first 64 KiB of each), e.g. to drop a generation time.
   */
  comparableHead?: (head: string) => string;
}

export class AtomicFileWriter {
  private readonly temp: string;
  private fd: number | null;
  private pending = "";
  private wroteHead = false;
  private readonly hash: Hash = createHash("sha256");

  constructor(
    readonly finalPath: string,
    private readonly options: AtomicFileWriterOptions = {},
  ) {
    this.temp = tempPathFor(finalPath);
    this.fd = openNewFile(this.temp);
  }

  /**
   * Synchronous on purpose: callers write while a SQLite cursor is open, and better-sqlite3
   * refuses any other statement on the connection until it closes (the heartbeat timer
   * would fail if the event loop ran in between).
   */
  write(text: string): void {
    this.pending += text;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
  }

  private flush(): void {
    if (this.fd === null) throw new InternalError(`${this.finalPath}: written after it was finished`);
    if (this.pending === "") return;
    const piece = this.pending;
    this.pending = "";
    this.hash.update(this.wroteHead || !this.options.comparableHead ? piece : this.options.comparableHead(piece), "utf8");
    this.wroteHead = true;
    const bytes = Buffer.from(piece, "utf8");
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(this.fd, bytes, offset);
  }

  /**
   * Renames the file into place unless the one there already holds the same content (as
   * `comparableHead` sees it): a run that changed nothing leaves the folder as it was.
   * Returns whether it wrote.
   */
  async commitIfChanged(): Promise<boolean> {
    try {
      this.flush();
      const fd = this.fd!;
      const digest = this.hash.digest("hex");
      if ((await comparableDigest(this.finalPath, this.options.comparableHead)) === digest) {
        this.closeFd();
        await rm(this.temp, { force: true });
        return false;
      }
      fsyncSync(fd);
      this.closeFd();
      await rename(this.temp, this.finalPath);
      fsyncDir(dirname(this.finalPath));
      return true;
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Drops the temporary file (after an error while writing). */
  async abort(): Promise<void> {
    this.closeFd();
    await rm(this.temp, { force: true });
  }

  private closeFd(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** The digest of a file on disk as AtomicFileWriter computes it, or null when there is none. */
async function comparableDigest(path: string, comparableHead: ((head: string) => string) | undefined): Promise<string | null> {
  const hash = createHash("sha256");
  const decoder = new StringDecoder("utf8");
  let head = true;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: FLUSH_CHARS })) {
      const text = decoder.write(chunk as Buffer);
      hash.update(head && comparableHead ? comparableHead(text) : text, "utf8");
      head = false;
    }
  } catch {
    return null; // missing or unreadable: write the new one
  }
  hash.update(decoder.end(), "utf8");
  return hash.digest("hex");
}
