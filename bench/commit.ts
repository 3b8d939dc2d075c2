/**
 * The cost of the two-phase commit's barrier: seconds from the last byte of the last output to
 * every output published (the held S3 requests released, the renames, the manifest), for one
 * output and for 50 per-market outputs, to the local S3 server and to files. In-process against
 * the emulator (each market's list is about 100 albums, two pages, as on Spotify). Prints one
 * JSON line per case with the medians of RUNS runs.
 *
 *   npx node bench/commit.ts [runs]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPOTIFY_MARKETS } from '../src/core/markets.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { run } from '../src/pipeline.ts';
import { median, startBucket } from './harness.ts';

const RUNS = Number(process.argv[2] ?? 5);

const emulator = await startEmulator({ seed: 7, albums: 100, cachePages: true });
const s3 = await startBucket();
const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-commit-bench-'));
const env = {
  ...s3.env,
  SPOTIFY_API_URL: emulator.url,
  SPOTIFY_ACCOUNTS_URL: emulator.url,
  SPOTIFY_CLIENT_ID: emulator.clientId,
  SPOTIFY_CLIENT_SECRET: emulator.clientSecret,
};
const fifty = SPOTIFY_MARKETS.slice(0, 50) as string[];

const cases = [
  { name: '1 output → S3', out: 's3://bench/one/albums.csv', markets: ['SE'] },
  { name: '50 per-market outputs → S3', out: 's3://bench/many/{market}.csv', markets: fifty },
  { name: '1 output → file', out: join(dir, 'albums.csv'), markets: ['SE'] },
  { name: '50 per-market outputs → files', out: join(dir, 'many', '{market}.csv'), markets: fifty },
];

try {
  for (const c of cases) {
    const commit: number[] = [];
    const total: number[] = [];
    let outputs = 0;
    for (let i = 0; i < RUNS + 1; i++) {
      const report = await run({ out: c.out, markets: c.markets, manifest: true }, { env });
      if (i === 0) continue; // warm-up: connections, module loading
      commit.push(report.commitSeconds);
      total.push(report.seconds);
      outputs = report.outputs.length;
    }
    console.log(
      JSON.stringify({
        case: c.name,
        outputs,
        runs: RUNS,
        commitSeconds: median(commit),
        commitMin: Math.min(...commit),
        commitMax: Math.max(...commit),
        runSeconds: median(total),
      }),
    );
  }
} finally {
  await Promise.all([emulator.stop(), s3.stop(), rm(dir, { recursive: true, force: true })]);
}
