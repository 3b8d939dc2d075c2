/**
 * Whole-process cost of several builds, paired in one run: a pull of ALBUMS albums → /dev/null
 * from the static source (nginx, pages rendered ahead; bench/static.ts), a one-page pull
 * (`--max-items 50`: mostly start-up), `--version` and `--help`, through each build's bin as
 * installed. Builds alternate within every round (the order flips each round), so the
 * machine's noise falls on all alike. Medians of `runs`; CPU is user + system of the process
 * (bench/rss.mjs), RSS its VmHWM.
 *
 *   npx node bench/paired.ts [runs=5] [albums=100000] [build dir…]   (default: this checkout)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  binOf,
  ensureNginx,
  type Measured,
  measure,
  median,
  pullArgs,
  root,
  startStaticSource,
} from './harness.ts';

const runs = Number(process.argv[2] ?? 5);
const albums = Number(process.argv[3] ?? 100_000);
const builds = process.argv.length > 4 ? process.argv.slice(4) : [root];
const { nginx, reason } = ensureNginx();
if (nginx === undefined) throw new Error(`no static source: ${reason}`);
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-paired-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const pull = pullArgs('/dev/null');
const cases: [string, string[]][] = [
  [`${albums.toLocaleString('en')} albums → /dev/null`, pull],
  ['one page (`--max-items 50`)', [...pull, '--max-items', '50']],
  ['`--version`', ['--version']],
  ['`--help`', ['--help']],
];
const samples = new Map<string, Measured[]>();
try {
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? builds : [...builds].reverse();
    for (const [name, args] of cases) {
      for (const build of order) {
        const m = await measure(binOf(build), args, source.env);
        const key = `${name}\u0000${build}`;
        samples.set(key, [...(samples.get(key) ?? []), m]);
      }
    }
  }
} finally {
  await source.stop();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`${runs} runs, medians; builds alternate\n`);
console.log('| case | build | CPU s | wall s | peak RSS MiB |\n| --- | --- | --- | --- | --- |');
for (const [name] of cases) {
  for (const build of builds) {
    const ms = samples.get(`${name}\u0000${build}`) as Measured[];
    const cpu = ms.map((m) => m.cpuSeconds);
    console.log(
      `| ${name} | ${build} | ${median(cpu).toFixed(3)} (${Math.min(...cpu).toFixed(3)}–${Math.max(...cpu).toFixed(3)}) | ${median(ms.map((m) => m.seconds)).toFixed(3)} | ${median(ms.map((m) => m.rssMiB)).toFixed(1)} |`,
    );
  }
}
