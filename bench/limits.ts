/**
 * The smallest memory limit one format completes in, with repeats: a pull of ALBUMS albums (nginx
 * source) to S3 with the default settings, in its own cgroup, at limits descending from START in
 * STEP MiB steps, RUNS runs at each. A limit passes when every run completes (exit 0, no OOM
 * kill); the sweep stops at the first limit that does not, since a lower one would not either,
 * and stops a failing limit at its first failure (the count says how many ran). One run without a
 * limit first gives the peak the README's table quotes beside the limit. `npm run bench` measures
 * the same with one run per step on a coarser ladder (bench/issue13.ts); this is for a
 * format's limit alone, with repeats, in minutes.
 *
 *   npx node bench/limits.ts [format=csv] [albums=1000000] [start=128] [step=8] [runs=3]
 *   format: csv | csv.gz | ndjson.gz | parquet (the output's extension picks the format)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startS3 } from '../scripts/local-s3.ts';
import { type CgroupRun, detectCgroups } from './cgroup.ts';
import { ensureNginx, startStaticSource } from './static.ts';

const [format = 'csv', albumsArg, startArg, stepArg, runsArg] = process.argv.slice(2);
const albums = Number(albumsArg ?? 1_000_000);
const start = Number(startArg ?? 128);
const step = Number(stepArg ?? 8);
const runs = Number(runsArg ?? 3);
const MiB = 1024 * 1024;
const bin = fileURLToPath(new URL('../dist/bin/spotify-batch.js', import.meta.url));
const { cgroups, reason } = detectCgroups();
const { nginx, reason: noNginx } = ensureNginx();
if (cgroups === undefined || nginx === undefined) {
  console.log(`not measured here: ${reason ?? noNginx}`);
  process.exit(0);
}
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-limits-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const s3 = await startS3();
await s3.createBucket('bench');
const env = {
  ...process.env,
  ...source.env,
  ...s3.env,
  // The bin's shebang runs `node` from PATH: the Node running the bench comes first.
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
};
const args = [
  'new-releases',
  '--out',
  `s3://bench/albums.${format}`,
  '--quiet',
  '--concurrency',
  '8',
];
const ok = (r: CgroupRun) => r.code === 0 && !r.oomKilled;
const run = async (limitMiB: number | undefined): Promise<CgroupRun> => {
  const r = await cgroups.run(limitMiB === undefined ? undefined : limitMiB * MiB, bin, args, env);
  // Anything but success or an OOM kill is a broken run, not a result.
  if (r.code !== 0 && !r.oomKilled) {
    throw new Error(`limit ${limitMiB ?? 'none'}: exit ${r.code ?? r.signal}\n${r.stderr}`);
  }
  return r;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const lines: string[] = [];
let smallest: number | undefined;
let failed = '';
try {
  const free = await run(undefined);
  lines.push(
    `| none | 1/1 | ${free.seconds.toFixed(1)} | ${(free.peakBytes / MiB).toFixed(1)} | |`,
  );
  for (let limit = start; limit > 0; limit -= step) {
    const done: CgroupRun[] = [];
    let killed = 0;
    for (let i = 0; i < runs && killed === 0; i++) {
      const r = await run(limit);
      if (ok(r)) done.push(r);
      else killed++;
    }
    const cell = (f: (r: CgroupRun) => number, digits: number) =>
      done.length === 0 ? '' : median(done.map(f)).toFixed(digits);
    lines.push(
      `| ${limit} MiB | ${done.length}/${done.length + killed}${killed ? ' (then OOM-killed)' : ''} | ${cell((r) => r.seconds, 1)} | ${cell((r) => r.peakBytes / MiB, 1)} | ${killed ? '✗' : '✓'} |`,
    );
    if (killed) {
      failed = `${limit} MiB: OOM-killed in run ${done.length + 1}`;
      break;
    }
    smallest = limit;
  }
} finally {
  await Promise.all([source.stop(), s3.stop()]);
  await rm(tmp, { recursive: true, force: true });
}
console.log(
  `${albums.toLocaleString('en')} albums → s3://bench/albums.${format}, ${runs} runs per limit from ${start} MiB down in ${step} MiB steps\n`,
);
console.log('| limit | completed | wall s, median | peak cgroup MiB, median | |');
console.log('| --- | --- | --- | --- | --- |');
for (const line of lines) console.log(line);
console.log(
  `\nsmallest limit where ${runs} of ${runs} complete: ${smallest === undefined ? `none from ${start} MiB` : `${smallest} MiB`}${failed ? ` (${failed})` : ''}`,
);
