/**
 * Memory in a container (a section of `npm run bench`): the measured process alone in its own
 * memory cgroup (bench/cgroup.ts), with and without a limit, pulling from nginx (bench/static.ts)
 * to the local S3: a million albums inside 128 MiB against no limit (time, peak, identical bytes),
 * small and medium pulls for flatness, /dev/null, V8's own sizing, the libraries at rest; the
 * floor in the same cgroup (bench/floor-cgroup.ts); the smallest limit per format on a ladder;
 * and the Parquet row groups (bench/duckdb.ts scans the files).
 *
 *   npx node bench/containers.ts [--quick]   (the sizes of `npm run bench`, or its quick ones)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { floorCgroup } from './floor-cgroup.ts';
import {
  bin,
  type CgroupRun,
  type Cgroups,
  cgroupAndNginx,
  check,
  completed,
  en,
  inCgroup,
  MiB,
  median,
  objectDigest,
  pullArgs,
  range,
  root,
  type StaticSource,
  startBucket,
  startStaticSource,
} from './harness.ts';

interface Format {
  name: string;
  key: string;
  extra: string[];
  /** Where the ladder of limits starts (MiB). */
  start: number;
}

const FORMATS: Format[] = [
  { name: 'CSV', key: 'albums.csv', extra: [], start: 128 },
  { name: 'CSV, gzip', key: 'albums.csv.gz', extra: [], start: 128 },
  { name: 'NDJSON, gzip', key: 'albums.ndjson.gz', extra: [], start: 128 },
  { name: 'Parquet', key: 'albums.parquet', extra: [], start: 256 },
];
const LADDER = [64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768];

export interface ContainerSizes {
  quick: boolean;
  runs: number;
  small: number;
  medium: number;
  large: number;
}

