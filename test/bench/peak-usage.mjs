// Preloaded into a child (`node --import ./test/bench/peak-usage.mjs …`): at exit, writes the
// process's own peak RSS (getrusage's ru_maxrss, as /proc's VmHWM), its CPU time and its wall
// time since start to the file named by IMGBATCH_USAGE_FILE, as one JSON line.
import { writeFileSync } from "node:fs";

const file = process.env.IMGBATCH_USAGE_FILE;
if (file) {
  process.on("exit", (code) => {
    const usage = process.resourceUsage();
    writeFileSync(file, `${JSON.stringify({ code, peakRssKiB: usage.maxRSS, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, wallMs: process.uptime() * 1000 })}\n`);
  });
}
