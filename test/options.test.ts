import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTRACT_COLUMNS } from '../src/core/columns.ts';
import { normalizeMarkets } from '../src/core/options/markets.ts';
import { normalizeOptions } from '../src/core/options/normalize.ts';
import { normalizePacing } from '../src/core/options/pacing.ts';
import { normalizeS3Options } from '../src/core/options/s3.ts';
import { normalizeState } from '../src/core/options/state.ts';
import { DEFAULTS, type Options } from '../src/core/options.ts';
import { resolveOptions } from '../src/pipeline.ts';

const credentials = { SPOTIFY_CLIENT_ID: 'id', SPOTIFY_CLIENT_SECRET: 'secret' };

test('every concern is fully defaulted from DEFAULTS, grouped as the stages take it', () => {
  assert.deepEqual(normalizeOptions({}, credentials), {
    source: {
      via: DEFAULTS.via,
      query: DEFAULTS.query,
      limit: DEFAULTS.limit,
      maxItems: Number.POSITIVE_INFINITY,
      from: [],
      spotify: {
        apiUrl: DEFAULTS.apiUrl,
        accountsUrl: DEFAULTS.accountsUrl,
        clientId: 'id',
        clientSecret: 'secret',
      },
    },
    markets: { list: [], perMarket: false, dedupe: false, onMarketError: DEFAULTS.onMarketError },
    outputs: {
      out: DEFAULTS.out,
      model: DEFAULTS.model,
      format: 'csv',
      gzip: false,
      columns: [...CONTRACT_COLUMNS],
      csvEscapeFormulas: DEFAULTS.csvEscapeFormulas,
      parquetRowGroupRows: DEFAULTS.parquetRowGroupRows,
      rejects: undefined,
      maxRejects: Number.POSITIVE_INFINITY,
      raw: undefined,
      manifest: false,
      digest: false,
    },
    state: { location: undefined, newOnly: false, ttlDays: DEFAULTS.stateTtlDays, date: undefined },
    report: {
      location: undefined,
      settings: {
        via: DEFAULTS.via,
        query: null,
        apiUrl: DEFAULTS.apiUrl,
        markets: [],
        model: DEFAULTS.model,
        format: 'csv',
        gzip: false,
        newOnly: false,
      },
    },
    pacing: {
      concurrency: DEFAULTS.concurrency,
      maxRetries: DEFAULTS.maxRetries,
      retryDelay: DEFAULTS.retryDelay,
      maxRetryAfter: DEFAULTS.maxRetryAfter,
      maxRateLimitWait: DEFAULTS.maxRateLimitWait,
      maxRate: Number.POSITIVE_INFINITY,
      requestTimeout: DEFAULTS.requestTimeout,
    },
    s3: {
      partSize: DEFAULTS.s3PartSize,
      queueSize: DEFAULTS.s3QueueSize,
      endpoint: undefined,
      forcePathStyle: false,
      region: undefined,
      sse: undefined,
      sseKmsKeyId: undefined,
      storageClass: undefined,
      tags: {},
    },
  });
});

test('each concern normalizes alone, from its own options', () => {
  assert.deepEqual(normalizeState({ state: 's.tsv', newOnly: true, date: '2026-01-31' }), {
    location: 's.tsv',
    newOnly: true,
    ttlDays: DEFAULTS.stateTtlDays,
    date: '2026-01-31',
  });
  assert.equal(normalizePacing({ concurrency: 8, maxRate: 2.5 }).concurrency, 8);
  assert.equal(normalizePacing({ maxRate: 2.5 }).maxRate, 2.5);
  // The S3 settings need no credentials and no output: `unlock` and a replay's first look use them.
  assert.deepEqual(normalizeS3Options({ s3Endpoint: 'http://127.0.0.1:9/' }, {}), {
    ...normalizeS3Options({}, {}),
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
  });
  // A replay without --market takes its input's markets, as if typed.
  assert.deepEqual(
    normalizeMarkets({ from: ['raw.ndjson.gz'], out: 'x/{market}.csv' }, ['SE', 'DE']),
    { list: ['SE', 'DE'], perMarket: true, dedupe: false, onMarketError: 'fail' },
  );
});

test('what one concern decides from another is decided once, in the normalizer', () => {
  const o = normalizeOptions(
    {
      markets: ['SE', 'DE'],
      out: 'all.csv',
      report: 'r.html',
      via: 'search',
      query: 'year:2026',
    },
    credentials,
  );
  // Several markets in one output: dedupe and the market column.
  assert.equal(o.markets.dedupe, true);
  assert.deepEqual(o.outputs.columns, [...CONTRACT_COLUMNS, 'market']);
  // The report lists each output's SHA-256: the encoders hash.
  assert.equal(o.outputs.digest, true);
  assert.deepEqual(o.report.settings, {
    via: 'search',
    query: 'year:2026',
    apiUrl: DEFAULTS.apiUrl,
    markets: ['SE', 'DE'],
    model: 'flat',
    format: 'csv',
    gzip: false,
    newOnly: false,
  });
  const perMarket = normalizeOptions({ markets: ['SE', 'DE'], out: 'm/{market}.csv' }, credentials);
  assert.equal(perMarket.markets.dedupe, false);
  assert.equal(perMarket.outputs.manifest, true);
  assert.equal(perMarket.outputs.digest, true);
});

test('a bad flag is reported before missing credentials', () => {
  for (const [options, message] of [
    [{ limit: 0 }, 'option --limit must be an integer 1..50, got 0'],
    [{ date: '2026-02-30' }, 'option --date must be a calendar day YYYY-MM-DD, got "2026-02-30"'],
    [{ s3QueueSize: 65 }, 'option --s3-queue-size must be an integer 1..64, got 65'],
    [{ out: 'a.txt' }, /^option --out: cannot tell the format from \.txt/],
  ] as const) {
    assert.throws(() => normalizeOptions(options, {}), { code: 'ERR_USAGE', message });
  }
  assert.throws(() => normalizeOptions({}, {}), {
    code: 'ERR_USAGE',
    message:
      'missing Spotify credentials: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (or pass --env-file FILE)',
  });
});

test('options already normalized are taken as they are (run() and check() accept either)', async () => {
  const o = normalizeOptions({ out: 'a.csv' }, credentials);
  assert.equal(await resolveOptions(o, {}), o);
  // --out's own syntax comes before what the markets say of it.
  assert.throws(() => normalizeOptions({ out: 'x/{market}/{bogus}.csv' }, credentials), {
    code: 'ERR_USAGE',
    message: /^option --out: unknown placeholder \{bogus\}/,
  });
  assert.throws(() => normalizeOptions({ out: '', onMarketError: 'skip' }, credentials), {
    code: 'ERR_USAGE',
    message: /^option --out is empty/,
  });
  // Only what normalizeOptions returned: an object that merely has the shape's keys is checked.
  const shaped = { out: 'a.csv', limit: 0, outputs: ['b.csv'] } as unknown as Options;
  await assert.rejects(resolveOptions(shaped, credentials), {
    code: 'ERR_USAGE',
    message: 'option --limit must be an integer 1..50, got 0',
  });
});
