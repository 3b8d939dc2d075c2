import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { checkEventOptions } from '../src/lambda.ts';
import { emulatorEnv } from './helpers/cli.ts';
import { invokeLambda, reportOf } from './helpers/lambda.ts';

// The Lambda handler configured by environment as in a real function: each invocation is a
// process of its own with the function's environment (test/helpers/lambda.ts).
const golden = await readFile(new URL('./fixtures/new-releases-seed42.csv', import.meta.url));
let emulator: Emulator;
let s3: LocalS3;
/** The function's configuration: S3, Spotify, and where it writes. */
let env: NodeJS.ProcessEnv;

before(async () => {
  emulator = await startEmulator({ seed: 42, albums: 230 });
  s3 = await startS3();
  await s3.createBucket('lambda-bucket');
  env = {
    ...s3.env,
    ...emulatorEnv(emulator),
    SPOTIFY_BATCH_OUT: 's3://lambda-bucket/albums.csv',
  };
});
after(() => Promise.all([emulator.stop(), s3.stop()]));

test('the handler pulls into S3 and returns the run report', async () => {
  const report = reportOf(await invokeLambda(env, {}, 900_000));
  assert.equal(report.albums, 230);
  assert.equal(report.location, 's3://lambda-bucket/albums.csv');
  assert.equal(report.serializedBytes, golden.length);
  assert.ok((await s3.getObject('lambda-bucket', 'albums.csv'))?.body.equals(golden));
});

test('event options override the environment', async () => {
  const report = reportOf(
    await invokeLambda(env, { options: { out: 's3://lambda-bucket/first-50.csv', maxItems: 50 } }),
  );
  assert.equal(report.albums, 50);
  assert.ok(await s3.getObject('lambda-bucket', 'first-50.csv'));
});

test('near the deadline it stops, aborts the upload and leaves nothing', async () => {
  // Every page after the first is held: the run is still pulling when the deadline nears,
  // however fast or slow the machine (the handler's own timer is what is under test).
  const stuck = await startEmulator({ seed: 42, albums: 20_000 });
  const hold = stuck.hold((r) => r.offset > 0);
  try {
    const invocation = await invokeLambda(
      { ...env, ...emulatorEnv(stuck) },
      { options: { out: 's3://lambda-bucket/too-slow.csv' } },
      // 6 s past the handler's abort margin: time for the process to start and its first page
      // to be answered on a loaded machine, so the deadline finds the run holding a page.
      16_000,
    );
    assert.equal(invocation.ok, false);
    assert.ok(!invocation.ok);
    assert.ok(invocation.error.spotifyBatchError, invocation.error.message);
    assert.equal(invocation.error.code, 'ERR_INTERRUPTED');
    assert.match(invocation.error.message, /Lambda deadline/);
    assert.ok(
      stuck.stats.log.some((r) => r.offset > 0 && r.status === 0),
      'the run was waiting for a page when it stopped',
    );
    assert.equal(await s3.getObject('lambda-bucket', 'too-slow.csv'), undefined);
    assert.deepEqual(await s3.openUploads('lambda-bucket'), []);
  } finally {
    hold.release();
    await stuck.stop();
  }
});

/** The function's environment with some SPOTIFY_BATCH_* variables set (undefined: removed). */
const withEnv = (vars: Record<string, string | undefined>): NodeJS.ProcessEnv => {
  const changed: NodeJS.ProcessEnv = { ...env, ...vars };
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete changed[k];
  return changed;
};

/** The message of an invocation that must have failed. */
const failure = async (invocation: ReturnType<typeof invokeLambda>) => {
  const outcome = await invocation;
  assert.ok(!outcome.ok, 'the handler was to fail');
  return outcome.error.message;
};

test('no destination at all is a configuration error naming both ways to give one', async () => {
  assert.match(
    await failure(invokeLambda(withEnv({ SPOTIFY_BATCH_OUT: undefined }))),
    /name the destination: SPOTIFY_BATCH_OUT or the event's options\.out/,
  );
});

test("the event's options alone suffice (no SPOTIFY_BATCH_OUT)", async () => {
  const report = reportOf(
    await invokeLambda(withEnv({ SPOTIFY_BATCH_OUT: undefined }), {
      options: { out: 's3://lambda-bucket/from-event.csv' },
    }),
  );
  assert.equal(report.albums, 230);
  assert.ok((await s3.getObject('lambda-bucket', 'from-event.csv'))?.body.equals(golden));
});

test('the environment sets markets, format, model and columns, validated like the flags', async () => {
  const report = reportOf(
    await invokeLambda(
      withEnv({
        SPOTIFY_BATCH_OUT: 's3://lambda-bucket/env/{market}.ndjson.gz',
        SPOTIFY_BATCH_MARKET: 'SE,DE',
        SPOTIFY_BATCH_FORMAT: 'ndjson',
        SPOTIFY_BATCH_MODEL: 'flat',
        SPOTIFY_BATCH_COLUMNS: 'album_id,artist_id,market',
      }),
    ),
  );
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
  assert.match(
    await failure(invokeLambda(withEnv({ SPOTIFY_BATCH_LIMIT: '1e1' }))),
    /SPOTIFY_BATCH_LIMIT must be a whole number, got "1e1"/,
  );
  assert.match(
    await failure(invokeLambda(withEnv({ SPOTIFY_BATCH_MODEL: 'snowflake' }))),
    /option --model must be flat or star, got snowflake/,
  );
});

