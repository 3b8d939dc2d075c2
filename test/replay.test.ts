/**
 * Raw landing and replay: what Spotify sent is kept (published with the data, or not at all),
 * and replaying it with the same options gives the same bytes, with no token and no request;
 * JSON the user already has (arrays, paging responses, NDJSON; gz; files or S3) replays too,
 * streamed; bad input is one line naming the file and the position.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { album } from '../src/emulator/catalogue.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { rawLine } from '../src/sources/replay.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator, tempDir } from './helpers/servers.ts';

const T = { timeout: 120_000 };

const emulator = startedEmulator({ seed: 12, albums: 400, malformed: [7] });
const s3 = localS3('raw');
const dir = tempDir('spotify-batch-replay-');

/** No Spotify at all for a replay: no credentials, no API URL. */
const offline = { SPOTIFY_API_URL: 'http://127.0.0.1:9' };

test(
  'live with --raw, then replay: byte-identical CSV, NDJSON.gz and Parquet, per market and deduped',
  T,
  async () => {
    const raw = join(dir, 'pages.ndjson.gz');
    const live = await runCli(
      [
        'new-releases',
        '--market',
        'SE,US',
        '--out',
        join(dir, 'live', '{market}.csv'),
        '--rejects',
        join(dir, 'live-rejects.ndjson'),
        '--raw',
        raw,
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(live.status, 0, live.stderr);
    assert.ok(
      live.stderr.includes(`, raw ${raw}`),
      `the summary names the raw landing: ${live.stderr}`,
    );
    const requests = emulator.stats.apiRequests;
    const lines = (await import('node:zlib'))
      .gunzipSync(await readFile(raw))
      .toString()
      .trim()
      .split('\n');
    assert.equal(lines.length, 16, 'one line per page: 8 pages per market');
    const first = JSON.parse(lines[0] ?? '');
    assert.deepEqual(Object.keys(first), [
      'url',
      'market',
      'markets',
      'offset',
      'status',
      'fetchedAt',
      'body',
    ]);

    const replay = await runCli(
      [
        'replay',
        '--from',
        raw,
        '--market',
        'SE,US',
        '--out',
        join(dir, 'replay', '{market}.csv'),
        '--rejects',
        join(dir, 'replay-rejects.ndjson'),
      ],
      { env: offline },
    );
    assert.equal(replay.status, 0, replay.stderr);
    assert.equal(emulator.stats.apiRequests, requests, 'the replay asked Spotify nothing');
    for (const market of ['SE', 'US']) {
      assert.deepEqual(
        await readFile(join(dir, 'replay', `${market}.csv`)),
        await readFile(join(dir, 'live', `${market}.csv`)),
        market,
      );
    }
    assert.deepEqual(
      await readFile(join(dir, 'replay-rejects.ndjson')),
      await readFile(join(dir, 'live-rejects.ndjson')),
    );

    // Other formats and one deduped output with the market and fetch-time columns.
    for (const out of ['all.ndjson.gz', 'all.parquet', 'all.csv']) {
      const columns = 'album_id,album_name,artist_id,market,fetched_at';
      const a = await runCli(
        [
          'replay',
          '--from',
          raw,
          '--market',
          'SE,US',
          '--columns',
          columns,
          '--rejects',
          join(dir, `r-${out}.ndjson`),
          '--out',
          join(dir, `a-${out}`),
        ],
        { env: offline },
      );
      assert.equal(a.status, 0, a.stderr);
      const b = await runCli(
        [
          'new-releases',
          '--market',
          'SE,US',
          '--columns',
          columns,
          '--rejects',
          join(dir, `l-${out}.ndjson`),
          '--out',
          join(dir, `b-${out}`),
          '--raw',
          join(dir, `b-${out}.raw.gz`),
        ],
        { env: emulatorEnv(emulator) },
      );
      assert.equal(b.status, 0, b.stderr);
      const c = await runCli(
        [
          'replay',
          '--from',
          join(dir, `b-${out}.raw.gz`),
          '--market',
          'SE,US',
          '--columns',
          columns,
          '--rejects',
          join(dir, `c-${out}.ndjson`),
          '--out',
          join(dir, `c-${out}`),
        ],
        { env: offline },
      );
      assert.equal(c.status, 0, c.stderr);
      assert.deepEqual(
        await readFile(join(dir, `c-${out}`)),
        await readFile(join(dir, `b-${out}`)),
        out,
      );
    }
  },
);

test('a failed live run publishes no raw file either', T, async () => {
  const failing = await startEmulator({
    seed: 12,
    albums: 400,
    faults: [{ kind: '500', offset: 300 }],
  });
  try {
    const result = await runCli(
      [
        'new-releases',
        '--max-retries',
        '0',
        '--out',
        join(dir, 'f.csv'),
        '--raw',
        join(dir, 'f.raw.gz'),
      ],
      { env: emulatorEnv(failing) },
    );
    assert.equal(result.status, 4, result.stderr);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('f.') || f.startsWith('.f.')),
      [],
    );
  } finally {
    await failing.stop();
  }
});

