/**
 * Issue 13's first target alone, without the whole suite: a million albums (nginx source) to S3
 * with the default settings, with and without a 128 MiB cgroup limit, alternated; peak cgroup
 * memory, wall time, and whether the objects are byte-identical. `npm run bench` measures the
 * same in bench/issue13.ts; this is for checking a change to the S3 path in a few minutes.
 *
 *   npx node bench/s3-128.ts [runs=3] [albums=1000000]
 *   BENCH_FLAGS='--s3-queue-size 1;--s3-queue-size 2': extra CLI flags, one set per variant
 *   (`;` between sets); every run takes each variant in turn, without and with the limit.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startS3 } from '../scripts/local-s3.ts';
import { detectCgroups } from './cgroup.ts';
import { ensureNginx, startStaticSource } from './static.ts';

const runs = Number(process.argv[2] ?? 3);
const albums = Number(process.argv[3] ?? 1_000_000);
const MiB = 1024 * 1024;
const bin = fileURLToPath(new URL('../dist/bin/spotify-batch.js', import.meta.url));
const { cgroups, reason } = detectCgroups();
const { nginx, reason: noNginx } = ensureNginx();
if (cgroups === undefined || nginx === undefined) {
  console.log(`not measured here: ${reason ?? noNginx}`);
  process.exit(0);
}
const tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-s3-128-'));
const source = await startStaticSource(nginx, join(tmp, 'static'), albums);
const s3 = await startS3();
await s3.createBucket('bench');
const variants = (process.env.BENCH_FLAGS ?? '').split(';').map((v) => v.trim());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const rows: Record<string, { seconds: number[]; peak: number[]; ok: number; digest: string }> = {};
try {
  for (let i = 0; i < runs; i++) {
    for (const [variant, flags] of variants.entries())
      for (const limit of [undefined, 128]) {
        const name = `${flags === '' ? '' : `${flags}, `}${limit === undefined ? 'no limit' : `${limit} MiB limit`}`;
        const key = `${limit ?? 'free'}-${variant}.csv`;
        const r = await cgroups.run(
          limit === undefined ? undefined : limit * MiB,
          bin,
          [
            'new-releases',
            '--out',
            `s3://bench/${key}`,
            '--quiet',
            '--concurrency',
            '8',
            ...flags.split(/\s+/).filter(Boolean),
          ],
          {
            ...process.env,
            ...source.env,
            ...s3.env,
            PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
          },
        );
        rows[name] ??= { seconds: [], peak: [], ok: 0, digest: '' };
        const row = rows[name];
        if (r.code === 0 && !r.oomKilled) {
          row.ok++;
          row.seconds.push(r.seconds);
          row.peak.push(r.peakBytes / MiB);
          const object = await s3.getObject('bench', key);
          row.digest = createHash('sha256')
            .update(object?.body ?? '')
            .digest('hex')
            .slice(0, 16);
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
