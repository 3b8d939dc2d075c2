/**
 * S3 failing at each step of an upload, through the local S3's fault injection: every case ends
 * with the documented exit status, nothing new in the bucket, no multipart upload left open, and
 * AbortMultipartUpload sent exactly once when a multipart upload had been created.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortMultipartUploadCommand } from '@aws-sdk/client-s3';
import type { LocalS3, S3FaultRule } from '../scripts/local-s3.ts';
import type { Emulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { runToBuffer } from './helpers/run.ts';
import { emulator, localS3 } from './helpers/servers.ts';

const BUCKET = 'faults';
const s3 = localS3(BUCKET);
const small = emulator({ seed: 42, albums: 230 });
/** About 11 MiB of CSV: three parts of 5 MiB. */
const medium = emulator({ seed: 9, albums: 36_000, cachePages: true });

interface Outcome {
  status: number | null;
  stderr: string;
  /** S3 calls of each kind during the run. */
  count: (kind: Parameters<LocalS3['count']>[0]) => number;
  /** Spotify API requests during the run. */
  apiRequests: number;
}

/** One CLI run to `key` with `rule` active; asserts nothing was left behind. */
async function runWithFault(
  emulator: Emulator,
  key: string,
  rule: S3FaultRule | S3FaultRule[] | undefined,
  extra: string[] = [],
): Promise<Outcome> {
  const faults = (rule === undefined ? [] : [rule].flat()).map((r) => s3.fault(r));
  const mark = s3.calls.length;
  const api = emulator.stats.apiRequests;
  try {
    const result = await runCli(
      ['new-releases', '--out', `s3://${BUCKET}/${key}`, '--s3-part-size', '5', ...extra],
      { env: { ...emulatorEnv(emulator), ...s3.env } },
    );
    for (const fault of faults) assert.ok(fault.fired >= 1, 'every fault fired');
    assert.deepEqual(await s3.openUploads(BUCKET), [], 'no multipart upload left open');
    return {
      status: result.status,
      stderr: result.stderr,
      // The data's own upload: a preflight's probe (created and aborted empty) is not counted.
      count: (kind) => s3.count(kind, mark, { probes: false }),
      apiRequests: emulator.stats.apiRequests - api,
    };
  } finally {
    for (const fault of faults) fault.remove();
  }
}

const keys = async () => s3.listKeys(BUCKET);

test('a part that fails for good (500 after every retry): exit 5, no object, one abort', async () => {
  const r = await runWithFault(medium, 'part500.csv', {
    kind: 'part',
    nth: 2,
    status: 500,
    times: Infinity,
  });
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /error: S3 error writing s3:\/\/faults\/part500\.csv: InternalError/);
  assert.ok(!(await keys()).includes('part500.csv'));
  assert.equal(r.count('create'), 1);
  assert.equal(r.count('abort'), 1);
  assert.equal(r.count('complete'), 0);
});

test('the last part (sent at the end of the data) fails for good: exit 5, no object, one abort, no Complete', async () => {
  const r = await runWithFault(medium, 'lastpart.csv', {
    kind: 'part',
    nth: 3,
    status: 500,
    times: Infinity,
  });
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /error: S3 error writing s3:\/\/faults\/lastpart\.csv: InternalError/);
  assert.ok(!(await keys()).includes('lastpart.csv'));
  assert.equal(r.count('abort'), 1);
  assert.equal(r.count('complete'), 0);
});

test('AbortMultipartUpload failing too: the part error is what the run reports, exit 5, and it ends', async () => {
  const partFault = s3.fault({ kind: 'part', nth: 2, status: 500, times: Infinity });
  const refuseAborts = () =>
    s3.fault({ kind: 'abort', status: 403, times: Infinity, staged: true });
  let abortFault = refuseAborts();
  /** What a lifecycle rule would do to the upload left behind (the next run starts clean). */
  const removeLeftovers = async () => {
    abortFault.remove();
    for (const UploadId of await s3.openUploads(BUCKET)) {
      await s3.client.send(
        new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'abortfails.csv', UploadId }),
      );
    }
    abortFault = refuseAborts();
  };
  const pull = (...extra: string[]) =>
    runCli(
      ['new-releases', '--out', `s3://${BUCKET}/abortfails.csv`, '--s3-part-size', '5', ...extra],
      { env: { ...emulatorEnv(medium), ...s3.env } },
    );
  try {
    const result = await pull();
    assert.equal(result.status, 5, result.stderr);
    assert.match(
      result.stderr,
      /error: S3 error writing s3:\/\/faults\/abortfails\.csv: InternalError/,
    );
    assert.ok(!(await keys()).includes('abortfails.csv'));
    assert.ok(abortFault.fired >= 1, 'the abort was tried');
    // The upload left behind is named, with the command that removes it, before the error.
    let open = await s3.openUploads(BUCKET);
    assert.equal(open.length, 1);
    const warning =
      /warning: could not abort the multipart upload of s3:\/\/faults\/abortfails\.csv \(AccessDenied: .*\): its parts stay stored, and billed, until `aws s3api abort-multipart-upload --bucket faults --key abortfails\.csv --upload-id (\S+)`/.exec(
        result.stderr,
      );
    assert.ok(warning, result.stderr);
    assert.equal(warning[1], open[0]);
    assert.ok(result.stderr.indexOf('warning:') < result.stderr.indexOf('error:'), result.stderr);
    await removeLeftovers();

    // --quiet keeps the warning; JSON logs get it as an event, before the failed report.
    const quiet = await pull('--quiet');
    assert.equal(quiet.status, 5, quiet.stderr);
    assert.match(quiet.stderr, /^spotify-batch: warning: could not abort the multipart upload/);
    await removeLeftovers();
    const json = await pull('--log-format', 'json');
    assert.equal(json.status, 5, json.stderr);
    const events = json.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; uploadId?: string; ok?: boolean });
    open = await s3.openUploads(BUCKET);
    const abort = events.findIndex((e) => e.event === 'abort-failed');
    assert.ok(abort >= 0, json.stderr);
    assert.equal(events[abort]?.uploadId, open[0]);
    assert.equal(events.at(-1)?.event, 'report');
    assert.equal(events.at(-1)?.ok, false);
  } finally {
    partFault.remove();
    await removeLeftovers();
    abortFault.remove();
  }
});

