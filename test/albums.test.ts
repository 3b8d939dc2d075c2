/**
 * The albums stage: pages → albums, one rule for every model and for live and replay alike —
 * a bad record is diverted (or fails the run), and dedupe marks an album as seen only once it
 * passed validation, so a bad copy in one market does not hide a good copy in the next.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpotifyBatchError } from '../src/core/errors.ts';
import type { SourceItem, SourcePage } from '../src/core/records.ts';
import { createStats } from '../src/core/stats.ts';
import { album } from '../src/emulator/catalogue.ts';
import { createDeduper, pageAlbums } from '../src/transforms/albums.ts';
import { COLUMNS, checkRows } from '../src/transforms/rows.ts';
import { checkStar } from '../src/transforms/star.ts';

const page = (market: string, items: unknown[], offset = 0): SourcePage => ({
  items,
  market,
  offset,
  total: undefined,
  fetchedAt: '2026-01-01T00:00:00.000Z',
  url: `http://x/v1/browse/new-releases?country=${market}`,
});

const good = album(3, 0, 'http://x');
const bad = { ...good, name: undefined };
const other = album(3, 1, 'http://x');

for (const [model, check] of [
  ['flat', checkRows(COLUMNS)],
  ['star', checkStar],
] as const) {
  test(`${model}: a bad copy in one market does not hide the good copy in the next`, () => {
    const stats = createStats();
    const rejected: unknown[] = [];
    const o = { stats, check, dedupe: true, onReject: (record: unknown) => rejected.push(record) };
    const keep = createDeduper();
    const out: SourceItem[] = [];
    const emit = (item: SourceItem) => out.push(item);
    assert.equal(pageAlbums(page('SE', [bad, other]), o, keep, emit), undefined);
    assert.equal(pageAlbums(page('DE', [good, other, good]), o, keep, emit), undefined);
    assert.deepEqual(
      out.map((item) => [item.market, (item.album as { id: string }).id]),
      [
        ['SE', other.id],
        ['DE', good.id],
      ],
    );
    assert.deepEqual(rejected, [bad]);
    assert.equal(stats.rejected, 1);
  });
}

test('without a reject handler the first bad record is the error; without dedupe copies pass', () => {
  const stats = createStats();
  const out: SourceItem[] = [];
  const o = { stats, check: checkRows(COLUMNS), dedupe: false };
  const error = pageAlbums(page('SE', [good, bad, good]), o, undefined, (i) => out.push(i));
  assert.ok(error instanceof SpotifyBatchError);
  assert.equal(error.code, 'ERR_BAD_RECORD');
  assert.equal(out.length, 1, 'the albums before it came out');
  out.length = 0;
  assert.equal(
    pageAlbums(page('SE', [good, good]), o, undefined, (i) => out.push(i)),
    undefined,
  );
  assert.equal(out.length, 2);
});

test('items carry their page’s market and fetch time', () => {
  const out: SourceItem[] = [];
  const o = { stats: createStats(), check: checkRows(COLUMNS), dedupe: false };
  pageAlbums(page('US', [good]), o, undefined, (i) => out.push(i));
  assert.deepEqual(out, [{ album: good, market: 'US', fetchedAt: '2026-01-01T00:00:00.000Z' }]);
});
