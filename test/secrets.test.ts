// The one redaction of secrets (src/secrets.ts): each shape of secret on its own, then end to
// end, a service that echoes the key back in its 400s and failed jobs, and a run whose files
// and stderr must hold neither the key nor its bare suffix.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readEnvironment } from "../src/env.js";
import { PermanentError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { requestHash } from "../src/manifest/index.js";
import { DEFAULT_RETRYABLE_JOB_CODES, PictoryProvider } from "../src/providers/pictory.js";
import { toResultLine } from "../src/report/results.js";
import { MIN_SECRET_LENGTH, forgetSecrets, redactSecrets, redactSecretsIn, registerSecret } from "../src/secrets.js";
import { SqliteStore as Store } from "../src/store/sqlite/sqlite-store.js";
import type { ItemRecord } from "../src/store/types.js";
import { startSimulator, type SimHandle } from "../src/sim/index.js";
import { runCli } from "./helpers/cli.js";
import { useTempDir } from "./helpers/tmp.js";
import { move } from "./helpers/store.js";
import { sqliteConnectionOf } from "./helpers/db.js";

const KEY = "pictai_Zq7vLkP2xR9mWc4TbY8nHs3J";
const SUFFIX = KEY.slice("pictai_".length);

describe("redactSecrets", () => {
  afterEach(() => forgetSecrets());

  it("masks anything shaped like a Pictory key, registered or not", async () => {
    expect(redactSecrets("bad key pictai_abc-DEF_123 given")).toBe("bad key pictai_[redacted] given");
    expect(redactSecrets("two: pictai_a,pictai_b.")).toBe("two: pictai_[redacted],pictai_[redacted].");
  });

  it("masks the registered key wherever it appears, inside words and JSON alike", async () => {
    registerSecret(KEY);
    expect(redactSecrets(`x${KEY}y`)).toBe("xpictai_[redacted]y");
    expect(redactSecrets(`{"k":"${KEY}"}`)).toBe('{"k":"pictai_[redacted]"}');
  });

  it("masks the registered key's part after pictai_ on its own", async () => {
    registerSecret(KEY);
    expect(redactSecrets(`account ${SUFFIX} has no access`)).toBe("account [redacted] has no access");
    expect(redactSecrets(`key=…${SUFFIX}`)).toBe("key=…[redacted]");
  });

  it("masks a key that does not fit the key shape (a dot in it) whole, once registered", async () => {
    const odd = "pictai_abc.def.ghi";
    expect(redactSecrets(odd)).toBe("pictai_[redacted].def.ghi"); // the shape alone stops at the dot
    registerSecret(odd);
    expect(redactSecrets(`was ${odd}!`)).toBe("was pictai_[redacted]!");
  });

  it("masks a registered non-key secret (a connection-string password) and its percent-encoded form", async () => {
    registerSecret("s3cr3t/p@ss");
    expect(redactSecrets("postgres://app:s3cr3t/p@ss@db/x")).toBe("postgres://app:[redacted]@db/x");
    expect(redactSecrets("postgres://app:s3cr3t%2Fp%40ss@db/x")).toBe("postgres://app:[redacted]@db/x");
  });

  it("leaves other text alone, keeps null, ignores values too short to be secrets, and is idempotent", async () => {
    registerSecret("abc");
    registerSecret("");
    registerSecret(null);
    registerSecret("redacted"); // inside the mask: would garble it on a second pass
    expect("abc".length).toBeLessThan(MIN_SECRET_LENGTH);
    expect(redactSecrets("abc: a plain message")).toBe("abc: a plain message");
    expect(redactSecrets(null)).toBeNull();
    registerSecret(KEY);
    const once = redactSecrets(`${KEY} ${SUFFIX}`);
    expect(redactSecrets(once)).toBe(once);
    expect(once).toBe("pictai_[redacted] [redacted]");
  });

  it("masks every string of a JSON value, keys included", async () => {
    registerSecret(KEY);
    expect(redactSecretsIn({ a: [SUFFIX, 1, null], [KEY]: { b: `x ${KEY}` } })).toEqual({ a: ["[redacted]", 1, null], "pictai_[redacted]": { b: "x pictai_[redacted]" } });
  });

  it("registers the configured key where the environment is read", async () => {
    readEnvironment({ PICTORY_API_KEY: ` ${KEY} ` });
    expect(redactSecrets(`echo ${SUFFIX}`)).toBe("echo [redacted]");
  });

  it("keeps the key and its suffix out of log lines, in the message and in the fields", async () => {
    registerSecret(KEY);
    const lines: string[] = [];
    const logger = createLogger({ level: "info", destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) });
    logger.info({ body: { fields: [{ name: "prompt", errors: `bad for ${SUFFIX}` }] } }, `refused ${SUFFIX}`);
    const text = lines.join("");
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(SUFFIX);
  });
});