test(
  'JSON the user has: a pretty array, a saved paging response, NDJSON, gzipped, on S3',
  T,
  async () => {
    const albums = Array.from({ length: 120 }, (_, i) => album(3, i, 'http://x'));
    const expected = await runCli(
      [
        'replay',
        '--from',
        await write('plain.ndjson', albums.map((a) => JSON.stringify(a)).join('\n')),
      ],
      { env: offline },
    );
    assert.equal(expected.status, 0, expected.stderr);
    assert.ok(expected.stdout.toString().split('\n').length > 120);
    const inputs = [
      await write('array.json', JSON.stringify(albums, null, 2)),
      await write(
        'paging.json',
        JSON.stringify({ albums: { items: albums, total: 120, next: null } }, null, 2),
      ),
      await write('paging-line.json', JSON.stringify({ albums: { items: albums } })),
      await write('array.json.gz', gzipSync(JSON.stringify(albums, null, 1))),
    ];
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'raw',
        Key: 'albums.json',
        Body: JSON.stringify(albums, null, 2),
      }),
    );
    for (const from of [...inputs, 's3://raw/albums.json']) {
      const result = await runCli(['replay', '--from', from], { env: { ...offline, ...s3.env } });
      assert.equal(result.status, 0, `${from}: ${result.stderr}`);
      // fetched_at is not a column here, so the bytes do not depend on when the replay ran.
      assert.deepEqual(result.stdout, expected.stdout, from);
    }
  },
);

test('a large JSON array is streamed: every album comes out', T, async () => {
  const n = 20_000;
  const big = await write(
    'big.json',
    `[${Array.from({ length: n }, (_, i) => JSON.stringify(album(5, i, 'http://x'))).join(',\n')}]`,
  );
  const result = await runCli(
    ['replay', '--from', big, '--columns', 'album_id', '--out', join(dir, 'big.csv')],
    { env: offline },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, new RegExp(`${n} albums`));
});

