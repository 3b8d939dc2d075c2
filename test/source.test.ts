import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { SourcePage } from '../src/core/records.ts';
import { createStats } from '../src/core/stats.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { liveSource } from '../src/sources/albums.ts';
import { rawLine, replaySource } from '../src/sources/replay.ts';
import { runToBuffer } from './helpers/run.ts';
import { emulators } from './helpers/servers.ts';
import { untilSettled } from './helpers/wait.ts';

const emulator = emulators();

test('pages fetched concurrently with random latency come out in API order', async () => {
  const plain = await emulator({ seed: 5, albums: 1000 });
  const jittery = await emulator({ seed: 5, albums: 1000, latencyJitterMs: 40 });
  const expected = (await runToBuffer(plain, { concurrency: 1 })).bytes;
  for (const concurrency of [4, 16]) {
    const { bytes, report } = await runToBuffer(jittery, { concurrency, limit: 20 });
    assert.ok(bytes.equals(expected), `concurrency ${concurrency}: output differs`);
    assert.equal(report.pages, 50);
    assert.equal(report.albums, 1000);
  }
  // The emulator really saw requests overlap, so order was at stake.
  assert.ok(jittery.stats.maxInFlight > 4, `max in flight ${jittery.stats.maxInFlight}`);
  assert.ok(jittery.stats.maxInFlight <= 16);
});

test('a stalled consumer stops the fetching: one request per page read beyond a full window', async () => {
  const e = await emulator({ seed: 1, albums: 10_000 });
  const controller = new AbortController();
  const stats = createStats();
  const concurrency = 4;
  const source = liveSource({
    apiUrl: e.url,
    accountsUrl: e.url,
    clientId: e.clientId,
    clientSecret: e.clientSecret,
    via: 'new-releases',
    markets: [],
    query: 'tag:new',
    limit: 50,
    concurrency,
    maxItems: Number.POSITIVE_INFINITY,
    maxRetries: 0,
    retryDelay: 100,
    maxRetryAfter: 60,
    maxRateLimitWait: 60,
    requestTimeout: 5000,
    stats,
    signal: controller.signal,
  });
  /**
   * Reads one page, then awaits the source's buffer-full point: the next page pushed (the
   * 'readable' a read of the last buffered page asks for; the buffer holds one page), after
   * which a Readable asks its generator for nothing until it is read again. Then awaits the
   * emulator answering every request the source had sent by that point, and checks that none
   * was sent meanwhile: what the source fetches is what its reads asked for.
   */
  const readOneThenFill = async () => {
    assert.ok(source.read(), 'a page was buffered');
    await once(source, 'readable');
    const sent = stats.requests;
    await e.waitFor((s) => s.apiRequests >= sent && s.inFlight === 0);
    assert.equal(e.stats.apiRequests, sent, 'requests arrived that the source had not sent');
    assert.equal(stats.requests, sent, 'the source sent requests while its buffer was full');
    return sent;
  };
  try {
    await once(source, 'readable');
    // 200 pages are available. Page 1 read: a window of 4 fetched ahead, page 2 fills the buffer.
    assert.equal(await readOneThenFill(), 1 + concurrency);
    // Each further page read moves the window by exactly one request.
    assert.equal(await readOneThenFill(), 2 + concurrency);
    assert.equal(await readOneThenFill(), 3 + concurrency);
  } finally {
    const closed = once(source, 'close');
    source.destroy();
    await closed;
  }
  assert.equal(e.stats.apiRequests, 3 + concurrency, 'requests after the source was destroyed');
});

