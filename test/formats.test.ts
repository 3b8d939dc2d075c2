import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { formatFromName } from '../src/core/options.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';

const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
const emulator = startedEmulator({ seed: 42, albums: 230 });
const s3 = localS3('formats');
const dir = tempDir('spotify-batch-');

test('the output name implies format and compression', () => {
  assert.deepEqual(formatFromName('a.csv'), { format: 'csv', gzip: false });
  assert.deepEqual(formatFromName('s3://b/k/a.CSV.gz'), { format: 'csv', gzip: true });
  assert.deepEqual(formatFromName('a.ndjson.gz'), { format: 'ndjson', gzip: true });
  assert.deepEqual(formatFromName('a.jsonl'), { format: 'ndjson', gzip: false });
  assert.deepEqual(formatFromName('-'), { format: undefined, gzip: false });
});

test('.csv.gz is the golden CSV, gzipped', async () => {
  const out = join(dir, 'albums.csv.gz');
  const result = await runCli(['new-releases', '--out', out], { env: emulatorEnv(emulator) });
  assert.equal(result.status, 0, result.stderr);
  assert.ok(gunzipSync(await readFile(out)).equals(golden));
});

test('NDJSON has the same rows as the CSV, read back by DuckDB', async () => {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const csv = join(dir, 'same.csv');
  const ndjson = join(dir, 'same.ndjson.gz');
  for (const out of [csv, ndjson]) {
    const result = await runCli(['new-releases', '--out', out], { env: emulatorEnv(emulator) });
    assert.equal(result.status, 0, result.stderr);
  }
  const lines = gunzipSync(await readFile(ndjson))
    .toString()
    .trimEnd()
    .split('\n');
  assert.deepEqual(Object.keys(JSON.parse(lines[0] as string)), [
    'album_id',
    'album_name',
    'release_date',
    'album_spotify_url',
    'artist_id',
    'artist_name',
    'artist_spotify_url',
  ]);
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  // DuckDB reads an empty CSV field as NULL unless told otherwise; the JSON has "" there.
  const difference = await connection.runAndReadAll(
    `SELECT count(*)::INTEGER AS n FROM (
       (SELECT * FROM read_csv('${csv}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA') EXCEPT ALL SELECT * FROM read_json('${ndjson}', format = 'newline_delimited', columns = {album_id: 'VARCHAR', album_name: 'VARCHAR', release_date: 'VARCHAR', album_spotify_url: 'VARCHAR', artist_id: 'VARCHAR', artist_name: 'VARCHAR', artist_spotify_url: 'VARCHAR'}))
       UNION ALL
       (SELECT * FROM read_json('${ndjson}', format = 'newline_delimited', columns = {album_id: 'VARCHAR', album_name: 'VARCHAR', release_date: 'VARCHAR', album_spotify_url: 'VARCHAR', artist_id: 'VARCHAR', artist_name: 'VARCHAR', artist_spotify_url: 'VARCHAR'}) EXCEPT ALL SELECT * FROM read_csv('${csv}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA')))`,
  );
  assert.deepEqual(difference.getRowObjects(), [{ n: 0 }]);
  const count = await connection.runAndReadAll(
    `SELECT count(*)::INTEGER AS n FROM read_csv('${csv}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA')`,
  );
  assert.equal(count.getRowObjects()[0]?.n, lines.length);
  connection.closeSync();
});

test('S3: gzip objects are application/gzip without Content-Encoding; NDJSON is application/x-ndjson', async () => {
  const env = { ...emulatorEnv(emulator), ...s3.env };
  assert.equal(
    (await runCli(['new-releases', '--out', 's3://formats/a.csv.gz'], { env })).status,
    0,
  );
  assert.equal(
    (await runCli(['new-releases', '--out', 's3://formats/a.ndjson'], { env })).status,
    0,
  );
  const gz = await s3.getObject('formats', 'a.csv.gz');
  assert.equal(gz?.contentType, 'application/gzip');
  assert.ok(gz && gunzipSync(gz.body).equals(golden));
  assert.equal((await s3.getObject('formats', 'a.ndjson'))?.contentType, 'application/x-ndjson');
});

