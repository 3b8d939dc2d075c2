/**
 * `replay --from` takes patterns and prefixes, over S3 as over files (issue 23, item 8): the
 * daily job's raw landing is read back with `--from 's3://lake/raw/dt=*\/pages.ndjson.gz'` or
 * `--from s3://lake/raw/`, listed by ListObjectsV2 page after page, matched with the rule the
 * files use, in sorted order; a pattern that matches nothing is the missing file's usage error.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { normalizeS3Options } from '../src/core/options/s3.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { Destinations } from '../src/sinks/open.ts';
import { expandFrom, fromPattern } from '../src/sources/replay.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';

const T = { timeout: 180_000 };
/** One catalogue per day, so the days' pages differ (and their order shows in the output). */
let emulators: Emulator[];
let s3: LocalS3;
let dir: string;
/** No Spotify at all for a replay. */
const offline = { SPOTIFY_API_URL: 'http://127.0.0.1:9' };
const DAYS = ['2026-12-01', '2026-12-02'];

before(async () => {
  emulators = await Promise.all([8, 9].map((seed) => startEmulator({ seed, albums: 120 })));
  s3 = await startS3();
  await s3.createBucket('lake');
  dir = await mkdtemp(join(tmpdir(), 'spotify-batch-replay-from-'));
  await mkdir(join(dir, 'out'));
  // Two days of the daily job landing their raw pages in files, and the same bytes in S3 (two
  // live runs would land their pages in two arrival orders).
  for (const [day, date] of DAYS.entries()) {
    const live = await runCli(
      [
        'new-releases',
        '--market',
        'SE,US',
        '--date',
        date,
        '--out',
        join(dir, 'live', '{date}-{market}.csv'),
        '--raw',
        join(dir, 'raw', 'dt={date}', 'pages.ndjson.gz'),
      ],
      { env: emulatorEnv(emulators[day] as Emulator) },
    );
    assert.equal(live.status, 0, live.stderr);
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'lake',
        Key: `raw/dt=${date}/pages.ndjson.gz`,
        Body: await readFile(join(dir, 'raw', `dt=${date}`, 'pages.ndjson.gz')),
      }),
    );
  }
});
after(() => Promise.all([...emulators.map((e) => e.stop()), s3.stop()]));

const sha = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** Replays `from` into one CSV; answers its SHA-256. */
async function replay(name: string, ...from: string[]): Promise<string> {
  const out = join(dir, 'out', `${name}.csv`);
  const result = await runCli(['replay', ...from.flatMap((f) => ['--from', f]), '--out', out], {
    env: { ...offline, ...s3.env },
  });
  assert.equal(result.status, 0, `${from.join(' ')}: ${result.stderr}`);
  return sha(out);
}

test(
  'a pattern and a prefix over S3 read what the same pattern over files reads, in sorted order',
  T,
  async () => {
    const files = DAYS.map((d) => join(dir, 'raw', `dt=${d}`, 'pages.ndjson.gz'));
    const named = await replay('named', ...files);
    assert.equal(await replay('s3-glob', 's3://lake/raw/dt=*/pages.ndjson.gz'), named);
    assert.equal(await replay('s3-prefix', 's3://lake/raw/'), named);
    assert.equal(await replay('s3-any-depth', 's3://lake/raw/**'), named);
    assert.equal(await replay('file-glob', join(dir, 'raw', 'dt=*', 'pages.ndjson.gz')), named);
    assert.equal(await replay('file-prefix', `${join(dir, 'raw')}/`), named);
    // Sorted, whatever order the pattern lists them: the days given the other way round differ.
    assert.notEqual(await replay('reversed', ...[...files].reverse()), named);
  },
);

test(
  'a pattern or prefix that matches nothing: one line, exit 2, nothing written (S3 and files)',
  T,
  async () => {
    for (const from of [
      's3://lake/raw/dt=*/nope.ndjson.gz',
      's3://lake/nothing-here/',
      join(dir, 'raw', 'dt=*', 'nope.ndjson.gz'),
      `${join(dir, 'nothing-here')}/`,
    ]) {
      const out = join(dir, 'out', 'never.csv');
      const result = await runCli(['replay', '--from', from, '--out', out], {
        env: { ...offline, ...s3.env },
      });
      assert.equal(result.status, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `spotify-batch: error: option --from: nothing ${from.endsWith('/') ? 'below' : 'matches'} ${from}`,
      );
      await assert.rejects(readFile(out), { code: 'ENOENT' });
    }
  },
);

