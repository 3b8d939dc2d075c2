import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once as onceEvent } from 'node:events';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3RequestKind } from '../scripts/local-s3.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3 } from './helpers/servers.ts';
import { untilSettled } from './helpers/wait.ts';

const BUCKET = 'faults';
const PART = 5 * 1024 * 1024;
const s3 = localS3(BUCKET);
/** A client that does not retry, so one command is one request (made at first use, in a test). */
let onceClient: S3Client | undefined;
const once = () =>
  (onceClient ??= new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  }));
after(() => onceClient?.destroy());

interface SdkError {
  name: string;
  message: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/** The error `promise` rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise;
  } catch (error) {
    return error as SdkError;
  }
  assert.fail('expected the call to fail');
}

const put = (key: string, client = s3.client, body: string | Buffer = 'x') =>
  client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

/** A two-part upload (5 MiB + 1 byte), one part at a time. */
const twoParts = (key: string) =>
  new Upload({
    client: s3.client,
    params: { Bucket: BUCKET, Key: key, Body: Buffer.alloc(PART + 1, 'a') },
    partSize: PART,
    queueSize: 1,
  });

test('every request is logged with the kind of its operation', async () => {
  const from = s3.calls.length;
  await s3.client.send(new HeadBucketCommand({ Bucket: BUCKET }));
  await put('log/small.csv');
  await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'log/small.csv' }));
  await (
    await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'log/small.csv' }))
  ).Body?.transformToByteArray();
  await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'log/small.csv' }));
  await twoParts('log/big.csv').done();
  await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  await s3.openUploads(BUCKET);
  const { UploadId } = await s3.client.send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'log/aborted.csv' }),
  );
  await s3.client.send(
    new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'log/aborted.csv', UploadId }),
  );
  assert.deepEqual(
    s3.calls.slice(from).map((c) => `${c.method} ${c.kind} ${c.key}`),
    [
      'HEAD headBucket ',
      'PUT put log/small.csv',
      'HEAD head log/small.csv',
      'GET get log/small.csv',
      'DELETE delete log/small.csv',
      'POST create log/big.csv',
      'PUT part log/big.csv',
      'PUT part log/big.csv',
      'POST complete log/big.csv',
      'GET list ',
      'POST create log/aborted.csv',
      'DELETE abort log/aborted.csv',
    ],
  );
  // s3.openUploads reads the folders directly: no request.
  assert.equal(s3.count('put', from), 1);
  assert.equal(s3.count('part', from), 2);
  assert.equal(s3.count('abort', from), 1);
  // The `METHOD query-kind` strings keep their meaning.
  const legacy = s3.requests.slice(from);
  assert.equal(legacy.length, s3.calls.length - from);
  for (const s of ['PUT object', 'POST uploads', 'PUT part', 'POST complete', 'DELETE upload'])
    assert.ok(legacy.includes(s), s);
  assert.ok(legacy.includes('HEAD bucket'), 'HeadBucket is not an object request');
});

/** One case per fault kind: the request it fails, and what else must hold afterwards. */
const cases: {
  kind: S3RequestKind;
  status: number;
  /** The error name the SDK gives (HEAD answers have no body, so no code). */
  name?: string;
  act(key: string): Promise<unknown>;
  check?(key: string, from: number): Promise<void>;
}[] = [
  {
    kind: 'put',
    status: 500,
    name: 'InternalError',
    act: (key) => put(key),
    check: async (key) => assert.equal(await s3.getObject(BUCKET, key), undefined),
  },
  {
    kind: 'create',
    status: 503,
    name: 'SlowDown',
    act: (key) => twoParts(key).done(),
    check: async (key, from) => {
      assert.equal(s3.count('part', from), 0);
      assert.equal(await s3.getObject(BUCKET, key), undefined);
    },
  },
  {
    kind: 'part',
    status: 500,
    name: 'InternalError',
    act: (key) => twoParts(key).done(),
    check: async (key, from) => {
      assert.equal(s3.count('abort', from), 1, 'AbortMultipartUpload sent exactly once');
      assert.equal(s3.count('complete', from), 0);
      assert.deepEqual(await s3.openUploads(BUCKET), []);
      assert.equal(await s3.getObject(BUCKET, key), undefined);
    },
  },
  {
    kind: 'complete',
    status: 500,
    name: 'InternalError',
    act: (key) => twoParts(key).done(),
    check: async (key, from) => {
      assert.equal(s3.count('part', from), 2);
      assert.equal(s3.count('abort', from), 1, 'AbortMultipartUpload sent exactly once');
      assert.deepEqual(await s3.openUploads(BUCKET), []);
      assert.equal(await s3.getObject(BUCKET, key), undefined);
    },
  },
  {
    kind: 'abort',
    status: 403,
    name: 'AccessDenied',
    act: async (key) => {
      const { UploadId } = await s3.client.send(
        new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }),
      );
      return s3.client.send(
        new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }),
      );
    },
    check: async (key) => {
      const [open] = await s3.openUploads(BUCKET);
      assert.ok(open, 'the refused abort left the upload open');
      s3.clearFaults();
      await s3.client.send(
        new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: open }),
      );
      assert.deepEqual(await s3.openUploads(BUCKET), []);
    },
  },
  {
    kind: 'delete',
    status: 403,
    name: 'AccessDenied',
    act: async (key) => {
      await put(key);
      return s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    },
    check: async (key) => assert.ok(await s3.getObject(BUCKET, key), 'the object is still there'),
  },
  {
    kind: 'headBucket',
    status: 403,
    act: () => s3.client.send(new HeadBucketCommand({ Bucket: BUCKET })),
  },
];

