import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTRACT_COLUMNS, type Column, EXTRA_COLUMNS } from '../src/core/columns.ts';
import { SpotifyBatchError } from '../src/core/errors.ts';
import type { SourceItem } from '../src/core/records.ts';
import { album } from '../src/emulator/catalogue.ts';
import { albumToRows, COLUMNS, checkRows, projectRows } from '../src/transforms/rows.ts';
import { albumToStar, checkStar } from '../src/transforms/star.ts';

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

/**
 * The albums stage checks an album without making its rows (src/transforms/rows.ts
 * albumCheck); the rows stage makes them. The check must refuse exactly the albums making would
 * refuse, with the same first error, for every model and choice of columns.
 */
test('the albums stage’s check throws exactly what making the rows throws', () => {
  const good = () => {
    const a = album(5, 3, 'http://x') as unknown as Record<string, unknown>;
    const one = (id: string) => ({ ...artist(id, id.toLowerCase()), uri: `spotify:artist:${id}` });
    return { ...a, release_date_precision: 'day', artists: [one('X'), one('Y')] };
  };
  const paths = [
    'id',
    'name',
    'release_date',
    'external_urls',
    'external_urls.spotify',
    'artists',
    'album_type',
    'release_date_precision',
    'total_tracks',
    'uri',
    ...[0, 1].flatMap((i) =>
      ['', '.id', '.name', '.external_urls', '.external_urls.spotify', '.uri'].map(
        (f) => `artists.${i}${f}`,
      ),
    ),
  ];
  const set = (record: unknown, path: string, value: unknown) => {
    const keys = path.split('.');
    let at = record as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
    if (value === undefined) delete at[keys.at(-1) as string];
    else at[keys.at(-1) as string] = value;
  };
  const records: unknown[] = [good(), { ...good(), artists: [] }, 42, null, [], 'x'];
  for (const value of [undefined, null, 42, 1.5, '']) {
    for (const path of paths) {
      const record = structuredClone(good());
      set(record, path, value);
      records.push(record);
    }
  }
  // Two faults at once: the first one met is the error, in the check as in the rows.
  for (const [i, first] of paths.entries()) {
    for (const second of paths.slice(i + 1)) {
      const record = structuredClone(good());
      set(record, second, undefined);
      if (!second.startsWith(`${first}.`)) set(record, first, null);
      records.push(record);
    }
  }
  for (const noArtists of [{ ...good(), artists: [] }]) {
    for (const path of ['album_type', 'total_tracks', 'uri']) {
      const record = structuredClone(noArtists);
      set(record, path, undefined);
      records.push(record);
    }
  }
  const outcome = (run: () => unknown, what: string) => {
    try {
      run();
      return 'ok';
    } catch (error) {
      assert.ok(error instanceof SpotifyBatchError, `${what}: ${String(error)}`);
      return `${error.code} ${error.message} ${JSON.stringify(error.context)}`;
    }
  };
  const models: [string, (item: SourceItem) => void, (item: SourceItem) => unknown][] = [
    ...(
      [
        COLUMNS,
        [...COLUMNS, 'market'],
        [...CONTRACT_COLUMNS, ...EXTRA_COLUMNS],
        ['artist_uri', 'album_type', 'market', 'total_tracks', 'artist_position', 'album_uri'],
      ] as Column[][]
    ).map(
      (columns) =>
        [
          columns.join(','),
          checkRows(columns),
          (item: SourceItem) => projectRows(item, columns),
        ] as [string, (item: SourceItem) => void, (item: SourceItem) => unknown],
    ),
    ['star', checkStar, (item) => albumToStar(item, new Set())],
  ];
  let refused = 0;
  for (const [name, check, make] of models) {
    for (const record of records) {
      const item: SourceItem = { album: record, market: 'SE', fetchedAt: 't' };
      const what = `${name}: ${JSON.stringify(record)}`;
      const made = outcome(() => make(item), what);
      assert.equal(
        outcome(() => check(item), what),
        made,
        what,
      );
      if (made !== 'ok') refused++;
    }
  }
  assert.ok(refused > 1000, `the cases refuse albums: ${refused}`);
});