test(
  'over more than one ListObjectsV2 page (1,000 keys), the match on the second page is read',
  T,
  async () => {
    await s3.createBucket('big');
    // 1,000 keys that sort between the two days' pages and do not match the pattern.
    const keys = Array.from(
      { length: 1000 },
      (_, i) => `raw/dt=2026-12-01/zz/${String(i).padStart(4, '0')}`,
    );
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys
          .slice(i, i + 50)
          .map((Key) => s3.client.send(new PutObjectCommand({ Bucket: 'big', Key, Body: 'x' }))),
      );
    }
    for (const date of DAYS) {
      const object = await s3.getObject('lake', `raw/dt=${date}/pages.ndjson.gz`);
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'big',
          Key: `raw/dt=${date}/pages.ndjson.gz`,
          Body: object?.body ?? Buffer.alloc(0),
        }),
      );
    }
    const listed = s3.calls.length;
    const files = DAYS.map((d) => join(dir, 'raw', `dt=${d}`, 'pages.ndjson.gz'));
    assert.equal(
      await replay('big', 's3://big/raw/dt=*/pages.ndjson.gz'),
      await replay('named-2', ...files),
    );
    assert.equal(s3.count('list', listed), 2, 'ListObjectsV2: two pages, one listing');
  },
);

test('the pattern rule: * and ? within a folder level, ** across levels', () => {
  const re = fromPattern('s3://lake/raw/dt=*/pages.?.gz');
  assert.ok(re.test('s3://lake/raw/dt=2026-12-01/pages.a.gz'));
  assert.ok(!re.test('s3://lake/raw/dt=2026-12-01/x/pages.a.gz'));
  assert.ok(!re.test('s3://lake/raw/dt=2026-12-01/pages.ab.gz'));
  assert.ok(fromPattern('raw/**/p.gz').test('raw/p.gz'));
  assert.ok(fromPattern('raw/**/p.gz').test('raw/a/b/p.gz'));
  assert.ok(fromPattern('raw/(x)+.gz').test('raw/(x)+.gz'), 'other characters are literal');
});

test(
  "hidden files (a killed run's .partial, a .probe) are not inputs of a prefix or pattern; symlinked files are (S3 and files)",
  T,
  async () => {
    const files = DAYS.map((d) => join(dir, 'raw', `dt=${d}`, 'pages.ndjson.gz'));
    const named = await replay('named-3', ...files);
    const hidden = join(dir, 'hidden');
    await s3.createBucket('hidden');
    for (const [day, date] of DAYS.entries()) {
      const pages = await readFile(files[day] as string);
      await mkdir(join(hidden, 'raw', `dt=${date}`), { recursive: true });
      await writeFile(join(hidden, 'raw', `dt=${date}`, 'pages.ndjson.gz'), pages);
      // What a killed run leaves: a truncated partial, and a probe.
      const leftovers = {
        '.pages.ndjson.gz.k3x9.partial': pages.subarray(0, 40),
        '.x.q7z1.probe': Buffer.alloc(0),
      };
      for (const [name, body] of Object.entries(leftovers)) {
        await writeFile(join(hidden, 'raw', `dt=${date}`, name), body);
        await s3.client.send(
          new PutObjectCommand({ Bucket: 'hidden', Key: `raw/dt=${date}/${name}`, Body: body }),
        );
      }
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'hidden',
          Key: `raw/dt=${date}/pages.ndjson.gz`,
          Body: pages,
        }),
      );
    }
    for (const from of ['raw/', 'raw/dt=*/*', 'raw/**']) {
      assert.equal(await replay('hidden-file', join(hidden, from)), named, from);
      assert.equal(await replay('hidden-s3', `s3://hidden/${from}`), named, from);
    }
    // A symlinked file is read like the file it names.
    const linked = join(dir, 'linked');
    await mkdir(linked);
    for (const [day, file] of files.entries()) {
      await symlink(file, join(linked, `${day}.ndjson.gz`));
    }
    assert.equal(await replay('linked', `${linked}/`), named);
    assert.equal(await replay('linked-glob', join(linked, '*.gz')), named);
  },
);

