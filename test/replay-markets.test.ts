/**
 * A replay behaves like the live run it replays: its markets come from the raw lines (each
 * line records its market and the run's market list), so with no --market it writes the same
 * bytes as the live run — the `market` column and cross-market dedupe in one output, and one
 * output per market for `{market}`.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';

const T = { timeout: 120_000 };

// One malformed album: a rejected record must not shadow a later market's copy.
const emulator = startedEmulator({ seed: 42, albums: 230, malformed: [3] });
const s3 = localS3('landing');
const dir = tempDir('spotify-batch-replay-markets-');

/** No Spotify at all for a replay. */
const offline = { SPOTIFY_API_URL: 'http://127.0.0.1:9' };

test('replay with no --market writes the live run’s bytes into one output', T, async () => {
  const raw = join(dir, 'one.ndjson.gz');
  const live = await runCli(
    [
      'new-releases',
      '--market',
      'SE,DE,US',
      '--raw',
      raw,
      '--out',
      join(dir, 'live-one.csv'),
      '--rejects',
      join(dir, 'live-rejects.ndjson'),
    ],
    { env: emulatorEnv(emulator) },
  );
  assert.equal(live.status, 0, live.stderr);
  const replay = await runCli(
    [
      'replay',
      '--from',
      raw,
      '--out',
      join(dir, 'replay-one.csv'),
      '--rejects',
      join(dir, 'replay-rejects.ndjson'),
    ],
    { env: offline },
  );
  assert.equal(replay.status, 0, replay.stderr);
  const expected = await readFile(join(dir, 'live-one.csv'), 'utf8');
  // CSV records (quoted newlines kept inside their record).
  const lines = expected.split(/\n(?=[0-9A-Za-z]{22},|$)/).filter(Boolean);
  assert.match(lines[0] ?? '', /,market$/, 'several markets in one output: a market column');
  // Deduped across markets: each album's rows come from the first market that listed it.
  const marketOf = new Map<string, Set<string>>();
  for (const line of lines.slice(1)) {
    const markets = marketOf.get(line.slice(0, 22)) ?? new Set();
    marketOf.set(line.slice(0, 22), markets.add(line.slice(-2)));
  }
  assert.ok(
    [...marketOf.values()].every((m) => m.size === 1),
    'one market per album',
  );
  assert.equal(await readFile(join(dir, 'replay-one.csv'), 'utf8'), expected);
  assert.deepEqual(
    await readFile(join(dir, 'replay-rejects.ndjson')),
    await readFile(join(dir, 'live-rejects.ndjson')),
  );
});

