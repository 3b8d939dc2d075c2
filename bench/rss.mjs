// Preloaded into every measured process (node --import): on exit, writes the process's peak
// resident set size (KiB, from getrusage) to the file named by BENCH_RSS_FILE. Plain JS, so
// loading it does not start Node's TypeScript stripper in the measured process.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
}
