// Child process: the two baselines of scenario 1, written the way a script would be.
// - "sequential": the loop of Pictory's text-to-image guide: submit one image, poll it at a
//   fixed interval until it is done, download it, then the next.
// - "p-limit": the same per-item steps under p-limit(C): fixed polling, no checkpoint, no
//   verification, no thumbnail; the image is written as downloaded.
// Both send what the pipeline sends (raw key, JSON, a User-Agent) and record when each job
// was seen completed, for the detection delay.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pLimit from "p-limit";
import { childInput, childResult, sleep } from "./lib.mjs";

const input = await childInput();
const headers = { authorization: input.apiKey, "content-type": "application/json", "user-agent": "bench-baseline/1.0", accept: "application/json" };
const seen = [];

async function makeImage(item) {
  const submit = await fetch(`${input.simUrl}/v1/aistudio/images`, {
    method: "POST",
    headers,
    body: JSON.stringify({ prompt: item.prompt, model: item.model, aspectRatio: "1:1" }),
  });
  if (!submit.ok) throw new Error(`submit: HTTP ${submit.status}`);
  const jobId = (await submit.json()).data.jobId;
  for (;;) {
    await sleep(input.pollIntervalMs);
    const res = await fetch(`${input.simUrl}/v1/jobs/${jobId}`, { headers });
    if (!res.ok) throw new Error(`poll: HTTP ${res.status}`);
    const job = await res.json();
    if (job.data.status === "completed") {
      seen.push({ jobId, detectedAt: Date.now() });
      const image = await fetch(job.data.url);
      await writeFile(join(input.out, `${item.key}.png`), Buffer.from(await image.arrayBuffer()));
      return;
    }
    if (job.data.status === "failed") throw new Error(`job failed: ${job.data.error_code}`);
  }
}

await mkdir(input.out, { recursive: true });
const cpuBefore = process.cpuUsage();
const startedAt = Date.now();
if (input.mode === "sequential") {
  for (const item of input.items) await makeImage(item);
} else {
  const limit = pLimit(input.concurrency);
  await Promise.all(input.items.map((item) => limit(() => makeImage(item))));
}
const endedAt = Date.now();
const cpu = process.cpuUsage(cpuBefore);
await childResult({ startedAt, endedAt, wallMs: endedAt - startedAt, cpuMs: (cpu.user + cpu.system) / 1000, seen });
