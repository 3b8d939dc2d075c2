// Preloaded into every measured process (node --import): on exit, writes the process's peak
// resident set size in KiB, its CPU time (user + system, seconds) and whether it loaded Node's
// own bundled copy of undici (1 or 0) to the file named by BENCH_RSS_FILE, as `KiB seconds 0|1`. Plain JS, so loading it does not start Node's TypeScript
// stripper in the measured process.
//
// On Linux it reads VmHWM from /proc/self/status, the high-water mark of this process's own
// address space. getrusage's maxRSS is not used there: the kernel carries the parent's
// high-water mark over fork+exec, so a child of a big orchestrator reports the parent's peak.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    let kib = process.resourceUsage().maxRSS;
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      if (hwm) kib = Number(hwm[1]);
    } catch {
      // not Linux: maxRSS it is
    }
    const { user, system } = process.cpuUsage();
    const undici = process.moduleLoadList.some((m) => m.includes('internal/deps/undici'));
    writeFileSync(file, `${kib} ${(user + system) / 1e6} ${undici ? 1 : 0}`);
  });
}
