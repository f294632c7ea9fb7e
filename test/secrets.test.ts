// The one redaction of secrets (src/secrets.ts): each shape of secret on its own, then end to
// end, a service that echoes the key back in its 400s and failed jobs, and a run whose files
// and stderr must hold neither the key nor its bare suffix.
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { readEnvironment } from "../src/env.js";
import { createLogger } from "../src/log.js";
import { MIN_SECRET_LENGTH, forgetSecrets, redactSecrets, redactSecretsIn, registerSecret } from "../src/secrets.js";

const KEY = "pictai_Zq7vLkP2xR9mWc4TbY8nHs3J";
const SUFFIX = KEY.slice("pictai_".length);

describe("redactSecrets", () => {
  afterEach(() => forgetSecrets());

  it("masks anything shaped like a Pictory key, registered or not", () => {
    expect(redactSecrets("bad key pictai_abc-DEF_123 given")).toBe("bad key pictai_[redacted] given");
    expect(redactSecrets("two: pictai_a,pictai_b.")).toBe("two: pictai_[redacted],pictai_[redacted].");
  });

  it("masks the registered key wherever it appears, inside words and JSON alike", () => {
    registerSecret(KEY);
    expect(redactSecrets(`x${KEY}y`)).toBe("xpictai_[redacted]y");
    expect(redactSecrets(`{"k":"${KEY}"}`)).toBe('{"k":"pictai_[redacted]"}');
  });

  it("masks the registered key's part after pictai_ on its own", () => {
    registerSecret(KEY);
    expect(redactSecrets(`account ${SUFFIX} has no access`)).toBe("account [redacted] has no access");
    expect(redactSecrets(`key=…${SUFFIX}`)).toBe("key=…[redacted]");
  });

  it("masks a key that does not fit the key shape (a dot in it) whole, once registered", () => {
    const odd = "pictai_abc.def.ghi";
    expect(redactSecrets(odd)).toBe("pictai_[redacted].def.ghi"); // the shape alone stops at the dot
    registerSecret(odd);
    expect(redactSecrets(`was ${odd}!`)).toBe("was pictai_[redacted]!");
  });

  it("masks a registered non-key secret (a connection-string password) and its percent-encoded form", () => {
    registerSecret("s3cr3t/p@ss");
    expect(redactSecrets("postgres://app:s3cr3t/p@ss@db/x")).toBe("postgres://app:[redacted]@db/x");
    expect(redactSecrets("postgres://app:s3cr3t%2Fp%40ss@db/x")).toBe("postgres://app:[redacted]@db/x");
  });

  it("leaves other text alone, keeps null, ignores values too short to be secrets, and is idempotent", () => {
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

  it("masks every string of a JSON value, keys included", () => {
    registerSecret(KEY);
    expect(redactSecretsIn({ a: [SUFFIX, 1, null], [KEY]: { b: `x ${KEY}` } })).toEqual({ a: ["[redacted]", 1, null], "pictai_[redacted]": { b: "x pictai_[redacted]" } });
  });

  it("registers the configured key where the environment is read", () => {
    readEnvironment({ PICTORY_API_KEY: ` ${KEY} ` });
    expect(redactSecrets(`echo ${SUFFIX}`)).toBe("echo [redacted]");
  });

  it("keeps the key and its suffix out of log lines, in the message and in the fields", () => {
    registerSecret(KEY);
    const lines: string[] = [];
    const logger = createLogger({ level: "info", destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) });
    logger.info({ body: { fields: [{ name: "prompt", errors: `bad for ${SUFFIX}` }] } }, `refused ${SUFFIX}`);
    const text = lines.join("");
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(SUFFIX);
  });
});
