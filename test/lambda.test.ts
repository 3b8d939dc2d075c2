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
  assert.equal(report.bytes, golden.length);
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

test('a missing SPOTIFY_BATCH_OUT is a configuration error', async () => {
  const out = process.env.SPOTIFY_BATCH_OUT;
  delete process.env.SPOTIFY_BATCH_OUT;
  try {
    await assert.rejects(handler(), /SPOTIFY_BATCH_OUT must name the destination/);
  } finally {
    process.env.SPOTIFY_BATCH_OUT = out;
  }
});
