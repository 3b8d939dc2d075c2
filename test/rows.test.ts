import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpotifyBatchError } from '../src/core/errors.ts';
import { album } from '../src/emulator/catalogue.ts';
import { albumToRows } from '../src/transforms/rows.ts';

const artist = (id: string, name: string) => ({
  id,
  name,
  external_urls: { spotify: `https://open.spotify.com/artist/${id}` },
});
const base = {
  id: 'A1',
  name: 'Name, with comma',
  release_date: '0000',
  external_urls: { spotify: 'https://open.spotify.com/album/A1' },
  artists: [artist('X', 'First'), artist('Y', '')],
};

test('one row per artist, in artist order, with the seven contract columns', () => {
  assert.deepEqual(albumToRows(base), [
    [
      'A1',
      'Name, with comma',
      '0000',
      'https://open.spotify.com/album/A1',
      'X',
      'First',
      'https://open.spotify.com/artist/X',
    ],
    [
      'A1',
      'Name, with comma',
      '0000',
      'https://open.spotify.com/album/A1',
      'Y',
      '',
      'https://open.spotify.com/artist/Y',
    ],
  ]);
});

test('an album without artists yields no rows, like the tutorial loop', () => {
  assert.deepEqual(albumToRows({ ...base, artists: [] }), []);
});

test('emulator albums of every shape convert', () => {
  let rows = 0;
  for (let i = 0; i < 500; i++) rows += albumToRows(album(7, i, 'http://x')).length;
  assert.ok(rows > 500, `expected more rows than albums, got ${rows}`);
});

const bad: [string, unknown, RegExp][] = [
  ['missing name', { ...base, name: undefined }, /album A1: field name is missing/],
  [
    'null release_date',
    { ...base, release_date: null },
    /album A1: field release_date is got null/,
  ],
  [
    'no album url',
    { ...base, external_urls: {} },
    /album A1: field external_urls\.spotify is missing/,
  ],
  ['artists not an array', { ...base, artists: null }, /album A1: field artists is got null/],
  [
    'artist without id',
    { ...base, artists: [{ name: 'n', external_urls: { spotify: 'u' } }] },
    /album A1: field artists\[0\]\.id is missing/,
  ],
  [
    'artist url missing',
    { ...base, artists: [artist('X', 'x'), { id: 'Z', name: 'z' }] },
    /field artists\[1\]\.external_urls\.spotify is missing/,
  ],
  ['no id', { ...base, id: '' }, /an album without an id: field id/],
  ['not an object', 42, /field album is got 42/],
];
for (const [name, record, message] of bad) {
  test(`a bad record names the album and field: ${name}`, () => {
    assert.throws(
      () => albumToRows(record),
      (error: unknown) =>
        error instanceof SpotifyBatchError &&
        error.code === 'ERR_BAD_RECORD' &&
        message.test(error.message),
    );
  });
}