for (const c of cases) {
  test(`a ${c.status} fault on ${c.kind} fails that request, with an S3 error`, async (t) => {
    t.after(() => s3.clearFaults());
    const key = `fault/${c.kind}`;
    const from = s3.calls.length;
    const fault = s3.fault({ kind: c.kind, status: c.status, times: Number.POSITIVE_INFINITY });
    const error = await failure(c.act(key));
    assert.equal(error.$metadata?.httpStatusCode, c.status, error.message);
    if (c.name) assert.equal(error.name, c.name);
    // 5xx are retried by the SDK (3 attempts by default), 4xx are not; each attempt is a request.
    const attempts = c.status >= 500 ? 3 : 1;
    assert.equal(s3.count(c.kind, from), attempts);
    assert.equal(fault.fired, attempts);
    assert.equal(fault.matched, attempts);
    await c.check?.(key, from);
  });
}

/** A one-attempt client with these credentials and checksum setting. */
const clientWith = (
  credentials: { accessKeyId: string; secretAccessKey: string },
  requestChecksumCalculation: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' = 'WHEN_REQUIRED',
) =>
  new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials,
    requestChecksumCalculation,
    maxAttempts: 1,
    // Quiet: the SDK warns on the console when a streaming request fails (a wrong secret here).
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });

test('SigV4 signatures are checked: the right secret passes whatever the payload hash, a wrong one gets SignatureDoesNotMatch', async (t) => {
  const right = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const wrong = { accessKeyId: 'S3RVER', secretAccessKey: 'not-the-secret' };
  // The three ways the SDK declares a payload in x-amz-content-sha256: its hash (a string
  // body), UNSIGNED-PAYLOAD (a stream, checksums when required) and
  // STREAMING-UNSIGNED-PAYLOAD-TRAILER (a stream with a trailing checksum).
  const bodies = [
    ['hash', 'WHEN_REQUIRED', () => 'hello'],
    ['unsigned', 'WHEN_REQUIRED', () => Readable.from([Buffer.from('hello')])],
    ['streaming', 'WHEN_SUPPORTED', () => Readable.from([Buffer.from('hello')])],
  ] as const;
  for (const [name, checksums, body] of bodies) {
    // A key that needs encoding in the path and a prefix that needs it in the query.
    const key = `sig/${name}/a b=ü+&.csv`;
    for (const [credentials, allowed] of [
      [wrong, false],
      [right, true],
    ] as const) {
      const client = clientWith(credentials, checksums);
      t.after(() => client.destroy());
      const sent = client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body(), ContentLength: 5 }),
      );
      if (allowed) await sent;
      else {
        const error = await failure(sent);
        assert.equal(error.name, 'SignatureDoesNotMatch', `${name}: ${error.message}`);
        assert.equal(error.$metadata?.httpStatusCode, 403);
      }
      const listed = await client
        .send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `sig/${name}/a b=ü+&` }))
        .then(
          (result) => (result.Contents ?? []).map((o) => o.Key),
          (error: SdkError) => error.name,
        );
      assert.deepEqual(listed, allowed ? [key] : 'SignatureDoesNotMatch', name);
    }
  }
});

test('a wrong secret or key id is refused on the calls the local S3 answers itself, and changes nothing', async (t) => {
  const { UploadId } = await s3.client.send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'sig/upload.csv' }),
  );
  const cases = [
    ['not-the-secret', 'S3RVER', 'SignatureDoesNotMatch'],
    ['S3RVER', 'AKIAWRONGWRONGWRONG0', 'InvalidAccessKeyId'],
  ] as const;
  for (const [secretAccessKey, accessKeyId, code] of cases) {
    const client = clientWith({ accessKeyId, secretAccessKey });
    t.after(() => client.destroy());
    const error = await failure(
      client.send(
        new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'sig/upload.csv', UploadId }),
      ),
    );
    assert.equal(error.name, code);
    assert.ok((await s3.openUploads(BUCKET)).includes(UploadId ?? ''), 'the upload is still open');
  }
  await s3.client.send(
    new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'sig/upload.csv', UploadId }),
  );
});

