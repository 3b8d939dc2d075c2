import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { SpotifyBatchError } from '../src/core/errors.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { handler } from '../src/lambda.ts';
import { emulatorEnv } from './helpers/cli.ts';

// The Lambda handler invoked in-process, configured by environment as in a real function.
const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
let emulator: Emulator;
let slow: Emulator;
let s3: LocalS3;

before(async () => {
  emulator = await startEmulator({ seed: 42, albums: 230 });
  slow = await startEmulator({ seed: 42, albums: 20_000, latencyMs: 200 });
  s3 = await startS3();
  await s3.createBucket('lambda-bucket');
  Object.assign(process.env, s3.env, emulatorEnv(emulator), {
    SPOTIFY_BATCH_OUT: 's3://lambda-bucket/albums.csv',
  });
});
after(() => Promise.all([emulator.stop(), slow.stop(), s3.stop()]));

test('the handler pulls into S3 and returns the run report', async () => {
  const report = await handler({}, { getRemainingTimeInMillis: () => 900_000 });
  assert.equal(report.albums, 230);
  assert.equal(report.location, 's3://lambda-bucket/albums.csv');
  assert.equal(report.serializedBytes, golden.length);
  assert.ok((await s3.getObject('lambda-bucket', 'albums.csv'))?.body.equals(golden));
});

test('event options override the environment', async () => {
  const report = await handler({
    options: { out: 's3://lambda-bucket/first-50.csv', maxItems: 50 },
  });
  assert.equal(report.albums, 50);
  assert.ok(await s3.getObject('lambda-bucket', 'first-50.csv'));
});

test('near the deadline it stops, aborts the upload and leaves nothing', async () => {
  process.env.SPOTIFY_API_URL = slow.url;
  process.env.SPOTIFY_ACCOUNTS_URL = slow.url;
  try {
    await assert.rejects(
      handler(
        { options: { out: 's3://lambda-bucket/too-slow.csv' } },
        { getRemainingTimeInMillis: () => 11_500 },
      ),
      (error: unknown) =>
        error instanceof SpotifyBatchError &&
        error.code === 'ERR_INTERRUPTED' &&
        /Lambda deadline/.test(error.message),
    );
    assert.equal(await s3.getObject('lambda-bucket', 'too-slow.csv'), undefined);
    assert.deepEqual(await s3.openUploads('lambda-bucket'), []);
  } finally {
    Object.assign(process.env, emulatorEnv(emulator));
  }
});

/** Runs `body` with some SPOTIFY_BATCH_* variables set (undefined: removed), then restores them. */
async function withEnv(vars: Record<string, string | undefined>, body: () => Promise<void>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  try {
    await body();
  } finally {
    apply(saved);
  }
}

test('no destination at all is a configuration error naming both ways to give one', async () => {
  await withEnv({ SPOTIFY_BATCH_OUT: undefined }, async () => {
    await assert.rejects(
      handler(),
      /name the destination: SPOTIFY_BATCH_OUT or the event's options\.out/,
    );
  });
});

test("the event's options alone suffice (no SPOTIFY_BATCH_OUT)", async () => {
  await withEnv({ SPOTIFY_BATCH_OUT: undefined }, async () => {
    const report = await handler({ options: { out: 's3://lambda-bucket/from-event.csv' } });
    assert.equal(report.albums, 230);
    assert.ok((await s3.getObject('lambda-bucket', 'from-event.csv'))?.body.equals(golden));
  });
});

test('the environment sets markets, format, model and columns, validated like the flags', async () => {
  await withEnv(
    {
      SPOTIFY_BATCH_OUT: 's3://lambda-bucket/env/{market}.ndjson.gz',
      SPOTIFY_BATCH_MARKET: 'SE,DE',
      SPOTIFY_BATCH_FORMAT: 'ndjson',
      SPOTIFY_BATCH_MODEL: 'flat',
      SPOTIFY_BATCH_COLUMNS: 'album_id,artist_id,market',
    },
    async () => {
      const report = await handler();
      assert.deepEqual(
        report.outputs.map((o) => o.location),
        ['s3://lambda-bucket/env/SE.ndjson.gz', 's3://lambda-bucket/env/DE.ndjson.gz'],
      );
      const { gunzipSync } = await import('node:zlib');
      const se = await s3.getObject('lambda-bucket', 'env/SE.ndjson.gz');
      const first = JSON.parse(
        gunzipSync(se?.body ?? Buffer.alloc(0))
          .toString()
          .split('\n')[0] ?? '',
      );
      assert.deepEqual(Object.keys(first), ['album_id', 'artist_id', 'market']);
      assert.equal(first.market, 'SE');
    },
  );
  await withEnv({ SPOTIFY_BATCH_LIMIT: '1e1' }, async () => {
    await assert.rejects(handler(), /SPOTIFY_BATCH_LIMIT must be a whole number, got "1e1"/);
  });
  await withEnv({ SPOTIFY_BATCH_MODEL: 'snowflake' }, async () => {
    await assert.rejects(handler(), /option --model must be flat or star, got snowflake/);
  });
});

test('SPOTIFY_BATCH_DATE (or the event’s date) backfills a past day’s {date}', async () => {
  await withEnv(
    {
      SPOTIFY_BATCH_OUT: 's3://lambda-bucket/dt={date}/albums.csv',
      SPOTIFY_BATCH_DATE: '2026-11-30',
    },
    async () => {
      const report = await handler();
      assert.equal(report.location, 's3://lambda-bucket/dt=2026-11-30/albums.csv');
      const fromEvent = await handler({ options: { date: '2026-11-29' } });
      assert.equal(fromEvent.location, 's3://lambda-bucket/dt=2026-11-29/albums.csv');
    },
  );
  await withEnv({ SPOTIFY_BATCH_DATE: '2026-02-30' }, async () => {
    await assert.rejects(
      handler(),
      /option --date must be a calendar day YYYY-MM-DD, got "2026-02-30"/,
    );
  });
});
