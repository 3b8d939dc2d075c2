/**
 * Zero results are a normal answer (a market with no releases, a search that matches nothing):
 * the run ends with exit 0 and a valid, empty output — never a stalled stream (exit 13).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';

const HEADER =
  'album_id,album_name,release_date,album_spotify_url,artist_id,artist_name,artist_spotify_url\n';
const T = { timeout: 60_000 };

const none = startedEmulator({ albums: 0 });
const some = startedEmulator({
  seed: 42,
  albums: 230,
  emptyMarkets: ['DE'],
  emptyQueries: ['nothing matches this'],
});
const s3 = localS3('empty');
const dir = tempDir('spotify-batch-empty-');

test('new-releases with no albums: the header alone on stdout, exit 0', T, async () => {
  const result = await runCli(['new-releases', '--out', '-'], { env: emulatorEnv(none) });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.toString(), HEADER);
  assert.match(result.stderr, /1 page, 0 albums, 0 rows/);
});

test('no albums to a file and to S3: the header alone, published', T, async () => {
  const file = join(dir, 'none.csv');
  const toFile = await runCli(['new-releases', '--out', file], { env: emulatorEnv(none) });
  assert.equal(toFile.status, 0, toFile.stderr);
  assert.equal(await readFile(file, 'utf8'), HEADER);
  const toS3 = await runCli(['new-releases', '--out', 's3://empty/none.csv'], {
    env: { ...emulatorEnv(none), ...s3.env },
  });
  assert.equal(toS3.status, 0, toS3.stderr);
  assert.equal((await s3.getObject('empty', 'none.csv'))?.body.toString(), HEADER);
});

test(
  'no albums as NDJSON (gzip too) and Parquet: an empty file and a valid file with no rows',
  T,
  async () => {
    const ndjson = join(dir, 'none.ndjson');
    const gz = join(dir, 'none.ndjson.gz');
    const parquet = join(dir, 'none.parquet');
    for (const out of [ndjson, gz, parquet]) {
      const result = await runCli(['new-releases', '--out', out], { env: emulatorEnv(none) });
      assert.equal(result.status, 0, result.stderr);
    }
    assert.equal((await readFile(ndjson)).length, 0);
    const { gunzipSync } = await import('node:zlib');
    assert.equal(gunzipSync(await readFile(gz)).length, 0);
    const { parquetMetadata } = await import('hyparquet');
    const bytes = await readFile(parquet);
    const meta = parquetMetadata(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
    );
    assert.equal(Number(meta.num_rows), 0);
    assert.deepEqual(
      meta.schema.slice(1).map((s) => s.name),
      HEADER.trim().split(','),
    );
  },
);

test('no albums as a star: three tables, each its header alone', T, async () => {
  const out = join(dir, 'star/');
  const result = await runCli(['new-releases', '--model', 'star', '--out', out], {
    env: emulatorEnv(none),
  });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual((await readdir(out)).sort(), [
    '_manifest.json',
    'bridge_album_artist.csv',
    'dim_album.csv',
    'dim_artist.csv',
  ]);
  assert.equal(
    await readFile(join(out, 'dim_artist.csv'), 'utf8'),
    'artist_id,artist_name,artist_spotify_url,artist_uri\n',
  );
  assert.equal(
    await readFile(join(out, 'bridge_album_artist.csv'), 'utf8'),
    'album_id,artist_id,artist_position\n',
  );
});

test('a search that matches nothing: the header alone, exit 0', T, async () => {
  const result = await runCli(
    ['new-releases', '--via', 'search', '--query', 'nothing matches this'],
    { env: emulatorEnv(some) },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.toString(), HEADER);
});

test(
  'one market of several with no releases: its output is the header, the others are full',
  T,
  async () => {
    const out = join(dir, 'markets', '{market}.csv');
    const result = await runCli(['new-releases', '--market', 'SE,DE,US', '--out', out], {
      env: emulatorEnv(some),
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(await readFile(join(dir, 'markets', 'DE.csv'), 'utf8'), HEADER);
    for (const market of ['SE', 'US']) {
      const rows = (await readFile(join(dir, 'markets', `${market}.csv`), 'utf8')).split('\n');
      assert.ok(rows.length > 300, `${market}: ${rows.length} lines`);
    }
    const manifest = JSON.parse(await readFile(join(dir, 'markets', '_manifest.json'), 'utf8'));
    assert.deepEqual(
      manifest.objects.map((o: { market: string; rows: number }) => [o.market, o.rows > 0]),
      [
        ['SE', true],
        ['DE', false],
        ['US', true],
      ],
    );
  },
);

test('an empty market between full ones in one output: the others’ rows, exit 0', T, async () => {
  // Markets in one stream: the empty one must not stall the stream between the other two.
  const result = await runCli(['new-releases', '--market', 'DE,SE', '-c', '1'], {
    env: emulatorEnv(some),
  });
  assert.equal(result.status, 0, result.stderr);
  const se = await runCli(
    [
      'new-releases',
      '--market',
      'SE',
      '--columns',
      'album_id,album_name,release_date,album_spotify_url,artist_id,artist_name,artist_spotify_url,market',
    ],
    {
      env: emulatorEnv(some),
    },
  );
  assert.equal(result.stdout.toString(), se.stdout.toString());
});
