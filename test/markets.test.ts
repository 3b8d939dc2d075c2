import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SPOTIFY_MARKETS } from '../src/core/markets.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { runToBuffer } from './helpers/run.ts';
import { localS3, emulator as startedEmulator } from './helpers/servers.ts';
import { untilExit } from './helpers/wait.ts';

const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
const BUCKET = 'markets-bucket';
const emulator = startedEmulator({ seed: 42, albums: 230 });
const s3 = localS3(BUCKET);

/** CSV records (quoted newlines kept inside their record). */
function records(csv: string): string[] {
  return csv.split(/\n(?=[0-9A-Za-z]{22},|$)/).filter(Boolean);
}
const today = new Date().toISOString().slice(0, 10);

test('several markets into one object: a market column, first (album, artist) row kept', async () => {
  const perMarket = await Promise.all(
    ['SE', 'DE', 'US'].map(async (m) =>
      records((await runToBuffer(emulator, { markets: [m] })).bytes.toString()),
    ),
  );
  // The expected output, built from the single-market runs (which have no market column).
  const seen = new Set<string>();
  const expected = [
    'album_id,album_name,release_date,album_spotify_url,artist_id,artist_name,artist_spotify_url,market',
  ];
  ['SE', 'DE', 'US'].forEach((market, i) => {
    for (const record of (perMarket[i] as string[]).slice(1)) {
      const fields = record.match(/^([^,]+),.*?,https:\/\/open\.spotify\.com\/album\/\1,([^,]+),/s);
      const key = `${record.slice(0, 22)}|${fields?.[2] ?? record}`;
      if (seen.has(key)) continue;
      seen.add(key);
      expected.push(`${record},${market}`);
    }
  });
  const { bytes, report } = await runToBuffer(emulator, { markets: ['se', 'DE,us'] });
  assert.equal(bytes.toString(), `${expected.join('\n')}\n`);
  assert.equal(report.albums, 3 * 230);
  assert.ok(report.rows < perMarket.flat().length - 3, 'markets overlap, so dedupe dropped rows');
});

test('--no-dedupe keeps every market’s rows', async () => {
  const deduped = await runToBuffer(emulator, { markets: ['SE', 'DE'] });
  const all = await runToBuffer(emulator, { markets: ['SE', 'DE'], dedupe: false });
  assert.ok(all.report.rows > deduped.report.rows);
});

test('one market keeps the tutorial’s exact columns', async () => {
  const result = await runCli(['new-releases', '--market', 'SE'], { env: emulatorEnv(emulator) });
  assert.equal(result.status, 0, result.stderr);
  assert.ok(
    result.stdout
      .toString()
      .startsWith(
        'album_id,album_name,release_date,album_spotify_url,artist_id,artist_name,artist_spotify_url\n',
      ),
  );
  assert.equal(emulator.stats.log.at(-1)?.status, 200);
});

test('--market all: every embedded market, no duplicate rows', async () => {
  const before = emulator.stats.apiRequests;
  const { bytes, report } = await runToBuffer(emulator, { markets: ['all'], concurrency: 8 });
  assert.equal(emulator.stats.apiRequests - before, SPOTIFY_MARKETS.length * 5);
  const keys = records(bytes.toString())
    .slice(1)
    .map((r) => r.slice(0, 22) + r.split(',').at(-4));
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(report.albums, SPOTIFY_MARKETS.length * 230);
});

test('an unknown market is a usage error', async () => {
  const result = await runCli(['new-releases', '--market', 'SE,XX'], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /option --market: XX is not a Spotify market/);
});

test('{market} in an S3 key: one object per market, then the manifest', async () => {
  const out = `s3://${BUCKET}/new_releases/dt={date}/market={market}/albums.csv`;
  const result = await runCli(['new-releases', '--market', 'SE,DE', '--out', out], {
    env: { ...emulatorEnv(emulator), ...s3.env },
  });
  assert.equal(result.status, 0, result.stderr);
  const se = await s3.getObject(BUCKET, `new_releases/dt=${today}/market=SE/albums.csv`);
  const de = await s3.getObject(BUCKET, `new_releases/dt=${today}/market=DE/albums.csv`);
  assert.ok(se && de);
  assert.ok(
    se.body.equals((await runToBuffer(emulator, { markets: ['SE'] })).bytes),
    'per-market object = single-market run',
  );
  const manifestObject = await s3.getObject(BUCKET, `new_releases/dt=${today}/_manifest.json`);
  assert.equal(manifestObject?.contentType, 'application/json');
  const manifest = JSON.parse(manifestObject?.body.toString() ?? '{}');
  assert.deepEqual(manifest.markets, { done: ['SE', 'DE'], failed: [] });
  assert.equal(manifest.objects.length, 2);
  assert.equal(manifest.objects[0].sha256, createHash('sha256').update(se.body).digest('hex'));
  assert.equal(manifest.objects[1].bytes, de.body.length);
  assert.equal(manifest.albums, 460);
  assert.match(
    result.stderr,
    /2 outputs .*manifest s3:\/\/markets-bucket\/new_releases\/dt=.*\/_manifest\.json/,
  );
});

test('a failing market fails the run: the markets staged before it are discarded, none published', async () => {
  const failing = await startEmulator({
    seed: 42,
    albums: 230,
    faults: [{ kind: '500', market: 'DE' }],
  });
  try {
    const out = `s3://${BUCKET}/fail/{market}.csv`;
    const mark = s3.calls.length;
    // One market at a time: SE is pulled completely and staged before DE fails.
    const result = await runCli(
      ['new-releases', '--market', 'SE,DE,US', '--out', out, '--max-retries', '0', '-c', '1'],
      { env: { ...emulatorEnv(failing), ...s3.env } },
    );
    assert.equal(result.status, 4, result.stderr);
    assert.equal(failing.stats.log.filter((r) => r.query.includes('country=SE')).length, 5);
    assert.equal(s3.count('put', mark), 0, 'SE was held, never sent');
    assert.deepEqual(
      (await s3.listKeys(BUCKET)).filter((k) => k.startsWith('fail/')),
      [],
    );
    assert.deepEqual(await s3.openUploads(BUCKET), []);
  } finally {
    await failing.stop();
  }
});