test('live and replay are one source shape: a raw landing replays as the live pages', async () => {
  const e = await emulator({ seed: 4, albums: 120, emptyMarkets: ['US'] });
  const markets = ['SE', 'US', 'DE'];
  const lines: string[] = [];
  const stats = createStats();
  const live = liveSource({
    apiUrl: e.url,
    accountsUrl: e.url,
    clientId: e.clientId,
    clientSecret: e.clientSecret,
    via: 'new-releases',
    markets,
    query: 'tag:new',
    limit: 50,
    concurrency: 3,
    maxItems: Number.POSITIVE_INFINITY,
    maxRetries: 0,
    retryDelay: 100,
    maxRetryAfter: 60,
    maxRateLimitWait: 60,
    requestTimeout: 5000,
    stats,
    signal: new AbortController().signal,
    keepText: true,
    onPage: (page, market, fetchedAt) => {
      const meta = { url: page.url ?? '', market: market ?? null, markets, offset: page.offset };
      lines.push(rawLine({ ...meta, status: 200, fetchedAt }, page.text ?? ''));
    },
  });
  const pages: SourcePage[] = await live.toArray();
  assert.deepEqual(
    pages.map((p) => [p.market, p.offset, p.items.length]),
    [
      ['SE', 0, 50],
      ['SE', 50, 50],
      ['SE', 100, 20],
      ['US', 0, 0],
      ['DE', 0, 50],
      ['DE', 50, 50],
      ['DE', 100, 20],
    ],
    'whole pages, in order, each with its market and offset (an empty market is one empty page)',
  );
  assert.ok(pages.every((p) => p.url.startsWith(e.url) && !Number.isNaN(Date.parse(p.fetchedAt))));
  const replay = (options: { markets: string[]; maxItems: number }) => {
    const replayStats = createStats();
    const source = replaySource(
      ['raw.ndjson'],
      async () => ({ body: Readable.from([Buffer.from(lines.join(''))]) }),
      { ...options, stats: replayStats, fetchedAt: 'unused: raw lines carry theirs' },
    );
    return { source, stats: replayStats };
  };
  const all = replay({ markets: [], maxItems: Number.POSITIVE_INFINITY });
  assert.deepEqual(await all.source.toArray(), pages);
  assert.deepEqual(
    [all.stats.pages, all.stats.albums, all.stats.totalAlbums],
    [stats.pages, stats.albums, stats.totalAlbums],
    'pages counted once, the same way',
  );
  // Markets and --max-items as the live run: the selected markets' pages, cut after N albums.
  const de = replay({ markets: ['DE'], maxItems: 70 });
  const cut = await de.source.toArray();
  assert.deepEqual(
    cut.map((p: SourcePage) => [p.market, p.offset, p.items.length]),
    [
      ['DE', 0, 50],
      ['DE', 50, 20],
    ],
  );
  assert.deepEqual([de.stats.pages, de.stats.albums], [2, 70]);
});

test('without total it follows next, one page at a time, with the same output', async () => {
  const withTotal = await emulator({ seed: 9, albums: 333 });
  const withoutTotal = await emulator({ seed: 9, albums: 333, omitTotal: true, latencyMs: 5 });
  const expected = (await runToBuffer(withTotal)).bytes;
  const { bytes, report } = await runToBuffer(withoutTotal, { concurrency: 8 });
  assert.ok(bytes.equals(expected));
  assert.equal(report.pages, 7);
  assert.equal(withoutTotal.stats.maxInFlight, 1);
});

test('later pages keep the parameters Spotify put in next (locale=*)', async () => {
  const e = await emulator({ seed: 2, albums: 120 });
  await runToBuffer(e, { concurrency: 2, markets: ['SE'] });
  const received = e.stats.log.map((r) => Object.fromEntries(new URLSearchParams(r.query)));
  // The first page is what the client asks for; the emulator's `next` adds locale=*, which
  // the client never sent, so only a URL built from `next` carries it.
  assert.deepEqual(received[0], { limit: '50', offset: '0', country: 'SE' });
  assert.deepEqual(
    received.slice(1).map(({ offset, limit, ...rest }) => ({ offset, limit, rest })),
    [
      { offset: '50', limit: '50', rest: { country: 'SE', locale: '*' } },
      { offset: '100', limit: '20', rest: { country: 'SE', locale: '*' } },
    ],
  );
  assert.equal(e.stats.byStatus[200], 3);
});

