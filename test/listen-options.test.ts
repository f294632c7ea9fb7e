// `--listen [HOST:]PORT` and `--public-url URL` (commands/option-values.ts): they go together,
// the host is loopback unless given, and the public URL takes the items' paths.
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { parseListenFlags } from "../src/commands/option-values.js";
import { ExitError } from "../src/errors.js";
import { runCli } from "./helpers/cli.js";

describe("--listen and --public-url", () => {
  it.each([
    ["8788", "https://hooks.example.com/imgbatch/", { listen: { host: "127.0.0.1", port: 8788 }, publicUrl: "https://hooks.example.com/imgbatch" }],
    ["0.0.0.0:8788", "http://203.0.113.7:8788", { listen: { host: "0.0.0.0", port: 8788 }, publicUrl: "http://203.0.113.7:8788" }],
    ["[::1]:9000", "https://tunnel.example.net", { listen: { host: "::1", port: 9000 }, publicUrl: "https://tunnel.example.net" }],
    ["localhost:9000", "https://tunnel.example.net/a/b", { listen: { host: "localhost", port: 9000 }, publicUrl: "https://tunnel.example.net/a/b" }],
  ])("%s with %s", (listen, url, expected) => {
    expect(parseListenFlags(listen, url)).toEqual(expected);
  });

  it("is nothing when neither is given", () => {
    expect(parseListenFlags(undefined, undefined)).toEqual({});
  });

  it.each([
    ["8788", undefined, /--listen needs --public-url/],
    [undefined, "https://hooks.example.com", /--public-url goes with --listen/],
    ["http", "https://hooks.example.com", /is not \[HOST:\]PORT/],
    ["70000", "https://hooks.example.com", /is not \[HOST:\]PORT/],
    ["0", "https://hooks.example.com", /is not \[HOST:\]PORT/],
    ["8788", "hooks.example.com/x", /is not an absolute URL/],
    ["8788", "ftp://hooks.example.com", /must be http or https/],
    ["8788", "https://hooks.example.com/x?key=1", /no query, fragment or credentials/],
    ["8788", "https://user:pw@hooks.example.com/x", /no query, fragment or credentials/],
  ])("refuses --listen %s --public-url %s (exit 1)", (listen, url, message) => {
    let thrown: unknown;
    try {
      parseListenFlags(listen, url);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ExitError);
    expect((thrown as ExitError).exitCode).toBe(1);
    expect((thrown as ExitError).message).toMatch(message);
  });

  it("the CLI exits 1 naming the missing flag, before reading the manifest", async () => {
    const result = await runCli(["run", "no-such.yaml", "--provider", "pictory", "--listen", "8788"], { cwd: tmpdir(), env: { PICTORY_API_KEY: "pictai_unused" } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--listen needs --public-url URL/);
  });
});