test('the error body is S3 XML with the code and message', async (t) => {
  t.after(() => s3.clearFaults());
  s3.fault({ kind: 'put', status: 403 });
  const answer = await fetch(`${s3.endpoint}/${BUCKET}/raw.csv`, { method: 'PUT', body: 'x' });
  assert.equal(answer.status, 403);
  assert.equal(answer.headers.get('content-type'), 'application/xml');
  assert.match(
    await answer.text(),
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied<\/Code><Message>Access Denied<\/Message><RequestId>\w+<\/RequestId><\/Error>$/,
  );
  s3.fault({ kind: 'put', status: 500, code: 'Custom', message: 'a <b> & "c"' });
  const custom = await failure(put('raw.csv', once()));
  assert.equal(custom.name, 'Custom');
  assert.equal(custom.message, 'a <b> & "c"');
});

test('nth and times: the 2nd and 3rd matching requests fail, the rest go through', async (t) => {
  t.after(() => s3.clearFaults());
  const from = s3.calls.length;
  const fault = s3.fault({ kind: 'put', key: 'nth.csv', nth: 2, times: 2, status: 500 });
  const outcomes: string[] = [];
  for (let i = 0; i < 5; i++) {
    // Requests for other keys and other kinds do not count as occurrences.
    await put('other.csv', once());
    await s3.client.send(new HeadBucketCommand({ Bucket: BUCKET }));
    outcomes.push(
      await put('nth.csv', once()).then(
        () => 'ok',
        (error: SdkError) => error.name,
      ),
    );
  }
  assert.deepEqual(outcomes, ['ok', 'InternalError', 'InternalError', 'ok', 'ok']);
  assert.equal(fault.matched, 5);
  assert.equal(fault.fired, 2);
  assert.equal(s3.count('put', from), 10);
});

test('a fault that fires once is absorbed by the SDK retry: one extra request', async (t) => {
  t.after(() => s3.clearFaults());
  const from = s3.calls.length;
  const fault = s3.fault({ kind: 'put', status: 503 });
  await put('retried.csv', s3.client, 'body');
  assert.equal(fault.fired, 1);
  assert.equal(s3.count('put', from), 2);
  assert.equal((await s3.getObject(BUCKET, 'retried.csv'))?.body.toString(), 'body');
});

test('faults are checked in order; the first that fires acts, all count the request', async (t) => {
  t.after(() => s3.clearFaults());
  const first = s3.fault({ kind: 'put', status: 403 });
  const second = s3.fault({ kind: 'put', status: 500, times: 2 });
  assert.equal((await failure(put('order.csv', once()))).name, 'AccessDenied');
  assert.equal((await failure(put('order.csv', once()))).name, 'InternalError');
  await put('order.csv', once());
  assert.deepEqual([first.fired, first.matched, second.fired, second.matched], [1, 3, 1, 3]);
  second.remove();
  s3.fault({ kind: 'put', status: 500 }).remove();
  await put('order.csv', once());
  assert.equal(second.matched, 3, 'a removed fault sees nothing');
});

test('reset: the connection drops without an answer; the SDK retries it', async (t) => {
  t.after(() => s3.clearFaults());
  const from = s3.calls.length;
  const fault = s3.fault({ kind: 'put', reset: true });
  const error = await failure(put('reset.csv', once()));
  assert.equal(error.$metadata?.httpStatusCode, undefined, 'no HTTP answer');
  assert.match(`${error.name} ${error.message}`, /ECONNRESET|EPIPE|socket hang up/i);
  assert.equal(await s3.getObject(BUCKET, 'reset.csv'), undefined);
  fault.remove();
  s3.fault({ kind: 'put', reset: true });
  await put('reset.csv', s3.client, 'after a reset');
  assert.equal(s3.count('put', from), 3);
  assert.equal((await s3.getObject(BUCKET, 'reset.csv'))?.body.toString(), 'after a reset');
});

test('delayMs: the request waits, then goes through', async (t) => {
  t.after(() => s3.clearFaults());
  const fault = s3.fault({ kind: 'put', delayMs: 300 });
  const started = performance.now();
  await put('slow.csv', once(), 'slow');
  // A lower bound only: the sleep guarantees it, however loaded the machine is.
  assert.ok(performance.now() - started >= 300);
  assert.equal(fault.fired, 1);
  assert.equal((await s3.getObject(BUCKET, 'slow.csv'))?.body.toString(), 'slow');
});

