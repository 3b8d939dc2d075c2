/**
 * Raw landing and replay (issue 16): raw bytes stored per album (gz), replay throughput against
 * the live pipeline (in-process emulator, pages rendered ahead), peak memory replaying a 10 MB and
 * a 1 GB JSON array (each replay its own process, peak RSS from bench/rss.mjs), and stream-json's
 * cost against JSON.parse on the same NDJSON lines. Prints one JSON line.
 *
 *   npm run build && npx node bench/replay.ts [albums] [bigMiB]
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MiB } from '../src/core/options.ts';
import { album } from '../src/emulator/catalogue.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { run } from '../src/pipeline.ts';
import { bin as cli, measure, median } from './harness.ts';

const albums = Number(process.argv[2] ?? 100_000);
const bigMiB = Number(process.argv[3] ?? 1024);
const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-replay-bench-'));

const emulator = await startEmulator({ seed: 3, albums, prerender: true });
const env = {
  SPOTIFY_API_URL: emulator.url,
  SPOTIFY_ACCOUNTS_URL: emulator.url,
  SPOTIFY_CLIENT_ID: emulator.clientId,
  SPOTIFY_CLIENT_SECRET: emulator.clientSecret,
};
const raw = join(dir, 'pages.ndjson.gz');
const live: number[] = [];
const replay: number[] = [];
for (let i = 0; i < 3; i++) {
  live.push((await run({ out: '/dev/null', raw, concurrency: 8 }, { env })).seconds);
  replay.push((await run({ out: '/dev/null', from: [raw] }, { env: {} })).seconds);
}
await emulator.stop();
const rawBytes = (await stat(raw)).size;

/** A JSON array of about `mib` MiB of albums, pretty-printed over many lines. */
async function jsonArray(path: string, mib: number): Promise<number> {
  const one = JSON.stringify(album(7, 0, 'https://api.spotify.com'), null, 1).length + 2;
  const n = Math.ceil((mib * MiB) / one);
  async function* body() {
    yield '[\n';
    for (let i = 0; i < n; i++) {
      yield `${JSON.stringify(album(7, i, 'https://api.spotify.com'), null, 1)}${i + 1 < n ? ',\n' : '\n'}`;
    }
    yield ']\n';
  }
  await pipeline(Readable.from(body()), createWriteStream(path));
  return n;
}

/** One replay of `path` to /dev/null as its own process (node `flags` bin): wall time and peak RSS. */
async function peakReplay(
  path: string,
  flags: string[] = [],
): Promise<{ seconds: number; rssMiB: number }> {
  const { seconds, rssMiB } = await measure(process.execPath, [
    ...flags,
    cli,
    ...['replay', '--from', path, '--out', '/dev/null', '--quiet'],
  ]);
  return { seconds, rssMiB: Math.round(rssMiB) };
}

const small = join(dir, 'small.json');
const big = join(dir, 'big.json');
const smallAlbums = await jsonArray(small, 10);
const smallRun = await peakReplay(small);
const bigAlbums = await jsonArray(big, bigMiB);
const bigRun = await peakReplay(big);
// The same with V8's young generation capped (what bin/spotify-batch.js's shebang and the
// container image set): the peak then stops growing with how long the run is busy.
const capped = ['--max-semi-space-size=8'];
const smallCapped = await peakReplay(small, capped);
const bigCapped = await peakReplay(big, capped);

// stream-json against JSON.parse on the same NDJSON lines (a replay's line-by-line inputs).
const lines = Array.from({ length: 50_000 }, (_, i) => JSON.stringify(album(9, i, 'https://x')));
const text = `${lines.join('\n')}\n`;
let t = performance.now();
for (const line of lines) JSON.parse(line);
const jsonParseSeconds = (performance.now() - t) / 1000;
const [{ parser }, { streamValues }] = await Promise.all([
  import('stream-json'),
  import('stream-json/streamers/stream-values.js'),
]);
t = performance.now();
let counted = 0;
const values = Readable.from([text])
  .pipe(parser.asStream({ jsonStreaming: true }))
  .pipe(streamValues.asStream());
for await (const _ of values) counted++;
const streamJsonSeconds = (performance.now() - t) / 1000;
if (counted !== lines.length) throw new Error(`stream-json read ${counted} of ${lines.length}`);

console.log(
  JSON.stringify({
    albums,
    rawBytes,
    rawBytesPerAlbum: Math.round((rawBytes / albums) * 10) / 10,
    liveSeconds: median(live),
    replaySeconds: median(replay),
    replayVsLive: Math.round((median(replay) / median(live)) * 100) / 100,
    small: { mib: 10, albums: smallAlbums, ...smallRun },
    big: { mib: bigMiB, albums: bigAlbums, ...bigRun },
    bigVsSmallPeak: Math.round((bigRun.rssMiB / smallRun.rssMiB) * 100) / 100,
    capped: {
      smallRssMiB: smallCapped.rssMiB,
      bigRssMiB: bigCapped.rssMiB,
      bigVsSmallPeak: Math.round((bigCapped.rssMiB / smallCapped.rssMiB) * 100) / 100,
    },
    ndjsonLines: lines.length,
    jsonParseSeconds: Math.round(jsonParseSeconds * 1000) / 1000,
    streamJsonSeconds: Math.round(streamJsonSeconds * 1000) / 1000,
    streamJsonVsJsonParse: Math.round((streamJsonSeconds / jsonParseSeconds) * 10) / 10,
  }),
);
await rm(dir, { recursive: true, force: true });
