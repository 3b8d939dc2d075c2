import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { emulator as startedEmulator } from './helpers/servers.ts';

// The golden file was written by test/fixtures/make_golden.py — the tutorial's loop with
// Python's csv module, no code of ours — against the emulator with seed 42 and 230 albums
// (the script's docstring has the commands). It holds commas, quotes, CR/LF, tabs, emoji,
// CJK, right-to-left text, padded and empty names, and albums with 0..4 artists.
const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));

const emulator = startedEmulator({ seed: 42, albums: 230 });

test('stdout is byte for byte the golden CSV', async () => {
  const result = await runCli(['new-releases'], { env: emulatorEnv(emulator) });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.length, golden.length);
  assert.ok(result.stdout.equals(golden), 'stdout differs from the golden CSV');
  assert.match(result.stderr, /5 pages, 230 albums, \d+ rows/);
});

test('--out FILE writes the same bytes and leaves no temporary file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const out = join(dir, 'album_details.csv');
  const result = await runCli(
    ['new-releases', '--out', out, '--limit', '13', '--concurrency', '3'],
    {
      env: emulatorEnv(emulator),
    },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.ok((await readFile(out)).equals(golden));
  assert.deepEqual(await readdir(dir), ['album_details.csv']);
});

test('the golden starts with the contract header and uses \\n record ends without a BOM', () => {
  const header =
    'album_id,album_name,release_date,album_spotify_url,artist_id,artist_name,artist_spotify_url\n';
  assert.equal(golden.subarray(0, header.length).toString(), header);
  assert.notEqual(golden[0], 0xef);
  // Every quoted field with CR/LF/comma/quote is there, so the fixture covers what it claims.
  const text = golden.toString();
  for (const needle of [
    '"Hello, World"',
    '"She said ""yes"""',
    '"Line one\nLine two"',
    '"Carriage\r\nReturn"',
    'Tab\tSeparated',
    '🎧',
    '東京',
    'مرحبا',
    ',  padded both  ,',
    ',,',
  ]) {
    assert.ok(text.includes(needle), `golden lacks ${JSON.stringify(needle)}`);
  }
});
