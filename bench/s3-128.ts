/**
 * Issue 13's first target alone, without the whole suite: a million albums (nginx source) to S3
 * with the default settings, with and without a 128 MiB cgroup limit, alternated; peak cgroup
 * memory, wall time, and whether the objects are byte-identical. `npm run bench` measures the
 * same in bench/containers.ts; this is for checking a change to the S3 path in a few minutes.
 *
 *   npx node bench/s3-128.ts [runs=3] [albums=1000000]
 *   BENCH_FLAGS='--s3-queue-size 1;--s3-queue-size 2': extra CLI flags, one set per variant
 *   (`;` between sets); every run takes each variant in turn, without and with the limit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  cgroupAndNginx,
  completed,
  inCgroup,
  MiB,
  median,
  objectDigest,
  pullArgs,
  startBucket,
  startStaticSource,
} from './harness.ts';

const runs = Number(process.argv[2] ?? 3);
const albums = Number(process.argv[3] ?? 1_000_000);
const { cgroups, nginx, reason } = cgroupAndNginx();
if (reason !== undefined) {
  console.log(`not measured here: ${reason}`);
  process.exit(0);
}
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-s3-128-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const s3 = await startBucket();
const variants = (process.env.BENCH_FLAGS ?? '').split(';').map((v) => v.trim());
const rows: Record<string, { seconds: number[]; peak: number[]; ok: number; digest: string }> = {};
try {
  for (let i = 0; i < runs; i++) {
    for (const [variant, flags] of variants.entries())
      for (const limit of [undefined, 128]) {
        const name = `${flags === '' ? '' : `${flags}, `}${limit === undefined ? 'no limit' : `${limit} MiB limit`}`;
        const key = `${limit ?? 'free'}-${variant}.csv`;
        const r = await inCgroup(
          cgroups,
          limit,
          bin,
          pullArgs(`s3://bench/${key}`, flags.split(/\s+/).filter(Boolean)),
          { ...source.env, ...s3.env },
        );
        rows[name] ??= { seconds: [], peak: [], ok: 0, digest: '' };
        const row = rows[name];
        if (completed(r)) {
          row.ok++;
          row.seconds.push(r.seconds);
          row.peak.push(r.peakBytes / MiB);
          row.digest = (await objectDigest(s3, 'bench', key)).slice(0, 16);
        }
      }
  }
} finally {
  await Promise.all([source.stop(), s3.stop()]);
  await rm(tmp, { recursive: true, force: true });
}
console.log(
  `| ${albums.toLocaleString('en')} albums → S3 | completed | wall s, median | peak cgroup MiB, median | SHA-256 |`,
);
console.log('| --- | --- | --- | --- | --- |');
for (const [name, r] of Object.entries(rows)) {
  console.log(
    `| ${name} | ${r.ok}/${runs} | ${median(r.seconds).toFixed(2)} | ${median(r.peak).toFixed(1)} | ${r.digest}… |`,
  );
}