describe("each place the service's words enter or leave masks them on its own", () => {
  const tempDir = useTempDir();
  let sim: SimHandle | null = null;
  beforeEach(() => registerSecret(KEY));
  afterEach(async () => {
    forgetSecrets();
    await sim?.stop();
    sim = null;
  });
  const echoed = `refused for key ${KEY}, account ${SUFFIX}`;
  const expectMasked = (text: string): void => {
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(SUFFIX);
  };

  it("the provider: a 400's fields[].errors and a failed job's error_message", async () => {
    sim = await startSimulator({ apiKeys: [KEY], echoKeyInErrors: true, rejectReferenceWithFlux: true, latencyMs: { "seedream3.0": 0 }, jitterMs: 0 });
    const provider = new PictoryProvider({
      apiKey: KEY, baseUrl: sim.url, pollIntervalMs: 10, connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000,
      connections: 2, retryableJobCodes: DEFAULT_RETRYABLE_JOB_CODES, clockSkewMs: 60_000, userAgent: "imgbatch-test",
    });
    try {
      const refused = await provider.submit({ prompt: "A lighthouse at dusk", model: "flux-schnell", aspectRatio: "1:1", referenceImageUrl: "https://example.com/r.png" }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(PermanentError);
      expectMasked((refused as PermanentError).message);
      expectMasked(JSON.stringify((refused as PermanentError).fields));
      const { jobId } = await provider.submit({ prompt: "A lighthouse at dawn", model: "seedream3.0", aspectRatio: "1:1", referenceImageUrl: "https://unreachable.invalid/r.png" });
      const job = await provider.getJob({ jobId });
      expect(job).toMatchObject({ status: "failed", code: "REFERENCE_IMAGE_UNREACHABLE" });
      expectMasked((job as { message: string }).message);
    } finally {
      await provider.close();
    }
  });

  it("the store: an item's error_message, event details and a run's stop reason, whatever the caller passed", async () => {
    const store = Store.open(join(tempDir(), "jobs", "m.sqlite"));
    const request = { prompt: "a lighthouse", model: "seedream3.0" as const, aspectRatio: "1:1" as const };
    await store.syncManifest([{ item: { key: "a", rowId: "a", source: "m.yaml line 1", variant: null, matrix: {}, request }, requestHash: requestHash(request, "local") }], "local");
    let item = await move(store, (await store.byKey("a"))!, "submitting", { attempts: 1, errorMessage: echoed }, echoed);
    item = await store.write(item, { note: echoed, set: { errorMessage: echoed } });
    item = await store.write(item, { set: { errorMessage: echoed } });
    item = await move(store, item, "failed", { errorCode: "X", errorMessage: echoed }, echoed);
    expectMasked(item.errorMessage!);
    const begun = await store.beginRun({ pid: process.pid, host: "h", provider: "local", manifestFile: "m.yaml" }, () => true);
    if (!begun.acquired) throw new Error("no run");
    await store.endRun(begun.run.id, { outcome: "stopped", exitCode: 3, stopReason: echoed, itemsDone: 0, itemsFailed: 1, credits: 0 });
    const db = sqliteConnectionOf(store);
    const stored = JSON.stringify([db.prepare("SELECT * FROM items").all(), db.prepare("SELECT * FROM events").all(), db.prepare("SELECT * FROM runs").all()]);
    await store.close();
    expectMasked(stored);
  });

  it("the reports: a result line (results.csv, results.jsonl and the contact sheet) of a record stored before the masking", async () => {
    const item: ItemRecord = {
      id: 1, key: "a", rowId: "a", source: "m.yaml line 1", provider: "pictory", request: { prompt: "p", model: "seedream3.0", aspectRatio: "1:1" }, requestHash: "h",
      state: "failed", attempts: 1, nextAttemptAt: 0, jobId: null, imageRef: null, submittedAt: null, errorCode: `E_${SUFFIX}`, errorMessage: echoed, credits: null,
      resultUrl: null, resultWidth: null, resultHeight: null, filePath: null, thumbPath: null, sha256: null, width: null, height: null, format: null, bytes: null,
      polls: 0, readFailures: 0, foundNothingAt: null, qcFlags: [], qcRetries: 0, phash: null, owner: null, claimEpoch: 0, leaseUntil: null,
      inManifest: true, createdAt: 0, updatedAt: 0, completedAt: null,
    };
    const line = toResultLine(item, "/out", {});
    expectMasked(line.errorMessage);
    expectMasked(line.errorCode);
  });
});

describe("a service that echoes the key back", () => {
  const tempDir = useTempDir();
  let sim: SimHandle | null = null;
  afterEach(async () => {
    await sim?.stop();
    sim = null;
  });

  const filesUnder = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));

  it("leaves neither the key nor its bare suffix in any file of the run's folders nor in stderr", async () => {
    sim = await startSimulator({
      apiKeys: [KEY],
      echoKeyInErrors: true,
      rejectReferenceWithFlux: true, // a 400 the client does not foresee: its fields[].errors echo the key
      latencyMs: { "seedream3.0": 30, "flux-schnell": 20, nanobanana: 40, "nanobanana-pro": 60 },
      jitterMs: 10,
    });
    const dir = tempDir();
    writeFileSync(
      join(dir, "echo.yaml"),
      [
        "name: echo",
        "provider: pictory",
        "defaults:",
        "  model: seedream3.0",
        "rows:",
        "  - id: refused", // 400 INVALID_REQUEST_BODY, fields[].errors ending with the key and its suffix
        "    prompt: A lighthouse at dusk over a calm sea",
        "    model: flux-schnell",
        "    referenceImageUrl: https://example.com/ref.png",
        "  - id: failed", // a failed job whose error_message ends with the key and its suffix
        "    prompt: A lighthouse at dawn over a rough sea",
        "    referenceImageUrl: https://unreachable.invalid/ref.png",
        "  - id: fine",
        "    prompt: A lighthouse at noon over a blue sea",
        "",
      ].join("\n"),
    );
    const result = await runCli(["run", "echo.yaml", "--poll-interval", "25ms", "--log-level", "trace", "--log-file", "run.log"], {
      cwd: dir,
      env: { PICTORY_API_KEY: KEY, PICTORY_BASE_URL: sim.url },
    });
    expect(result.code, result.stderr).toBe(2);

    // The echoes happened and reached the store masked: the test would prove nothing otherwise.
    const dbFile = filesUnder(dir).find((f) => f.endsWith(".sqlite"))!;
    const db = new Database(dbFile, { readonly: true });
    const rows = db.prepare("SELECT row_id, state, error_code, error_message FROM items ORDER BY row_id").all() as Record<string, string | null>[];
    db.close();
    expect(rows.map((r) => [r.row_id, r.state, r.error_code])).toEqual([
      ["failed", "failed", "REFERENCE_IMAGE_UNREACHABLE"],
      ["fine", "done", null],
      ["refused", "failed", "INVALID_REQUEST_BODY"],
    ]);
    for (const r of rows.filter((row) => row.state === "failed")) expect(r.error_message).toMatch(/key pictai_\[redacted\], account \[redacted\]/);

    const files = filesUnder(dir);
    for (const name of ["results.csv", "results.jsonl", "index.html", "run.log", "fine.json"]) expect(files.some((f) => f.endsWith(name)), name).toBe(true);
    for (const file of files) {
      const bytes = readFileSync(file);
      expect(bytes.includes(Buffer.from(KEY)), file).toBe(false);
      expect(bytes.includes(Buffer.from(SUFFIX)), file).toBe(false);
    }
    expect(result.stderr).not.toContain(SUFFIX);
    expect(result.stdout).not.toContain(SUFFIX);
  }, 30_000);
});