test('a segment that starts with a dot matches only a pattern segment that starts with one', () => {
  for (const [pattern, location, matches] of [
    ['raw/dt=*/*', 'raw/dt=1/.pages.ndjson.gz.k3x9.partial', false],
    ['raw/dt=*/*', 'raw/dt=1/pages.ndjson.gz', true],
    ['raw/*/p.gz', 'raw/.git/p.gz', false],
    ['raw/**', 'raw/a/.x.q7z1.probe', false],
    ['raw/**', 'raw/.a/b.gz', false],
    ['raw/**', 'raw/a/b.gz', true],
    ['raw/**/p.gz', 'raw/.a/p.gz', false],
    ['*.gz', '.x.gz', false],
    ['?x.gz', '.x.gz', false],
    ['raw/dt=*/.*', 'raw/dt=1/.p.partial', true],
    ['raw/.hidden/*', 'raw/.hidden/a.gz', true],
    ['raw/a*', 'raw/a.b', true],
  ] as const) {
    assert.equal(fromPattern(pattern).test(location), matches, `${pattern} ${location}`);
  }
});

test('expandFrom: a prefix skips hidden files and folders; an input named twice is read once', async () => {
  const listed = ['raw/b.gz', 'raw/.b.gz.k3x9.partial', 'raw/.git/c.gz', 'raw/a/c.gz'];
  const list = async (prefix: string) => listed.filter((l) => l.startsWith(prefix));
  assert.deepEqual(await expandFrom(['raw/'], list), ['raw/a/c.gz', 'raw/b.gz']);
  assert.deepEqual(await expandFrom(['raw/b.gz', 'raw/*.gz', 'raw/b.gz', 'raw/**'], list), [
    'raw/b.gz',
    'raw/a/c.gz',
  ]);
});

test('expandFrom walks only the levels a pattern can match: ** and a prefix go all the way', async () => {
  const asked: unknown[] = [];
  const list = async (prefix: string, walk?: unknown) => {
    asked.push([prefix, walk]);
    return [];
  };
  for (const from of ['*', 'raw/dt=*/*.gz', 'raw/**/p.gz', 'raw/', 'raw/.h*/a']) {
    await assert.rejects(expandFrom([from], list), /nothing/);
  }
  assert.deepEqual(asked, [
    ['', { depth: 1, hidden: false }],
    ['raw/dt=', { depth: 2, hidden: false }],
    ['raw/', { depth: Number.POSITIVE_INFINITY, hidden: false }],
    ['raw/', { depth: Number.POSITIVE_INFINITY, hidden: false }],
    ['raw/.h', { depth: 2, hidden: true }],
  ]);
});

test('a folder walk goes down only `depth` levels, into hidden folders only when asked', async () => {
  const walk = join(dir, 'walk');
  for (const sub of ['a', 'a/b', '.git']) await mkdir(join(walk, sub), { recursive: true });
  for (const file of ['top.gz', 'a/one.gz', 'a/b/two.gz', '.git/three.gz', '.top.gz']) {
    await writeFile(join(walk, file), '');
  }
  await copyFile(join(walk, 'top.gz'), join(walk, 'a', 'top.gz'));
  const destinations = new Destinations(normalizeS3Options({}, {}), {}, process.stdout);
  const list = async (walkOptions?: { depth: number; hidden: boolean }) =>
    (await destinations.list(`${walk}/`, walkOptions)).map((l) => l.slice(walk.length + 1)).sort();
  assert.deepEqual(await list({ depth: 1, hidden: false }), ['top.gz']);
  assert.deepEqual(await list({ depth: 2, hidden: false }), ['a/one.gz', 'a/top.gz', 'top.gz']);
  assert.deepEqual(await list({ depth: 2, hidden: true }), [
    '.git/three.gz',
    '.top.gz',
    'a/one.gz',
    'a/top.gz',
    'top.gz',
  ]);
  assert.deepEqual(await list(), ['a/b/two.gz', 'a/one.gz', 'a/top.gz', 'top.gz']);
  // A symlinked folder is walked to a finite depth (ls raw/dt=*/x would), not under ** (a loop).
  await symlink(join(walk, 'a'), join(walk, 'linked'));
  assert.deepEqual(await list({ depth: 2, hidden: false }), [
    'a/one.gz',
    'a/top.gz',
    'linked/one.gz',
    'linked/top.gz',
    'top.gz',
  ]);
  assert.deepEqual(await list(), ['a/b/two.gz', 'a/one.gz', 'a/top.gz', 'top.gz']);
});