test('--on-market-error skip: the other markets complete, the manifest records the failure, exit 7', async () => {
  const failing = await startEmulator({
    seed: 42,
    albums: 230,
    faults: [{ kind: '500', market: 'DE' }],
  });
  try {
    const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
    const out = join(dir, 'dt={date}', 'market={market}', 'albums.csv');
    const result = await runCli(
      [
        'new-releases',
        '--market',
        'SE,DE,US',
        '--out',
        out,
        '--on-market-error',
        'skip',
        '--max-retries',
        '0',
      ],
      { env: emulatorEnv(failing) },
    );
    assert.equal(result.status, 7, result.stderr);
    assert.match(result.stderr, /market DE failed and is skipped/);
    assert.deepEqual((await readdir(join(dir, `dt=${today}`))).sort(), [
      '_manifest.json',
      'market=SE',
      'market=US',
    ]);
    const manifest = JSON.parse(await readFile(join(dir, `dt=${today}`, '_manifest.json'), 'utf8'));
    assert.deepEqual(manifest.markets.done, ['SE', 'US']);
    assert.equal(manifest.markets.failed[0].market, 'DE');
    assert.equal(manifest.markets.failed[0].code, 'ERR_SPOTIFY_HTTP');
  } finally {
    await failing.stop();
  }
});

test('Development Mode: --via search steps down to limit 10 and gives the complete output', async () => {
  const dev = await startEmulator({ seed: 42, albums: 230, devMode: true });
  try {
    const result = await runCli(['new-releases', '--via', 'search'], { env: emulatorEnv(dev) });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.stdout.equals(golden), 'search pages of 10 give the same rows');
    assert.match(result.stderr, /23 pages, 230 albums.*search limit stepped down to 10/);
    assert.equal(dev.stats.byStatus[400], 1);
  } finally {
    await dev.stop();
  }
});

test('search stops at Spotify’s 1000 cap and says so', async () => {
  const big = await startEmulator({ seed: 42, albums: 1500 });
  try {
    const result = await runCli(['new-releases', '--via', 'search', '--query', 'year:2026'], {
      env: emulatorEnv(big),
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /20 pages, 1000 albums.*stopped at Spotify's search cap of 1000/);
    assert.equal(big.stats.byStatus[400] ?? 0, 0, 'never asked beyond the cap');
  } finally {
    await big.stop();
  }
});

test('DuckDB reads the partitions as one table (the README query), rows and tricky names intact', async () => {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const out = join(dir, 'new_releases', 'dt={date}', 'market={market}', 'albums.csv');
  const result = await runCli(['new-releases', '--market', 'SE,DE,JP', '--out', out], {
    env: emulatorEnv(emulator),
  });
  assert.equal(result.status, 0, result.stderr);
  const manifest = JSON.parse(
    await readFile(join(dir, 'new_releases', `dt=${today}`, '_manifest.json'), 'utf8'),
  );
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  const table = `read_csv('${join(dir, 'new_releases')}/*/*/albums.csv', hive_partitioning = true, all_varchar = true)`;
  const counts = await connection.runAndReadAll(
    `SELECT dt::VARCHAR AS dt, market, count(*)::INTEGER AS rows FROM ${table} GROUP BY ALL ORDER BY market`,
  );
  const expected = manifest.objects
    .map((o: { market: string; rows: number }) => ({ dt: today, market: o.market, rows: o.rows }))
    .sort((a: { market: string }, b: { market: string }) => a.market.localeCompare(b.market));
  assert.deepEqual(counts.getRowObjects(), expected);
  const names = await connection.runAndReadAll(
    `SELECT DISTINCT album_name FROM ${table} WHERE album_name LIKE 'Line one%' OR album_name LIKE '%Quoted%'`,
  );
  assert.deepEqual(
    names
      .getRowObjects()
      .map((r) => r.album_name)
      .sort(),
    ['"Quoted", with comma', 'Line one\nLine two'],
  );
  connection.closeSync();
});

test('per-market outputs are pulled side by side under the shared request limit', async () => {
  // One page per market: pulled one market after the other, at most one request would be in
  // flight. Answers are held until three are out at once.
  const onePage = await startEmulator({ seed: 42, albums: 50 });
  const hold = onePage.hold();
  try {
    const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
    let child: ChildProcess | undefined;
    const running = runCli(
      [
        'new-releases',
        '--market',
        'SE,DE,US,JP,BR,FR',
        '--concurrency',
        '3',
        '--out',
        join(dir, '{market}.csv'),
      ],
      { env: emulatorEnv(onePage), onSpawn: (c) => (child = c) },
    );
    try {
      await onePage.waitFor(() => hold.held === 3, {
        signal: untilExit(child, 'three requests were out at once'),
      });
    } finally {
      hold.release();
    }
    const result = await running;
    assert.equal(result.status, 0, result.stderr);
    assert.equal(onePage.stats.maxInFlight, 3);
    const manifest = JSON.parse(await readFile(join(dir, '_manifest.json'), 'utf8'));
    assert.deepEqual(
      manifest.markets.done,
      ['SE', 'DE', 'US', 'JP', 'BR', 'FR'],
      'listed in the order given',
    );
  } finally {
    await onePage.stop();
  }
});