test('a part refused with 403: exit 5 naming the permission, one abort, the fetching stopped at once', async () => {
  // One part in flight, so the upload reads no further ahead than the part it is sending.
  const r = await runWithFault(
    medium,
    'part403.csv',
    { kind: 'part', status: 403, times: Infinity },
    ['--s3-queue-size', '1'],
  );
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /access denied writing s3:\/\/faults\/part403\.csv/);
  assert.ok(!(await keys()).includes('part403.csv'));
  assert.equal(r.count('abort'), 1);
  // 720 pages in all, the first part about 330 of them: the failed call stopped the source.
  assert.ok(r.apiRequests < 500, `fetched ${r.apiRequests} pages`);
});

test('CompleteMultipartUpload fails at publish: exit 5, nothing published, one abort', async () => {
  const r = await runWithFault(medium, 'complete.csv', {
    kind: 'complete',
    status: 500,
    times: Infinity,
  });
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /no output was published: s3:\/\/faults\/complete\.csv \(S3 error/);
  assert.ok(!(await keys()).includes('complete.csv'));
  assert.ok(r.count('part') >= 3);
  assert.equal(r.count('abort'), 1);
});

test('the single PutObject of a small output refused: exit 5, no object, nothing to abort', async () => {
  const r = await runWithFault(small, 'put.csv', { kind: 'put', status: 403, times: Infinity });
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /access denied writing s3:\/\/faults\/put\.csv/);
  assert.ok(!(await keys()).includes('put.csv'));
  assert.equal(r.count('create'), 0);
  assert.equal(r.count('abort'), 0);
});

test('CreateMultipartUpload refused: exit 5, no object, nothing to abort', async () => {
  const r = await runWithFault(medium, 'create.csv', {
    kind: 'create',
    status: 403,
    times: Infinity,
  });
  assert.equal(r.status, 5, r.stderr);
  assert.ok(!(await keys()).includes('create.csv'));
  assert.equal(r.count('part'), 0);
  assert.equal(r.count('abort'), 0);
});

test('HeadBucket failing: exit 5 before any Spotify request', async () => {
  const r = await runWithFault(small, 'head.csv', {
    kind: 'headBucket',
    status: 500,
    times: Infinity,
  });
  assert.equal(r.status, 5, r.stderr);
  assert.equal(r.apiRequests, 0);
  assert.equal(r.count('put'), 0);
});

test('HeadBucket answering 403 (no s3:ListBucket) is not fatal: the upload goes on', async () => {
  const expected = (await runToBuffer(small)).bytes;
  const r = await runWithFault(small, 'head403.csv', { kind: 'headBucket', status: 403 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok((await s3.getObject(BUCKET, 'head403.csv'))?.body.equals(expected));
});

test('a slow S3 (every part delayed) and a 500 that a retry fixes: the object is exact', async () => {
  const expected = (await runToBuffer(medium)).bytes;
  // Faults act in the order added: the second part fails once, every other part is slow.
  const r = await runWithFault(medium, 'slow.csv', [
    { kind: 'part', nth: 2, status: 500 },
    { kind: 'part', delayMs: 150, times: Infinity },
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok((await s3.getObject(BUCKET, 'slow.csv'))?.body.equals(expected));
  assert.equal(r.count('part'), 4, 'three parts and one retry');
  assert.equal(r.count('abort'), 0);
});

test('star model: one table failing leaves the previous three tables byte-identical', async () => {
  const prefix = 'star/';
  const first = await runWithFault(small, prefix, undefined, ['--model', 'star']);
  assert.equal(first.status, 0, first.stderr);
  const tables = ['star/bridge_album_artist.csv', 'star/dim_album.csv', 'star/dim_artist.csv'];
  const before = new Map<string, Buffer | undefined>();
  for (const key of tables) before.set(key, (await s3.getObject(BUCKET, key))?.body);
  assert.ok([...before.values()].every((body) => body !== undefined && body.length > 0));

  // dim_album of the larger catalogue is a multipart upload; its first part is refused.
  const r = await runWithFault(
    medium,
    prefix,
    { kind: 'part', key: /dim_album/, status: 403, times: Infinity },
    ['--model', 'star'],
  );
  assert.equal(r.status, 5, r.stderr);
  for (const key of tables) {
    assert.deepEqual((await s3.getObject(BUCKET, key))?.body, before.get(key), key);
  }
  assert.ok((await keys()).includes('star/_manifest.json'), 'the previous manifest stays');
  assert.equal(r.count('put'), 0, 'the other tables were held, never sent');
  assert.equal(r.count('abort'), 1);
});