test('holdParts holds UploadPart until released', async () => {
  const from = s3.calls.length;
  const release = s3.holdParts();
  const upload = twoParts('held.csv').done();
  await s3.waitFor((_, s) => s.heldParts >= 1, { signal: untilSettled(upload, 'a part was held') });
  assert.equal(s3.count('part', from), 1);
  assert.equal(s3.heldParts, 1);
  release();
  await upload;
  assert.equal(s3.heldParts, 0);
  assert.equal(s3.count('part', from), 2);
  assert.equal((await s3.getObject(BUCKET, 'held.csv'))?.body.length, PART + 1);
});

test('holdParts(match) holds only the parts it matches; waitFor sees arrivals, holds and answers', async () => {
  const from = s3.calls.length;
  const release = s3.holdParts((call) => call.partNumber === 2);
  const upload = twoParts('held-second.csv').done();
  const signal = untilSettled(upload, 'part 2 was held');
  await s3.waitFor((_, s) => s.heldParts === 1, { signal });
  const parts = () => s3.calls.slice(from).filter((c) => c.kind === 'part');
  assert.deepEqual(
    parts().map((c) => [c.partNumber, c.status]),
    [
      [1, 200],
      [2, undefined],
    ],
    'part 1 answered, part 2 in progress',
  );
  const answered = s3.waitFor((calls) =>
    calls.slice(from).some((c) => c.partNumber === 2 && c.status === 200),
  );
  release();
  await answered;
  await upload;
  assert.deepEqual(
    s3.calls.slice(from).map((c) => [c.kind, c.status]),
    [
      ['create', 200],
      ['part', 200],
      ['part', 200],
      ['complete', 200],
    ],
  );
  const ended = new AbortController();
  ended.abort(new Error('the run ended'));
  await assert.rejects(
    s3.waitFor(() => false, { signal: ended.signal }),
    /the run ended/,
  );
});

test("a part held across its upload's abort is refused (NoSuchUpload), and the upload stays unlisted", async () => {
  const { UploadId } = await once().send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'held-aborted.csv' }),
  );
  const release = s3.holdParts();
  const part = failure(
    once().send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'held-aborted.csv',
        UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024, 'a'),
      }),
    ),
  );
  await s3.waitFor((_, s) => s.heldParts >= 1, { signal: untilSettled(part, 'the part was held') });
  await once().send(
    new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'held-aborted.csv', UploadId }),
  );
  release();
  const error = await part;
  assert.equal(error.name, 'NoSuchUpload');
  assert.equal(error.$metadata?.httpStatusCode, 404);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test('a fault needs an effect, a 1-based nth and a positive times', () => {
  assert.throws(() => s3.fault({ kind: 'put' }), /status, delayMs or reset/);
  assert.throws(() => s3.fault({ kind: 'put', status: 500, nth: 0 }), /nth/);
  assert.throws(() => s3.fault({ kind: 'put', status: 500, times: 0 }), /times/);
  assert.throws(() => s3.fault({ kind: 'put', status: 500, reset: true }), /not both/);
  assert.throws(() => s3.fault({ kind: 'put', status: 200 }), /400\.\.599/);
});

test('npm run s3 (scripts/s3.ts): a local S3 for trying by hand, its environment printed, a pull into it', async () => {
  const script = new URL('../scripts/s3.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, 'tried'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const emulator = await startEmulator({ seed: 42, albums: 60 });
  try {
    let printed = '';
    child.stdout.setEncoding('utf8');
    // Ready once every line is out: the last one it prints is AWS_EC2_METADATA_DISABLED.
    for await (const chunk of child.stdout) {
      printed += chunk;
      if (printed.includes('AWS_EC2_METADATA_DISABLED=true\n')) break;
    }
    const env = Object.fromEntries(
      printed
        .trim()
        .split('\n')
        .map((line) => /^export (\w+)=(.*)$/.exec(line)?.slice(1) ?? ['', '']),
    );
    assert.match(env.AWS_ENDPOINT_URL_S3 ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    const pulled = await runCli(['new-releases', '--out', 's3://tried/albums.csv'], {
      env: { ...emulatorEnv(emulator), ...env },
    });
    assert.equal(pulled.status, 0, pulled.stderr);
    const reader = new S3Client({
      endpoint: env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const got = await reader.send(new GetObjectCommand({ Bucket: 'tried', Key: 'albums.csv' }));
    const body = (await got.Body?.transformToString()) ?? '';
    reader.destroy();
    assert.match(body, /^album_id,/);
  } finally {
    const exited = onceEvent(child, 'exit');
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0, 'Ctrl-C stops it cleanly');
    await emulator.stop();
  }
});