/** One API request straight to the emulator, with a fresh token; the parsed paging object. */
async function page(e: Emulator, pathAndQuery: string): Promise<Record<string, unknown>> {
  const token = await fetch(`${e.url}/api/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: e.clientId,
      client_secret: e.clientSecret,
    }),
  });
  const { access_token } = (await token.json()) as { access_token: string };
  const answer = await fetch(`${e.url}${pathAndQuery}`, {
    headers: { authorization: `Bearer ${access_token}` },
  });
  assert.equal(answer.status, 200, pathAndQuery);
  return ((await answer.json()) as { albums: Record<string, unknown> }).albums;
}

const EMPTY = { items: [], next: null, offset: 0, previous: null, total: 0 };
const emptyPage = (paging: Record<string, unknown>) => {
  const { href, limit, ...rest } = paging;
  return rest;
};

test('emulator: zero albums is one valid empty page, for new-releases and search', async () => {
  const e = await emulator({ albums: 0 });
  assert.deepEqual(emptyPage(await page(e, '/v1/browse/new-releases?limit=50&offset=0')), EMPTY);
  assert.deepEqual(
    emptyPage(await page(e, '/v1/search?q=tag%3Anew&type=album&limit=10&offset=0')),
    EMPTY,
  );
  const withoutTotal = await emulator({ albums: 0, omitTotal: true });
  const { total, ...rest } = EMPTY;
  assert.deepEqual(emptyPage(await page(withoutTotal, '/v1/browse/new-releases')), rest);
});

test('emulator: emptyMarkets empties those markets only', async () => {
  const e = await emulator({ albums: 120, emptyMarkets: ['se'] });
  for (const path of [
    '/v1/browse/new-releases?limit=50&offset=0&country=SE',
    '/v1/search?q=tag%3Anew&type=album&limit=10&offset=0&market=se',
  ]) {
    assert.deepEqual(emptyPage(await page(e, path)), EMPTY, path);
  }
  const other = await page(e, '/v1/browse/new-releases?limit=50&offset=0&country=DE');
  assert.equal(other.total, 120);
  assert.equal((other.items as unknown[]).length, 50);
  assert.equal((await page(e, '/v1/browse/new-releases')).total, 120, 'no market: not empty');
});

test('emulator: emptyQueries match nothing; other queries match the catalogue', async () => {
  const e = await emulator({ albums: 120, emptyQueries: ['year:1800'], cachePages: true });
  const search = (q: string) =>
    page(e, `/v1/search?${new URLSearchParams({ q, type: 'album', limit: '10', offset: '0' })}`);
  assert.equal((await search('tag:new')).total, 120);
  assert.deepEqual(emptyPage(await search('year:1800')), EMPTY);
  assert.equal((await search('year:2026')).total, 120, 'cached pages are per query');
});

test('emulator: hold() keeps matching answers until released; a client that leaves is dropped', async () => {
  const e = await emulator({ albums: 120 });
  const token = (await (
    await fetch(`${e.url}/api/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: e.clientId,
        client_secret: e.clientSecret,
      }),
    })
  ).json()) as { access_token: string };
  const get = (offset: number, signal?: AbortSignal) =>
    fetch(`${e.url}/v1/browse/new-releases?limit=50&offset=${offset}`, {
      headers: { authorization: `Bearer ${token.access_token}` },
      ...(signal ? { signal } : {}),
    });
  const hold = e.hold((r) => r.offset === 50);
  assert.equal((await get(0)).status, 200, 'not matched: answered at once');
  const pending = get(50);
  await e.waitFor(() => hold.held >= 1, { signal: untilSettled(pending, 'it was held') });
  const leaving = new AbortController();
  const abandoned = get(50, leaving.signal).catch(() => 'aborted');
  await e.waitFor(() => hold.held >= 2, { signal: untilSettled(abandoned, 'it was held') });
  assert.deepEqual(
    e.stats.log.map((r) => [r.offset, r.status]),
    [
      [0, 200],
      [50, 0],
      [50, 0],
    ],
    'logged on arrival, status filled in when answered',
  );
  leaving.abort();
  assert.equal(await abandoned, 'aborted');
  await e.waitFor(() => hold.held === 1);
  hold.release();
  assert.equal((await pending).status, 200);
  assert.equal(hold.held, 0);
  assert.deepEqual(
    e.stats.log.map((r) => r.status),
    [200, 200, 0],
    'the request whose client left was never answered',
  );
  assert.equal((await get(50)).status, 200, 'a released hold holds no more');
});

test('emulator: options that cannot make a catalogue are refused', async () => {
  await assert.rejects(startEmulator({ albums: -1 }), /albums must be an integer >= 0, got -1/);
  await assert.rejects(startEmulator({ albums: 1.5 }), /albums must be an integer >= 0/);
  await assert.rejects(startEmulator({ emptyMarkets: ['Sweden'] }), /emptyMarkets .*"Sweden"/);
});

test('a token that expires mid-run is refreshed once and the output is unchanged', async () => {
  const clean = await emulator({ seed: 4, albums: 600 });
  const expected = (await runToBuffer(clean)).bytes;
  const e = await emulator({
    seed: 4,
    albums: 600,
    faults: [{ kind: 'expire-token', offset: 300, times: 1 }],
  });
  const { bytes, report } = await runToBuffer(e, { concurrency: 4 });
  assert.ok(bytes.equals(expected));
  assert.equal(
    e.stats.tokenRequests,
    2,
    'one token, then exactly one refresh shared by all requests',
  );
  assert.equal(report.tokens, 2);
  // Requests already in flight with the old token may each get a 401; they share the refresh.
  assert.ok((e.stats.byStatus[401] ?? 0) >= 1);
});

test('short-lived tokens are refreshed ahead of expiry, not after a 401', async () => {
  const e = await emulator({ seed: 4, albums: 400, tokenTtl: 1, latencyMs: 150 });
  const { report } = await runToBuffer(e, { concurrency: 1 });
  assert.equal(report.albums, 400);
  assert.ok(e.stats.tokenRequests >= 2, `tokens: ${e.stats.tokenRequests}`);
  assert.equal(e.stats.byStatus[401] ?? 0, 0);
});

test('--max-items stops after N albums with a complete output', async () => {
  const e = await emulator({ seed: 3, albums: 1000 });
  const full = (await runToBuffer(e)).bytes.toString();
  const { bytes, report } = await runToBuffer(e, { maxItems: 120, concurrency: 4 });
  assert.equal(report.albums, 120);
  assert.equal(report.retries, 0, 'the pages still in flight were cancelled, not retried');
  const text = bytes.toString();
  assert.ok(full.startsWith(text), 'the cut output is a prefix of the full one');
  assert.ok(text.endsWith('\n'));
});

test('Retry-After: seconds, an HTTP date, or nothing usable', async () => {
  const { parseRetryAfter } = await import('../src/sources/throttle.ts');
  const now = Date.parse('2026-11-25T12:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now), 30);
  assert.equal(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('', now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});