export async function containersSection(
  o: ContainerSizes,
  nginx: string,
  cgroups: Cgroups,
): Promise<string> {
  const runs = o.runs;
  const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-containers-'));
  const s3 = await startBucket();
  /** The bin as installed pulls from `source` to `out`, in its own cgroup. */
  const run = (
    source: StaticSource,
    limitMiB: number | undefined,
    out: string,
    extra: string[] = [],
  ) => inCgroup(cgroups, limitMiB, bin, pullArgs(out, extra), { ...source.env, ...s3.env });
  const ok = completed;
  const digest = (key: string) => objectDigest(s3, 'bench', key);
  const lines: string[] = [];
  try {
    // Small pull: the flat-memory baseline; the same to /dev/null (an output this small fills
    // less than one S3 part: the other part buffers are never touched).
    const smallSource = await startStaticSource(nginx, join(tmp, `static-${o.small}`), o.small);
    const small: CgroupRun[] = [];
    const smallNull: CgroupRun[] = [];
    try {
      for (let i = 0; i < runs; i++) {
        small.push(await run(smallSource, 128, 's3://bench/small.csv'));
        smallNull.push(await run(smallSource, 128, '/dev/null'));
      }
    } finally {
      await smallSource.stop();
    }
    // A medium pull: every part buffer in use, as at a million.
    const mediumSource = await startStaticSource(nginx, join(tmp, `static-${o.medium}`), o.medium);
    const medium: CgroupRun[] = [];
    try {
      for (let i = 0; i < runs; i++)
        medium.push(await run(mediumSource, 128, 's3://bench/medium.csv'));
    } finally {
      await mediumSource.stop();
    }
    const largeSource = await startStaticSource(nginx, join(tmp, `static-${o.large}`), o.large);
    try {
      // A million albums to S3, default settings, with and without the 128 MiB limit, alternated.
      const free: CgroupRun[] = [];
      const limited: CgroupRun[] = [];
      let freeDigest = '';
      let limitedDigest = '';
      for (let i = 0; i < runs; i++) {
        free.push(await run(largeSource, undefined, 's3://bench/free.csv'));
        if (i === 0) freeDigest = await digest('free.csv');
        limited.push(await run(largeSource, 128, 's3://bench/limited.csv'));
        const last = limited.at(-1) as CgroupRun;
        if (ok(last) && limitedDigest === '') limitedDigest = await digest('limited.csv');
      }
      // Where the memory goes: the libraries at rest, and the same pull without the upload.
      const rest: CgroupRun[] = [];
      const devNull: CgroupRun[] = [];
      const noFlag: CgroupRun[] = [];
      for (let i = 0; i < runs; i++) {
        rest.push(
          await inCgroup(cgroups, undefined, process.execPath, [
            '--max-semi-space-size=8',
            '--input-type=module',
            '-e',
            "const { createRequire } = await import('node:module'); const r = createRequire(process.cwd() + '/'); r('undici/lib/dispatcher/agent.js'); r('undici/lib/api/api-request.js'); await import('@aws-sdk/client-s3'); await import('yargs')",
          ]),
        );
        devNull.push(await run(largeSource, 128, '/dev/null'));
        // V8's own sizing inside the limit: `node dist/bin/spotify-batch.js`, no shebang flags.
        noFlag.push(
          await inCgroup(
            cgroups,
            128,
            process.execPath,
            [bin, ...pullArgs('s3://bench/noflag.csv')],
            {
              ...largeSource.env,
              ...s3.env,
            },
          ),
        );
      }
      const row = (name: string, rs: CgroupRun[]) =>
        `| ${name} | ${rs.filter(ok).length}/${rs.length} | ${wall(rs).toFixed(2)} (${range(
          rs.map((r) => r.seconds),
          2,
        )}) | ${peak(rs).toFixed(1)} (${range(
          rs.map((r) => r.peakBytes / MiB),
          1,
        )}) |`;
      const wall = (rs: CgroupRun[]) => median(rs.filter(ok).map((r) => r.seconds));
      const peak = (rs: CgroupRun[]) => median(rs.filter(ok).map((r) => r.peakBytes / MiB));
      const allOk = limited.every(ok);
      const timeRatio = wall(limited) / wall(free);
      const flat = peak(limited) / peak(small);
      lines.push(`## Memory in a container (cgroup v${cgroups.version}, ${runs} runs each)

The measured process alone in its own memory cgroup under \`${cgroups.parent}\`; peak is the group's high-water mark (\`${cgroups.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak'}\`: anonymous memory, kernel memory and page cache the process caused; the \`node\` binary's pages were already cached by earlier runs, as in a container that has run before). Default settings (5 MiB parts × 2), the bin as installed (its shebang sets \`--max-semi-space-size=8\` and glibc's \`MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=1048576\`), S3 is s3rver on loopback, the source nginx.

| run | completed | wall s, median (min–max) | peak cgroup MiB, median (min–max) |
| --- | --- | --- | --- |
| ${en(o.small)} albums → S3, 128 MiB limit | ${small.filter(ok).length}/${runs} | ${wall(small).toFixed(2)} (${range(
        small.map((r) => r.seconds),
        2,
      )}) | ${peak(small).toFixed(1)} (${range(
        small.map((r) => r.peakBytes / MiB),
        1,
      )}) |
| ${en(o.large)} albums → S3, no limit | ${free.filter(ok).length}/${runs} | ${wall(free).toFixed(2)} (${range(
        free.map((r) => r.seconds),
        2,
      )}) | ${peak(free).toFixed(1)} (${range(
        free.map((r) => r.peakBytes / MiB),
        1,
      )}) |
| ${en(o.large)} albums → S3, 128 MiB limit | ${limited.filter(ok).length}/${runs} | ${wall(limited).toFixed(2)} (${range(
        limited.map((r) => r.seconds),
        2,
      )}) | ${peak(limited).toFixed(1)} (${range(
        limited.map((r) => r.peakBytes / MiB),
        1,
      )}) |
${row(`${en(o.small)} albums → /dev/null, 128 MiB limit`, smallNull)}
${row(`${en(o.medium)} albums → S3, 128 MiB limit${o.quick ? '' : ' (every part buffer in use)'}`, medium)}
${row(`${en(o.large)} albums → /dev/null, 128 MiB limit (no upload buffers)`, devNull)}
${row(`${en(o.large)} albums → S3, 128 MiB limit, without the shebang (\`node dist/bin/spotify-batch.js\`: V8 sizes its young generation from the limit; glibc's malloc defaults)`, noFlag)}
${row("at rest: `node` loading what a run to S3 loads of its libraries (undici's Agent and request(), the AWS SDK client, yargs), then exiting", rest)}

| target | measured | |
| --- | --- | --- |
| ${en(o.large)} albums → S3 completes inside 128 MiB, ≤ 1.25 × the time without a limit, bytes identical | ${allOk ? 'completed every run' : `**${limited.filter((r) => !ok(r)).length} of ${runs} runs killed**`}; ${timeRatio.toFixed(2)}× (${wall(limited).toFixed(2)} s / ${wall(free).toFixed(2)} s); SHA-256 ${limitedDigest === '' ? 'not compared (no limited run completed)' : freeDigest === limitedDigest ? `identical (${freeDigest.slice(0, 16)}…)` : '**differs**'} | ${check(allOk && timeRatio <= 1.25 && freeDigest === limitedDigest)} |
| peak cgroup memory at ${en(o.large)} ≤ 1.1 × at ${en(o.small)}, inside 128 MiB | ${flat.toFixed(2)}× (${peak(limited).toFixed(1)} / ${peak(small).toFixed(1)} MiB) | ${check(allOk && flat <= 1.1)} |
| reference: ${en(o.large)} vs ${en(o.medium)} albums to S3${o.quick ? '' : ' (both with every part buffer in use)'} | ${(peak(limited) / peak(medium)).toFixed(2)}× (${peak(limited).toFixed(1)} / ${peak(medium).toFixed(1)} MiB) | |
| reference: ${en(o.large)} vs ${en(o.small)} albums to /dev/null (no part buffers) | ${(peak(devNull) / peak(smallNull)).toFixed(2)}× (${peak(devNull).toFixed(1)} / ${peak(smallNull).toFixed(1)} MiB) | |
`);

      // Is flatness reachable at all: Node and undici alone in the same cgroup, both sizes.
      lines.push(`Is flat memory reachable: the fetch-and-discard floor (Node and undici's two modules, nothing else; the same flags and malloc settings) in the same 128 MiB cgroup (\`bench/floor-cgroup.ts\`):

${await floorCgroup(runs, o.small, o.large)}
`);

      // The smallest limit each format completes in (one run per step), and its time there.
      const ladder: string[] = [];
      for (const format of FORMATS) {
        const out = `s3://bench/${format.key}`;
        const reference = await run(largeSource, undefined, out, format.extra);
        const tried = new Map<number, CgroupRun>();
        const at = async (limit: number) => {
          let r = tried.get(limit);
          if (r === undefined) {
            r = await run(largeSource, limit, out, format.extra);
            tried.set(limit, r);
          }
          return r;
        };
        let index = LADDER.indexOf(format.start);
        if (ok(await at(LADDER[index] as number))) {
          while (index > 0 && ok(await at(LADDER[index - 1] as number))) index--;
        } else {
          while (index < LADDER.length - 1 && !ok(await at(LADDER[++index] as number))) {}
        }
        const min = LADDER[index] as number;
        const atMin = tried.get(min) as CgroupRun;
        const below = index > 0 ? tried.get(LADDER[index - 1] as number) : undefined;
        ladder.push(
          `| ${format.name} | ${ok(atMin) ? `${min} MiB` : `> ${min} MiB`} | ${below === undefined ? '' : `${LADDER[index - 1]} MiB: ${below.oomKilled ? 'OOM-killed' : `exit ${below.code}`}`} | ${(reference.peakBytes / MiB).toFixed(0)} | ${reference.seconds.toFixed(1)} | ${ok(atMin) ? `${atMin.seconds.toFixed(1)} (${(atMin.seconds / reference.seconds).toFixed(2)}×)` : ''} | ${[
            ...tried.keys(),
          ]
            .sort((a, b) => a - b)
            .map((l) => `${l}${ok(tried.get(l) as CgroupRun) ? '✓' : '✗'}`)
            .join(' ')} |`,
        );
      }
      lines.push(`### The smallest memory limit per format (${en(o.large)} albums → S3, default settings, one run per limit)

| format | smallest limit that completes | the step below | peak without a limit, MiB | wall s without a limit | wall s at the smallest limit | limits tried |
| --- | --- | --- | --- | --- | --- | --- |
${ladder.join('\n')}
`);

      // Parquet row groups: old default (20,000 rows) vs the byte-sized default.
      lines.push(await parquetGroups(o, tmp, largeSource, cgroups));
    } finally {
      await largeSource.stop();
    }
  } finally {
    await s3.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  return lines.join('\n');
}

async function parquetGroups(
  o: ContainerSizes,
  tmp: string,
  source: StaticSource,
  cgroups: Cgroups,
): Promise<string> {
  const variants = [
    { name: 'old default: 20,000 rows per group', extra: ['--parquet-row-group', '20000'] },
    { name: 'new default: 8 MiB of row data per group', extra: [] },
  ];
  const rows: string[] = [];
  for (const [i, v] of variants.entries()) {
    const file = join(tmp, `groups-${i}.parquet`);
    const r = await inCgroup(cgroups, undefined, bin, pullArgs(file, v.extra), source.env);
    if (r.code !== 0) throw new Error(`parquet ${v.name}: exit ${r.code}\n${r.stderr}`);
    const size = (await stat(file)).size;
    const scan = JSON.parse(
      execFileSync(process.execPath, [join(root, 'bench/duckdb.ts'), file, o.quick ? '3' : '7'], {
        encoding: 'utf8',
      }),
    ) as {
      rowGroups: number;
      rowsPerGroup: { min: number; max: number };
      totalRows: number;
      scanSeconds: number;
      scanMin: number;
      scanMax: number;
    };
    await rm(file);
    rows.push(
      `| ${v.name} | \`spotify-batch new-releases --out albums.parquet${v.extra.length ? ` ${v.extra.join(' ')}` : ''}\` | ${scan.rowGroups} | ${en(scan.rowsPerGroup.max)}${scan.rowsPerGroup.min !== scan.rowsPerGroup.max ? ` (last ${en(scan.rowsPerGroup.min)})` : ''} | ${(size / MiB).toFixed(1)} | ${(r.peakBytes / MiB).toFixed(0)} | ${r.seconds.toFixed(1)} | ${(scan.scanSeconds * 1000).toFixed(0)} (${(scan.scanMin * 1000).toFixed(0)}–${(scan.scanMax * 1000).toFixed(0)}) |`,
    );
  }
  return `### Parquet row groups (${en(o.large)} albums to a file, no memory limit; DuckDB scan = \`bench/duckdb.ts\`, median of ${o.quick ? 3 : 7} after a warm-up)

| row groups | command | groups | rows per group | file MiB | peak cgroup MiB | wall s | DuckDB scan ms, median (min–max) |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  const found = cgroupAndNginx();
  console.log(
    found.reason !== undefined
      ? `not measured here: ${found.reason}`
      : await containersSection(
          quick
            ? { quick, runs: 1, small: 2_000, medium: 10_000, large: 20_000 }
            : { quick, runs: 3, small: 10_000, medium: 100_000, large: 1_000_000 },
          found.nginx,
          found.cgroups,
        ),
  );
}