test('replay with no --market writes the live run’s {market} outputs', T, async () => {
  const raw = join(dir, 'per.ndjson.gz');
  const live = await runCli(
    [
      'new-releases',
      '--market',
      'SE,DE,US',
      '--raw',
      raw,
      '--out',
      join(dir, 'live', '{market}.csv'),
      '--rejects',
      join(dir, 'live-per-rejects.ndjson'),
    ],
    { env: emulatorEnv(emulator) },
  );
  assert.equal(live.status, 0, live.stderr);
  const replay = await runCli(
    [
      'replay',
      '--from',
      raw,
      '--out',
      join(dir, 'replay', '{market}.csv'),
      '--rejects',
      join(dir, 'replay-per-rejects.ndjson'),
    ],
    { env: offline },
  );
  assert.equal(replay.status, 0, replay.stderr);
  const csv = (names: string[]) => names.filter((n) => n.endsWith('.csv')).sort();
  const files = csv(await readdir(join(dir, 'live')));
  assert.deepEqual(files, ['DE.csv', 'SE.csv', 'US.csv']);
  assert.deepEqual(csv(await readdir(join(dir, 'replay'))), files);
  for (const file of files) {
    assert.deepEqual(
      await readFile(join(dir, 'replay', file)),
      await readFile(join(dir, 'live', file)),
      file,
    );
  }
  // The markets' pulls run side by side into one rejects file: its lines are the same, in the
  // order they arrived (docs/options.md, --rejects), which differs from run to run.
  const lines = async (file: string) =>
    (await readFile(join(dir, file), 'utf8')).split('\n').filter(Boolean).sort();
  const rejected = await lines('live-per-rejects.ndjson');
  assert.equal(rejected.length, 3, 'the malformed album, once per market');
  assert.deepEqual(await lines('replay-per-rejects.ndjson'), rejected);

  // From S3 too: the markets are read from the object's first line, its body then closed, and
  // every market's pass reads it again.
  await s3.client.send(
    new PutObjectCommand({ Bucket: 'landing', Key: 'per.ndjson.gz', Body: await readFile(raw) }),
  );
  const fromS3 = await runCli(
    [
      'replay',
      '--from',
      's3://landing/per.ndjson.gz',
      '--out',
      join(dir, 's3', '{market}.csv'),
      '--rejects',
      join(dir, 's3-rejects.ndjson'),
    ],
    { env: { ...offline, ...s3.env } },
  );
  assert.equal(fromS3.status, 0, fromS3.stderr);
  assert.deepEqual(csv(await readdir(join(dir, 's3'))), files);
  for (const file of files) {
    assert.deepEqual(
      await readFile(join(dir, 's3', file)),
      await readFile(join(dir, 'live', file)),
      file,
    );
  }

  // A raw landing whose lines do not list their run's markets (written before they did):
  // {market} outputs need --market, and the message says why.
  const old = gunzipSync(await readFile(raw))
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const { markets: _, ...rest } = JSON.parse(line);
      return `${JSON.stringify(rest)}\n`;
    });
  const oldRaw = join(dir, 'old.ndjson');
  await writeFile(oldRaw, old.join(''));
  const refused = await runCli(
    ['replay', '--from', oldRaw, '--out', join(dir, 'old', '{market}.csv')],
    { env: offline },
  );
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /the --from input does not list its markets.*--market/);
});

test(
  'a raw landing of a run that skipped a failed market: replay says so, it does not publish it as empty',
  T,
  async () => {
    // DE fails at its first page (every retry): the live run publishes SE and US, exit 7.
    const failing = await startEmulator({
      seed: 42,
      albums: 230,
      faults: [{ kind: '500', market: 'DE', times: 1000 }],
    });
    try {
      const raw = join(dir, 'skipped.ndjson.gz');
      const live = await runCli(
        [
          'new-releases',
          '--market',
          'SE,DE,US',
          '--on-market-error',
          'skip',
          '--retry-delay',
          '1',
          '--raw',
          raw,
          '--out',
          join(dir, 'skip-live', '{market}.csv'),
        ],
        { env: emulatorEnv(failing) },
      );
      assert.equal(live.status, 7, live.stderr);
      // Without skip, the replay fails naming the market, and publishes nothing.
      const strict = await runCli(
        ['replay', '--from', raw, '--out', join(dir, 'skip-strict', '{market}.csv')],
        { env: offline },
      );
      assert.equal(strict.status, 6, strict.stderr);
      assert.match(strict.stderr, /market DE: no page of it in /);
      await assert.rejects(readFile(join(dir, 'skip-strict', 'SE.csv')));
      // With skip, as the live run did: SE and US published byte-identical, DE failed.
      const skipped = await runCli(
        [
          'replay',
          '--from',
          raw,
          '--on-market-error',
          'skip',
          '--out',
          join(dir, 'skip-replay', '{market}.csv'),
        ],
        { env: offline },
      );
      assert.equal(skipped.status, 7, skipped.stderr);
      for (const market of ['SE', 'US']) {
        assert.equal(
          await readFile(join(dir, 'skip-replay', `${market}.csv`), 'utf8'),
          await readFile(join(dir, 'skip-live', `${market}.csv`), 'utf8'),
        );
      }
      await assert.rejects(readFile(join(dir, 'skip-replay', 'DE.csv')));
      const manifest = JSON.parse(
        await readFile(join(dir, 'skip-replay', '_manifest.json'), 'utf8'),
      ) as { markets: { done: string[]; failed: { market: string }[] } };
      assert.deepEqual(manifest.markets.done, ['SE', 'US']);
      assert.deepEqual(
        manifest.markets.failed.map((f) => f.market),
        ['DE'],
      );
    } finally {
      await failing.stop();
    }
  },
);