test('--format and --gzip override the name; formula escaping is CSV only', async () => {
  const result = await runCli(['new-releases', '--format', 'ndjson', '--gzip'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0);
  assert.ok(gunzipSync(result.stdout).toString().startsWith('{"album_id":'));
  const bad = await runCli(['new-releases', '--format', 'ndjson', '--csv-escape-formulas'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--csv-escape-formulas applies to CSV output only/);
});

test('--columns chooses and orders columns, in CSV and NDJSON', async () => {
  const columns =
    'album_id,artist_position,artist_id,album_type,total_tracks,release_date_precision,album_uri,artist_uri,fetched_at';
  const csv = await runCli(['new-releases', '--columns', columns, '--max-items', '8'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(csv.status, 0, csv.stderr);
  const [header, ...rows] = csv.stdout.toString().trimEnd().split('\n');
  assert.equal(header, columns);
  const first = (rows[0] as string).split(',');
  assert.equal(first[1], '1');
  assert.match(first[3] as string, /^(album|single|compilation)$/);
  assert.match(first[4] as string, /^\d+$/);
  assert.equal(first[6], `spotify:album:${first[0]}`);
  assert.equal(first[7], `spotify:artist:${first[2]}`);
  assert.ok(!Number.isNaN(Date.parse(first[8] as string)));
  // Same ids and artist order as the default columns give.
  const plain = golden
    .toString()
    .split(/\n(?=[0-9A-Za-z]{22},)/)
    .slice(1, rows.length + 1)
    .map(
      (r) =>
        `${r.slice(0, 22)} ${/open\.spotify\.com\/album\/[0-9A-Za-z]{22},([0-9A-Za-z]{22}),/.exec(r)?.[1]}`,
    );
  assert.deepEqual(
    rows.map((r) => `${r.slice(0, 22)} ${r.split(',')[2]}`),
    plain,
  );
  const ndjson = await runCli(
    [
      'new-releases',
      '--format',
      'ndjson',
      '--columns',
      'artist_name,album_name',
      '--max-items',
      '3',
    ],
    {
      env: emulatorEnv(emulator),
    },
  );
  assert.deepEqual(Object.keys(JSON.parse(ndjson.stdout.toString().split('\n')[0] as string)), [
    'artist_name',
    'album_name',
  ]);
});

test('--columns rejects unknown or repeated names, and market without --market', async () => {
  for (const [value, message] of [
    ['album_id,popularity', /unknown column popularity/],
    ['album_id,album_id', /album_id is named twice/],
    ['album_id,market', /market needs --market/],
  ] as const) {
    const result = await runCli(['new-releases', '--columns', value], {
      env: emulatorEnv(emulator),
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, message);
  }
});

test('Parquet: typed columns, row groups, read back by hyparquet and DuckDB as the CSV’s rows', async () => {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const { parquetMetadata, parquetReadObjects } = await import('hyparquet');
  const csv = join(dir, 'pq.csv');
  const parquet = join(dir, 'pq.parquet');
  assert.equal(
    (await runCli(['new-releases', '--out', csv], { env: emulatorEnv(emulator) })).status,
    0,
  );
  const result = await runCli(['new-releases', '--out', parquet, '--parquet-row-group', '1000'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0, result.stderr);
  const bytes = await readFile(parquet);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const rows = (await parquetReadObjects({ file })) as Record<string, string>[];
  assert.equal(rows.length, golden.toString().split(/\n(?=[0-9A-Za-z]{22},)/).length - 1);
  assert.ok(rows.some((r) => r.album_name === 'Line one\nLine two'));
  assert.ok(parquetMetadata(file).row_groups.length >= 1);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const diff = await c.runAndReadAll(
    `SELECT count(*)::INTEGER AS n FROM ((SELECT * FROM read_csv('${csv}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA') EXCEPT ALL SELECT * FROM '${parquet}')
      UNION ALL (SELECT * FROM '${parquet}' EXCEPT ALL SELECT * FROM read_csv('${csv}', all_varchar = true, nullstr = 'NULL-NEVER-IN-DATA')))`,
  );
  assert.deepEqual(diff.getRowObjects(), [{ n: 0 }]);
  c.closeSync();
});

test('Parquet row groups bound memory: many groups for a large pull, types kept', async () => {
  const { parquetMetadata } = await import('hyparquet');
  const big = await startEmulator({ seed: 3, albums: 20_000 });
  try {
    const out = join(dir, 'big.parquet');
    const result = await runCli(
      [
        'new-releases',
        '--out',
        out,
        '--parquet-row-group',
        '5000',
        '--columns',
        'album_id,total_tracks,artist_position,fetched_at',
      ],
      { env: emulatorEnv(big) },
    );
    assert.equal(result.status, 0, result.stderr);
    const bytes = await readFile(out);
    const meta = parquetMetadata(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
    );
    assert.ok(meta.row_groups.length >= 6, `${meta.row_groups.length} row groups`);
    assert.deepEqual(
      meta.schema.slice(1).map((s) => [s.name, s.type]),
      [
        ['album_id', 'BYTE_ARRAY'],
        ['total_tracks', 'INT32'],
        ['artist_position', 'INT32'],
        ['fetched_at', 'INT64'],
      ],
    );
  } finally {
    await big.stop();
  }
});

test('Parquet refuses gzip; S3 type is application/vnd.apache.parquet', async () => {
  const bad = await runCli(['new-releases', '--out', 'x.parquet.gz'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Parquet compresses its own pages/);
  const env = { ...emulatorEnv(emulator), ...s3.env };
  assert.equal(
    (await runCli(['new-releases', '--out', 's3://formats/a.parquet'], { env })).status,
    0,
  );
  assert.equal(
    (await s3.getObject('formats', 'a.parquet'))?.contentType,
    'application/vnd.apache.parquet',
  );
});
