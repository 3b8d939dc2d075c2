/**
 * A run that describes itself: `--date` for backfills and re-runs of a past day (the pull,
 * replay and check), and a manifest that says where the raw pages and the report went, in what
 * format and columns, by which version, whether `--max-items` cut the pull, and how many
 * duplicates the cross-market dedupe dropped.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { emulator as startedEmulator, tempDir } from './helpers/servers.ts';

const T = { timeout: 60_000 };
const version = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
  .version as string;

const emulator = startedEmulator({ seed: 42, albums: 230 });
const dir = tempDir('spotify-batch-manifest-');
for (const sub of ['backfill', 'replayed', 'cut', 'whole', 'deduped']) mkdirSync(join(dir, sub));

const today = new Date().toISOString().slice(0, 10);
const compactToday = today.replace(/-/g, '');
const env = () => emulatorEnv(emulator);
const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

test(
  '--date: {date} and the state’s first-seen date are the given day; {run_id} keeps the real start',
  T,
  async () => {
    const out = join(dir, 'backfill', 'o');
    const state = join(dir, 'backfill', 's');
    const result = await runCli(
      [
        'new-releases',
        '--market',
        'SE',
        '--date',
        '2026-11-30',
        '--out',
        join(out, 'dt={date}', 'a.csv'),
        '--state',
        state,
        '--log-format',
        'json',
      ],
      { env: env() },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(await readdir(out), ['dt=2026-11-30']);
    assert.deepEqual(await readdir(join(out, 'dt=2026-11-30')), ['a.csv']);
    const report = JSON.parse(result.stderr.trim().split('\n').at(-1) ?? '{}');
    assert.ok(report.runId.startsWith(`${compactToday}T`), `from the real start: ${report.runId}`);
    const lines = (await readFile(state, 'utf8'))
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(lines.length, 230);
    for (const line of lines) assert.match(line, /^[0-9A-Za-z]{22}\t2026-11-30\tSE$/);
  },
);

test(
  '--date refuses what is not a real calendar day, or a day to come: one line, exit 2',
  T,
  async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    for (const bad of [
      '2026-02-30',
      '2026-13-01',
      '26-11-30',
      '2026-1-5',
      'yesterday',
      tomorrow,
      '',
    ]) {
      const result = await runCli(
        ['new-releases', '--date', bad, '--out', join(dir, 'never', 'dt={date}', 'a.csv')],
        { env: env() },
      );
      assert.equal(result.status, 2, `${bad}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /--date/);
    }
    assert.deepEqual(await readdir(dir).then((d) => d.includes('never')), false);
  },
);

test('replay and check take --date', T, async () => {
  const raw = join(dir, 'replayed', 'pages.ndjson.gz');
  const live = await runCli(
    ['new-releases', '--market', 'SE', '--raw', raw, '--out', join(dir, 'replayed', 'live.csv')],
    { env: env() },
  );
  assert.equal(live.status, 0, live.stderr);
  const replay = await runCli(
    [
      'replay',
      '--from',
      raw,
      '--market',
      'SE',
      '--date',
      '2026-11-29',
      '--state',
      join(dir, 'replayed', 'state'),
      '--out',
      join(dir, 'replayed', 'dt={date}', 'a.csv'),
    ],
    { env: { SPOTIFY_API_URL: 'http://127.0.0.1:9' } },
  );
  assert.equal(replay.status, 0, replay.stderr);
  assert.deepEqual(
    await readFile(join(dir, 'replayed', 'dt=2026-11-29', 'a.csv')),
    await readFile(join(dir, 'replayed', 'live.csv')),
  );
  assert.match(await readFile(join(dir, 'replayed', 'state'), 'utf8'), /\t2026-11-29\tSE\n/);
  const check = await runCli(
    ['check', '--date', '2026-11-28', '--out', join(dir, 'checked', 'dt={date}', 'a.csv')],
    { env: env() },
  );
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout.toString(), /dt=2026-11-28\/a\.csv/);
});

test(
  'the manifest names the raw pages, the report, the format, the columns and the tool version',
  T,
  async () => {
    const base = join(dir, 'described');
    const result = await runCli(
      [
        'new-releases',
        '--market',
        'SE,DE',
        '--date',
        '2026-11-27',
        '--out',
        join(base, 'dt={date}', 'market={market}', 'albums.ndjson.gz'),
        '--raw',
        join(base, 'raw', 'dt={date}', 'pages.ndjson.gz'),
        '--report',
        join(base, 'reports', '{date}.html'),
      ],
      { env: env() },
    );
    assert.equal(result.status, 0, result.stderr);
    const manifest = await readJson(join(base, 'dt=2026-11-27', '_manifest.json'));
    assert.equal(manifest.date, '2026-11-27');
    assert.equal(manifest.raw, join(base, 'raw', 'dt=2026-11-27', 'pages.ndjson.gz'));
    assert.equal(manifest.report, join(base, 'reports', '2026-11-27.html'));
    assert.equal(manifest.format, 'ndjson');
    assert.equal(manifest.gzip, true);
    assert.deepEqual(manifest.columns, [
      'album_id',
      'album_name',
      'release_date',
      'album_spotify_url',
      'artist_id',
      'artist_name',
      'artist_spotify_url',
    ]);
    assert.deepEqual(manifest.tool, { name: 'spotify-batch', version });
    assert.equal(manifest.complete, true);
    assert.equal(manifest.incompleteReason, undefined);
    assert.equal(manifest.duplicates, 0, 'one output per market: nothing deduplicated');
  },
);

test('a --max-items run that stopped short says complete: false and why', T, async () => {
  const cut = join(dir, 'cut');
  const result = await runCli(
    ['new-releases', '--max-items', '120', '--manifest', '--out', join(cut, 'a.csv')],
    { env: env() },
  );
  assert.equal(result.status, 0, result.stderr);
  const manifest = await readJson(join(cut, '_manifest.json'));
  assert.equal(manifest.albums, 120);
  assert.equal(manifest.complete, false);
  assert.equal(manifest.incompleteReason, '--max-items 120: stopped at 120 of 230 albums listed');
  // A cap above what Spotify lists cuts nothing.
  const whole = join(dir, 'whole');
  const all = await runCli(
    ['new-releases', '--max-items', '1000', '--manifest', '--out', join(whole, 'a.csv')],
    { env: env() },
  );
  assert.equal(all.status, 0, all.stderr);
  const full = await readJson(join(whole, '_manifest.json'));
  assert.equal(full.albums, 230);
  assert.equal(full.complete, true);
  assert.equal(full.incompleteReason, undefined);
});

test(
  'several markets into one output: the summary line and the manifest count the duplicates dropped',
  T,
  async () => {
    const base = join(dir, 'deduped');
    const result = await runCli(
      [
        'new-releases',
        '--market',
        'SE,DE,US',
        '--manifest',
        '--state',
        join(base, 'state'),
        '--out',
        join(base, 'all.csv'),
      ],
      { env: env() },
    );
    assert.equal(result.status, 0, result.stderr);
    // The state counts each distinct album once: every other listing was a duplicate.
    const distinct = Number(/state: (\d+) new/.exec(result.stderr)?.[1]);
    const duplicates = 3 * 230 - distinct;
    assert.ok(duplicates > 0, 'the markets overlap');
    assert.match(
      result.stderr,
      new RegExp(`: \\d+ pages, 690 albums, \\d+ rows, ${duplicates} duplicates dropped, `),
    );
    const manifest = await readJson(join(base, '_manifest.json'));
    assert.equal(manifest.duplicates, duplicates);
    assert.equal(manifest.albums, 690);
    // The star model drops the same albums (it keeps each album once in dim_album).
    const star = await runCli(
      ['new-releases', '--market', 'SE,DE,US', '--model', 'star', '--out', join(base, 'star/')],
      { env: env() },
    );
    assert.equal(star.status, 0, star.stderr);
    assert.equal((await readJson(join(base, 'star', '_manifest.json'))).duplicates, duplicates);
    assert.match(star.stderr, new RegExp(`, ${duplicates} duplicates dropped, `));
  },
);