test('SPOTIFY_BATCH_DATE (or the event’s date) backfills a past day’s {date}', async () => {
  const dated = withEnv({
    SPOTIFY_BATCH_OUT: 's3://lambda-bucket/dt={date}/albums.csv',
    SPOTIFY_BATCH_DATE: '2026-11-30',
  });
  const report = reportOf(await invokeLambda(dated, {}));
  assert.equal(report.location, 's3://lambda-bucket/dt=2026-11-30/albums.csv');
  const fromEvent = reportOf(await invokeLambda(dated, { options: { date: '2026-11-29' } }));
  assert.equal(fromEvent.location, 's3://lambda-bucket/dt=2026-11-29/albums.csv');
  assert.match(
    await failure(invokeLambda(withEnv({ SPOTIFY_BATCH_DATE: '2026-02-30' }))),
    /option --date must be a calendar day YYYY-MM-DD, got "2026-02-30"/,
  );
});

test('the environment sets state, new-only, raw, report and max-rate, validated like the flags', async () => {
  const incremental = withEnv({
    SPOTIFY_BATCH_OUT: 's3://lambda-bucket/incr/{run_id}/albums.csv',
    SPOTIFY_BATCH_STATE: 's3://lambda-bucket/incr/state.tsv',
    SPOTIFY_BATCH_NEW_ONLY: 'true',
    SPOTIFY_BATCH_RAW: 's3://lambda-bucket/incr/raw/{run_id}.ndjson.gz',
    SPOTIFY_BATCH_REPORT: 's3://lambda-bucket/incr/report/{run_id}.html',
    SPOTIFY_BATCH_MAX_RATE: '50',
  });
  const first = reportOf(await invokeLambda(incremental));
  assert.equal(first.state?.location, 's3://lambda-bucket/incr/state.tsv');
  assert.equal(first.state?.new, 230);
  assert.ok(first.rate !== null && first.rate <= 50, `rate ${first.rate}`);
  for (const location of [first.raw, first.report]) {
    const key = location?.replace('s3://lambda-bucket/', '') ?? 'none';
    assert.ok(await s3.getObject('lambda-bucket', key), `${location} written`);
  }
  assert.match(first.raw ?? '', /^s3:\/\/lambda-bucket\/incr\/raw\/.+\.ndjson\.gz$/);
  // New-only: the next run writes only what the state has not seen, here nothing.
  const second = reportOf(await invokeLambda(incremental));
  assert.equal(second.state?.new, 0);
  assert.equal(second.state?.seen, 230);
  assert.equal(second.rows, 0);
  for (const [vars, message] of [
    [{ SPOTIFY_BATCH_NEW_ONLY: 'yes' }, /SPOTIFY_BATCH_NEW_ONLY must be true or false, got yes/],
    [{ SPOTIFY_BATCH_MAX_RATE: 'fast' }, /SPOTIFY_BATCH_MAX_RATE must be a number, got "fast"/],
    [{ SPOTIFY_BATCH_MAX_RATE: '0' }, /option --max-rate must be a number > 0, got 0/],
    [{ SPOTIFY_BATCH_NEW_ONLY: 'true' }, /option --new-only needs --state LOCATION/],
    [
      { SPOTIFY_BATCH_RAW: 's3://lambda-bucket/raw.json' },
      /option --raw: the raw landing is NDJSON/,
    ],
    [
      { SPOTIFY_BATCH_REPORT: 's3://lambda-bucket/report.txt' },
      /option --report: the page is HTML/,
    ],
  ] as const) {
    assert.match(await failure(invokeLambda(withEnv(vars))), message);
  }
  assert.match(
    await failure(
      invokeLambda(incremental, {
        options: { newOnly: 'false' } as unknown as { newOnly: boolean },
      }),
    ),
    /the event's options\.newOnly must be a boolean, got "false"/,
  );
});

test("every option of an event is checked against its type, from one table of the options' types", () => {
  for (const [options, message] of [
    [{ s3ForcePathStyle: 'false' }, /options\.s3ForcePathStyle must be a boolean, got "false"/],
    [{ gzip: 1 }, /options\.gzip must be a boolean, got 1/],
    [{ limit: '50' }, /options\.limit must be a number, got "50"/],
    [{ out: 42 }, /options\.out must be a string, got 42/],
    [{ markets: 'SE,US' }, /options\.markets must be a list of strings, got "SE,US"/],
    [{ from: ['a', 1] }, /options\.from must be a list of strings, got \["a",1\]/],
    [{ s3Tags: ['team=data'] }, /options\.s3Tags must be an object of strings/],
    [{ s3Tags: { team: 1 } }, /options\.s3Tags must be an object of strings/],
    // Only the options' own names: a mistyped one, or one off Object's prototype, is refused.
    [{ outt: 'a.csv' }, /^the event's options\.outt is not an option \(did you mean out\?\)$/],
    [{ constructor: 'x' }, /^the event's options\.constructor is not an option/],
    [{ outputs: ['a.csv'] }, /^the event's options\.outputs is not an option/],
  ] as const) {
    assert.throws(() => checkEventOptions(options), { code: 'ERR_USAGE', message });
  }
  checkEventOptions({ s3ForcePathStyle: false, markets: ['SE'], s3Tags: { team: 'data' } });
});

test("an event's options that are not an object are refused, not spread", async () => {
  for (const options of ['out', ['out'], 7, null]) {
    const invocation = await invokeLambda(env, { options });
    assert.ok(!invocation.ok);
    assert.equal(
      invocation.error.message,
      `the event's options must be an object, got ${JSON.stringify(options)}`,
    );
  }
});