test(
  'bad input: one line naming the file and the position, exit 6, nothing published',
  T,
  async () => {
    const albums = Array.from({ length: 30 }, (_, i) => album(4, i, 'http://x'));
    const text = JSON.stringify(albums, null, 2);
    const cases: [string, string | Buffer, RegExp][] = [
      ['cut.json', text.slice(0, 2000), /cannot replay .*cut\.json: near byte \d+: /],
      [
        'bad.ndjson',
        `${JSON.stringify(albums[0])}\n{"id": oops}\n`,
        /cannot replay .*bad\.ndjson: line 2: not JSON/,
      ],
      [
        'cut.json.gz',
        gzipSync(text).subarray(0, 300),
        /cannot replay .*cut\.json\.gz: near byte \d+ of the gzip file: the gzip data is truncated or corrupt/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const from = await write(name, body);
      const out = join(dir, `${name}.csv`);
      const result = await runCli(['replay', '--from', from, '--out', out], { env: offline });
      assert.equal(result.status, 6, `${name}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
      assert.ok(!(await readdir(dir)).some((f) => f.includes(`${name}.csv`)), 'nothing published');
    }
    const missing = await runCli(['replay', '--from', join(dir, 'nope.json')], { env: offline });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /option --from: .*nope\.json does not exist/);
  },
);

test(
  'a raw file gzip-truncated at any length, or corrupt, is exit 6 naming it and the compressed byte',
  T,
  async () => {
    // A raw landing of 40 pages: big enough that 100 bytes end inside the first line and
    // 5,000 inside the first page's body, which once surfaced as "internal error" (exit 1).
    const pages = Array.from({ length: 40 }, (_, p) =>
      rawLine(
        {
          url: `http://x/v1/browse/new-releases?offset=${p * 50}`,
          market: 'SE',
          offset: p * 50,
          status: 200,
          fetchedAt: '2026-01-01T00:00:00.000Z',
        },
        JSON.stringify({
          albums: {
            items: Array.from({ length: 50 }, (_, i) => album(9, p * 50 + i, 'http://x')),
            offset: p * 50,
            total: 2000,
          },
        }),
      ),
    );
    const gz = gzipSync(pages.join(''));
    const whole = await write('whole.ndjson.gz', gz);
    const ok = await runCli(['replay', '--from', whole, '--out', join(dir, 'whole.csv')], {
      env: offline,
    });
    assert.equal(ok.status, 0, ok.stderr);
    const flipped = Buffer.from(gz);
    flipped[3] = 0xff; // FLG with reserved bits set: a corrupt header
    const crc = Buffer.from(gz);
    crc[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // the trailer's CRC-32
    const cases: [string, Buffer, number][] = [
      ...[100, 5_000, Math.floor(gz.length / 2), gz.length - 8].map(
        (n) => [`cut-${n}.ndjson.gz`, gz.subarray(0, n), n] as [string, Buffer, number],
      ),
      ['header.ndjson.gz', flipped, -1],
      ['crc.ndjson.gz', crc, -1],
    ];
    for (const [name, body, read] of cases) {
      const from = await write(name, body);
      const out = join(dir, `${name}.csv`);
      const result = await runCli(['replay', '--from', from, '--out', out], { env: offline });
      assert.equal(result.status, 6, `${name}: ${result.stderr}`);
      const at = new RegExp(
        `^spotify-batch: error: cannot replay ${from.replace(/\./g, '\\.')}: near byte (\\d+) of the gzip file: the gzip data is truncated or corrupt \\(`,
      ).exec(result.stderr);
      assert.ok(at, `${name}: ${result.stderr}`);
      // A truncated file was read to its end: the offset is where it stops.
      if (read >= 0) assert.equal(Number(at[1]), read, name);
      else assert.ok(Number(at[1]) <= body.length, name);
      assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
      assert.ok(!(await readdir(dir)).some((f) => f.includes(`${name}.csv`)), 'nothing published');
    }
  },
);

async function write(name: string, body: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  return path;
}

test(
  'replay --max-items takes the first N albums, as the live run with --max-items does',
  T,
  async () => {
    const raw = join(dir, 'max-items.ndjson.gz');
    const common = ['--market', 'SE', '--max-items', '130'];
    const full = await runCli(
      [
        'new-releases',
        '--market',
        'SE',
        '--out',
        join(dir, 'mi-full.csv'),
        '--rejects',
        join(dir, 'mi-full-rejects.ndjson'),
        '--raw',
        raw,
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(full.status, 0, full.stderr);
    const live = await runCli(
      [
        'new-releases',
        ...common,
        '--out',
        join(dir, 'mi-live.csv'),
        '--rejects',
        join(dir, 'mi-live-rejects.ndjson'),
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.equal(live.status, 0, live.stderr);
    const replay = await runCli(
      [
        'replay',
        '--from',
        raw,
        ...common,
        '--out',
        join(dir, 'mi-replay.csv'),
        '--rejects',
        join(dir, 'mi-replay-rejects.ndjson'),
        '--log-format',
        'json',
      ],
      { env: offline },
    );
    assert.equal(replay.status, 0, replay.stderr);
    const report = JSON.parse(replay.stderr.trim().split('\n').at(-1) ?? '');
    assert.equal(report.albums, 130);
    assert.deepEqual(
      await readFile(join(dir, 'mi-replay.csv')),
      await readFile(join(dir, 'mi-live.csv')),
    );
    assert.ok(
      (await readFile(join(dir, 'mi-full.csv'))).length >
        (await readFile(join(dir, 'mi-replay.csv'))).length,
    );
  },
);
