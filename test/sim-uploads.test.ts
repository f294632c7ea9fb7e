// The simulator's media upload (PICTORY.md §6.6): generateurl hands out a signed PUT URL and a
// permanent URL; the PUT must carry exactly the signed Content-Type and be in time; the
// permanent URL then serves the bytes; the ledger counts the uploads.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimHandle, type SimOptionsPatch } from "../src/sim/index.js";

const KEY = "pictai_simkey";
const running: SimHandle[] = [];
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

async function sim(options: SimOptionsPatch = {}): Promise<SimHandle> {
  const handle = await startSimulator({ latencyMs: { "seedream3.0": 1_000, "flux-schnell": 1_000, nanobanana: 1_000, "nanobanana-pro": 1_000 }, jitterMs: 0, ...options });
  running.push(handle);
  return handle;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((h) => h.stop()));
});

async function generateUrl(s: SimHandle, body: unknown, key = KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.url}/v1/media/generateurl`, { method: "POST", headers: { Authorization: key, "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") ? JSON.parse(text) : text };
}

async function put(url: string, bytes: Buffer, contentType: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: "PUT", headers: { "Content-Type": contentType }, body: bytes });
  return { status: res.status, text: await res.text() };
}

describe("POST /v1/media/generateurl and the signed PUT", () => {
  it("stores the file put with the signed Content-Type and serves it at the permanent URL; each call is a new key", async () => {
    const s = await sim();
    const first = await generateUrl(s, { fileName: "earbuds.png", contentType: "image/png" });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ success: true, data: { signedUrl: expect.stringContaining("/uploads/"), url: expect.stringContaining("/files/uploads/"), key: expect.stringMatching(/^public\/teams\/.+\/earbuds\.png$/) } });
    const { signedUrl, url } = first.body.data;
    // Before the PUT the permanent URL has nothing.
    expect((await fetch(url)).status).toBe(403);
    expect(await put(signedUrl, PNG, "image/png")).toMatchObject({ status: 200 });
    const served = await fetch(url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await served.arrayBuffer()).equals(PNG)).toBe(true);
    const second = await generateUrl(s, { fileName: "earbuds.png", contentType: "image/png" });
    expect(second.body.data.key).not.toBe(first.body.data.key);
    expect(s.ledger()).toMatchObject({ uploadUrlsIssued: 2, uploads: 1, uploadsBySha256: { [sha(PNG)]: 1 }, uploadsRefused: {} });
    expect(s.ledger().requestsByRoute).toMatchObject({ "POST /v1/media/generateurl": 2, "PUT /uploads": 1 });
  });

  it("refuses a PUT with another Content-Type (the signature covers it) and one past the URL's 24 hours", async () => {
    const s = await sim();
    const { body } = await generateUrl(s, { fileName: "case.jpg", contentType: "image/jpeg" });
    const wrongType = await put(body.data.signedUrl, PNG, "image/png");
    expect(wrongType.status).toBe(403);
    expect(wrongType.text).toContain("<Code>SignatureDoesNotMatch</Code>");
    s.advance(24 * 60 * 60_000 + 1);
    const late = await put(body.data.signedUrl, PNG, "image/jpeg");
    expect(late.status).toBe(403);
    expect(late.text).toContain("Request has expired");
    expect(s.ledger()).toMatchObject({ uploads: 0, uploadsRefused: { signature: 1, expired: 1 } });
    expect((await fetch(body.data.url)).status).toBe(403);
  });

  it("fails the PUT of a file named in failUploadsNamed with a 500, every time; other files go through", async () => {
    const s = await sim({ failUploadsNamed: ["broken"] });
    const bad = await generateUrl(s, { fileName: "broken-shot.png", contentType: "image/png" });
    for (let i = 0; i < 2; i++) expect((await put(bad.body.data.signedUrl, PNG, "image/png")).status).toBe(500);
    const good = await generateUrl(s, { fileName: "earbuds.png", contentType: "image/png" });
    expect((await put(good.body.data.signedUrl, PNG, "image/png")).status).toBe(200);
    expect(s.ledger()).toMatchObject({ uploads: 1, uploadsRefused: { fault: 2 } });
  });

  it("checks the body (400 with fields) and the key (401), and takes the HTTP faults of its routes", async () => {
    const s = await sim();
    const bad = await generateUrl(s, { fileName: "a/b.png", contentType: "png" });
    expect(bad.status).toBe(400);
    expect(bad.body.fields.map((f: { name: string }) => f.name)).toEqual(["fileName", "contentType"]);
    expect((await generateUrl(s, { fileName: "a.png", contentType: "image/png" }, "pictai_wrong")).status).toBe(401);
    s.configure({ rate503: 1, faultRoutes: ["generateurl"] });
    expect((await generateUrl(s, { fileName: "a.png", contentType: "image/png" })).status).toBe(503);
    s.configure({ rate503: 0, rate500: 1, faultRoutes: ["upload"] });
    const ok = await generateUrl(s, { fileName: "a.png", contentType: "image/png" });
    expect((await put(ok.body.data.signedUrl, PNG, "image/png")).status).toBe(500);
  });

  it("fails a job whose reference is an upload URL of the simulator that never got its file", async () => {
    const s = await sim();
    const { body } = await generateUrl(s, { fileName: "earbuds.png", contentType: "image/png" });
    const submit = (referenceImageUrl: string) =>
      fetch(`${s.url}/v1/aistudio/images`, { method: "POST", headers: { Authorization: KEY, "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "Aurora Pro earbuds on a desk", referenceImageUrl }) }).then(
        async (r) => ((await r.json()) as { data: { jobId: string } }).data.jobId,
      );
    const before = await submit(body.data.url);
    await put(body.data.signedUrl, PNG, "image/png");
    const after = await submit(body.data.url);
    s.advance(1_000);
    const read = async (id: string) => (await (await fetch(`${s.url}/v1/jobs/${id}`, { headers: { Authorization: KEY } })).json()) as { data: { status: string; error_code?: string } };
    expect((await read(before)).data).toMatchObject({ status: "failed", error_code: "REFERENCE_IMAGE_UNREACHABLE" });
    expect((await read(after)).data.status).toBe("completed");
  });
});
