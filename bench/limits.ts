/**
 * The smallest memory limit one format completes in, with repeats: a pull of ALBUMS albums (nginx
 * source) to S3 with the default settings, in its own cgroup, at limits descending from START in
 * STEP MiB steps, RUNS runs at each. A limit passes when every run completes (exit 0, no OOM
 * kill); the sweep stops at the first limit that does not, since a lower one would not either,
 * and stops a failing limit at its first failure (the count says how many ran). One run without a
 * limit first gives the peak the README's table quotes beside the limit. `npm run bench` measures
 * the same with one run per step on a coarser ladder (bench/containers.ts); this is for a
 * format's limit alone, with repeats, in minutes.
 *
 *   npx node bench/limits.ts [format=csv] [albums=1000000] [start=128] [step=8] [runs=3] [lowest=step]
 *   format: csv | csv.gz | ndjson.gz | parquet (the output's extension picks the format)
 *   BENCH_FLAGS='--s3-queue-size 1;--s3-queue-size 2': extra CLI flags, one set per variant
 *   (`;` between sets); the variants take turns run by run at each limit, so a loaded machine
 *   slows them alike, and each stops at its own first failure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  type CgroupRun,
  cgroupAndNginx,
  completed,
  inCgroup,
  MiB,
  median,
  pullArgs,
  startBucket,
  startStaticSource,
} from './harness.ts';

const [format = 'csv', albumsArg, startArg, stepArg, runsArg, lowestArg] = process.argv.slice(2);
const albums = Number(albumsArg ?? 1_000_000);
const start = Number(startArg ?? 128);
const step = Number(stepArg ?? 8);
const runs = Number(runsArg ?? 3);
const lowest = Number(lowestArg ?? step);
const { cgroups, nginx, reason } = cgroupAndNginx();
if (reason !== undefined) {
  console.log(`not measured here: ${reason}`);
  process.exit(0);
}
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-limits-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const s3 = await startBucket();
const variants = (process.env.BENCH_FLAGS ?? '').split(';').map((v) => v.trim());
const args = (flags: string) =>
  pullArgs(`s3://bench/albums.${format}`, flags.split(/\s+/).filter(Boolean));
const ok = completed;
const run = (limitMiB: number | undefined, flags: string): Promise<CgroupRun> =>
  inCgroup(cgroups, limitMiB, bin, args(flags), { ...source.env, ...s3.env });
interface Variant {
  flags: string;
  lines: string[];
  smallest?: number;
  failed: string;
  done: boolean;
}
const results: Variant[] = variants.map((flags) => ({ flags, lines: [], failed: '', done: false }));
const flagsColumn = variants.some((flags) => flags !== '');
const name = (v: Variant) => (flagsColumn ? `${v.flags || '(none)'} | ` : '');
try {
  for (const v of results) {
    const free = await run(undefined, v.flags);
    v.lines.push(
      `| ${name(v)}none | 1/1 | ${free.seconds.toFixed(1)} | ${(free.peakBytes / MiB).toFixed(1)} | |`,
    );
  }
  for (let limit = start; limit >= lowest && results.some((v) => !v.done); limit -= step) {
    const active = results.filter((v) => !v.done);
    const done = new Map<Variant, CgroupRun[]>(active.map((v) => [v, []]));
    const killed = new Map<Variant, number>(active.map((v) => [v, 0]));
    for (let i = 0; i < runs; i++) {
      for (const v of active) {
        if (killed.get(v)) continue;
        const r = await run(limit, v.flags);
        if (ok(r)) done.get(v)?.push(r);
        else killed.set(v, 1);
      }
    }
    for (const v of active) {
      const ran = done.get(v) ?? [];
      const k = killed.get(v) ?? 0;
      const cell = (f: (r: CgroupRun) => number, digits: number) =>
        ran.length === 0 ? '' : median(ran.map(f)).toFixed(digits);
      v.lines.push(
        `| ${name(v)}${limit} MiB | ${ran.length}/${ran.length + k}${k ? ' (then OOM-killed)' : ''} | ${cell((r) => r.seconds, 1)} | ${cell((r) => r.peakBytes / MiB, 1)} | ${k ? '✗' : '✓'} |`,
      );
      if (k) {
        v.failed = `${limit} MiB: OOM-killed in run ${ran.length + 1}`;
        v.done = true;
      } else v.smallest = limit;
    }
  }
} finally {
  await Promise.all([source.stop(), s3.stop()]);
  await rm(tmp, { recursive: true, force: true });
}
console.log(
  `${albums.toLocaleString('en')} albums → s3://bench/albums.${format}, ${runs} runs per limit from ${start} MiB down in ${step} MiB steps\n`,
);
console.log(
  `| ${flagsColumn ? 'flags | ' : ''}limit | completed | wall s, median | peak cgroup MiB, median | |`,
);
console.log(`| ${flagsColumn ? '--- | ' : ''}--- | --- | --- | --- | --- |`);
for (const v of results) for (const line of v.lines) console.log(line);
for (const v of results) {
  console.log(
    `\n${v.flags === '' ? '' : `${v.flags}: `}smallest limit where ${runs} of ${runs} complete: ${v.smallest === undefined ? `none from ${start} MiB` : `${v.smallest} MiB`}${v.failed ? ` (${v.failed})` : ''}`,
  );
}
