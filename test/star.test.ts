import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator } from './helpers/servers.ts';

const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
const goldenRows = golden.toString().split(/\n(?=[0-9A-Za-z]{22},)/).length - 1;
const emulator = startedEmulator({ seed: 42, albums: 230 });
const s3 = localS3('star');

test('--model star: three consistent tables from one pass, read back by DuckDB', async () => {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const requests = emulator.stats.apiRequests;
  const result = await runCli(
    ['new-releases', '--model', 'star', '--market', 'SE,DE', '--out', `${dir}/`],
    {
      env: emulatorEnv(emulator),
    },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.equal(emulator.stats.apiRequests - requests, 10, 'one pass: 5 pages per market');
  assert.deepEqual((await readdir(dir)).sort(), [
    '_manifest.json',
    'bridge_album_artist.csv',
    'dim_album.csv',
    'dim_artist.csv',
  ]);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const t = (name: string) =>
    `read_csv('${join(dir, `${name}.csv`)}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA')`;
  const one = async (sql: string) =>
    (await c.runAndReadAll(sql)).getRowObjects()[0] as Record<string, unknown>;
  // Every bridge row's keys exist in both dimensions; the dimensions are unique by id.
  assert.deepEqual(
    await one(`SELECT count(*)::INTEGER AS n FROM ${t('bridge_album_artist')} b
      WHERE b.album_id NOT IN (SELECT album_id FROM ${t('dim_album')}) OR b.artist_id NOT IN (SELECT artist_id FROM ${t('dim_artist')})`),
    { n: 0 },
  );
  assert.deepEqual(
    await one(
      `SELECT (count(*) - count(DISTINCT artist_id))::INTEGER AS d FROM ${t('dim_artist')}`,
    ),
    { d: 0 },
  );
  assert.deepEqual(
    await one(`SELECT (count(*) - count(DISTINCT album_id))::INTEGER AS d FROM ${t('dim_album')}`),
    { d: 0 },
  );
  const manifest = JSON.parse(await readFile(join(dir, '_manifest.json'), 'utf8'));
  const rows = Object.fromEntries(
    manifest.objects.map((o: { location: string; rows: number }) => [
      o.location.split('/').at(-1),
      o.rows,
    ]),
  );
  const counted = await one(`SELECT (SELECT count(*) FROM ${t('dim_album')})::INTEGER AS albums,
    (SELECT count(*) FROM ${t('dim_artist')})::INTEGER AS artists, (SELECT count(*) FROM ${t('bridge_album_artist')})::INTEGER AS bridge`);
  assert.deepEqual(counted, {
    albums: rows['dim_album.csv'],
    artists: rows['dim_artist.csv'],
    bridge: rows['bridge_album_artist.csv'],
  });
  assert.ok(
    (counted.albums as number) > 230,
    'two overlapping markets give more distinct albums than one',
  );
  c.closeSync();
});

test('one market as a star: the bridge has exactly the flat output’s rows', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await runCli(['new-releases', '--model', 'star', '--out', `${dir}/`], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0, result.stderr);
  const bridge = (await readFile(join(dir, 'bridge_album_artist.csv'), 'utf8'))
    .trimEnd()
    .split('\n');
  assert.equal(bridge[0], 'album_id,artist_id,artist_position');
  assert.equal(bridge.length - 1, goldenRows);
  const albums =
    (await readFile(join(dir, 'dim_album.csv'), 'utf8')).split(/\n(?=[0-9A-Za-z]{22},)/).length - 1;
  assert.equal(albums, 230, 'albums without artists are in dim_album too');
});

test('a failure mid-run leaves no table behind (S3: no objects, no open uploads)', async () => {
  const failing = await startEmulator({
    seed: 42,
    albums: 230,
    faults: [{ kind: '500', offset: 150 }],
  });
  try {
    const result = await runCli(
      ['new-releases', '--model', 'star', '--out', 's3://star/model/', '--max-retries', '0'],
      {
        env: { ...emulatorEnv(failing), ...s3.env },
      },
    );
    assert.equal(result.status, 4, result.stderr);
    assert.deepEqual(await s3.listKeys('star'), []);
    assert.deepEqual(await s3.openUploads('star'), []);
  } finally {
    await failing.stop();
  }
});

test('one table that cannot be written stops the others before anything is written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  await mkdir(join(dir, 'dim_artist.csv'));
  const result = await runCli(['new-releases', '--model', 'star', '--out', `${dir}/`], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /dim_artist\.csv is a directory/);
  assert.deepEqual(await readdir(dir), ['dim_artist.csv']);
});

test('--model star needs a folder', async () => {
  const result = await runCli(['new-releases', '--model', 'star', '--out', 'x.csv'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--out must be a folder or prefix ending in \//);
});

test('--model star --format parquet: three Parquet tables, consistent keys', async () => {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await runCli(
    ['new-releases', '--model', 'star', '--format', 'parquet', '--out', `${dir}/`],
    { env: emulatorEnv(emulator) },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual((await readdir(dir)).sort(), [
    '_manifest.json',
    'bridge_album_artist.parquet',
    'dim_album.parquet',
    'dim_artist.parquet',
  ]);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const p = (name: string) => `'${join(dir, `${name}.parquet`)}'`;
  const orphans =
    await c.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM ${p('bridge_album_artist')} b
    LEFT JOIN ${p('dim_album')} a USING (album_id) LEFT JOIN ${p('dim_artist')} r USING (artist_id)
    WHERE a.album_id IS NULL OR r.artist_id IS NULL`);
  assert.deepEqual(orphans.getRowObjects(), [{ n: 0 }]);
  const types = await c.runAndReadAll(
    `SELECT typeof(total_tracks) AS t FROM ${p('dim_album')} LIMIT 1`,
  );
  assert.deepEqual(types.getRowObjects(), [{ t: 'INTEGER' }]);
  c.closeSync();
});
