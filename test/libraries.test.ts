import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';

// Issue 21's "done when": a CSV pull to S3 of more than one part goes through the card's
// libraries, csv-stringify for the bytes and lib-storage's Upload for the parts, and not through
// code of our own that merely looks like them. The built CLI runs with a hook that records every
// module it resolves; the packages must be among them.

const BUCKET = 'libraries';
const hook = new URL('./helpers/loaded-modules.mjs', import.meta.url).href;
let s3: LocalS3;
let emulator: Emulator;
let tmp: string;

before(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
  // About 6 MiB of CSV: two 5 MiB parts.
  emulator = await startEmulator({ seed: 8, albums: 20_000, cachePages: true });
  tmp = await mkdtemp(join(tmpdir(), 'spotify-batch-libraries-'));
});
after(async () => {
  await Promise.all([s3.stop(), emulator.stop()]);
  await rm(tmp, { recursive: true, force: true });
});

/** The packages (by their directory under node_modules) whose modules a run resolved. */
const packagesIn = (urls: string[]) =>
  new Set(
    urls.flatMap((url) => {
      const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
      return m ? [m[1] as string] : [];
    }),
  );

test('a CSV pull to S3 of two parts loads @aws-sdk/lib-storage and csv-stringify', async () => {
  const file = join(tmp, 'modules.txt');
  const before = s3.requests.length;
  const result = await runCli(
    ['new-releases', '--out', `s3://${BUCKET}/albums.csv`, '--concurrency', '8'],
    {
      env: {
        ...emulatorEnv(emulator),
        ...s3.env,
        NODE_OPTIONS: `--import ${hook}`,
        LOADED_MODULES_FILE: file,
      },
    },
  );
  assert.equal(result.status, 0, result.stderr);
  const parts = s3.requests.slice(before).filter((c) => c === 'PUT part').length;
  assert.ok(parts >= 2, `the object has ${parts} part(s); the test needs a multipart upload`);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
  const loaded = packagesIn((await readFile(file, 'utf8')).split('\n'));
  for (const name of ['@aws-sdk/lib-storage', 'csv-stringify']) {
    assert.ok(loaded.has(name), `${name} was not loaded; loaded: ${[...loaded].sort().join(', ')}`);
  }
});
