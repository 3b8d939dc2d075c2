import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { run } from '../src/pipeline.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { runToBuffer } from './helpers/run.ts';
import { emulator, localS3 } from './helpers/servers.ts';
import { untilSettled, watchedStats, whenAll } from './helpers/wait.ts';

const BUCKET = 'spotify-bucket';
const s3 = localS3(BUCKET);
const small = emulator({ seed: 42, albums: 230 });
// About 20 MiB of CSV: four 5 MiB parts.
const large = emulator({ seed: 8, albums: 64_000, cachePages: true });

const env = (emulator: Emulator) => ({ ...emulatorEnv(emulator), ...s3.env });

test('a small output is one PutObject with exactly the stdout bytes and a text/csv type', async () => {
  const expected = (await runToBuffer(small)).bytes;
  const before = s3.requests.length;
  const result = await runCli(
    ['new-releases', '--out', `s3://${BUCKET}/nested/path/album_details.csv`],
    { env: env(small) },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(
    result.stderr,
    /→ s3:\/\/spotify-bucket\/nested\/path\/album_details\.csv .*\(1 part, ETag /,
  );
  const object = await s3.getObject(BUCKET, 'nested/path/album_details.csv');
  assert.ok(object?.body.equals(expected), 'object bytes differ from stdout');
  assert.equal(object?.contentType, 'text/csv; charset=utf-8');
  const calls = s3.requests.slice(before);
  assert.ok(calls.includes('PUT object'));
  assert.equal(
    s3.count('create', before, { probes: false }),
    0,
    'no multipart upload for one part',
  );
});

test('a multi-part upload (4 parts of 5 MiB) round-trips exactly', async () => {
  const expected = (await runToBuffer(large, { concurrency: 8 })).bytes;
  assert.ok(expected.length > 15 * 1024 * 1024, `only ${expected.length} bytes`);
  const before = s3.requests.length;
  const result = await runCli(
    [
      'new-releases',
      '--out',
      `s3://${BUCKET}/big.csv`,
      '--s3-part-size',
      '5',
      '--concurrency',
      '8',
    ],
    {
      env: env(large),
    },
  );
  assert.equal(result.status, 0, result.stderr);
  const parts = Math.ceil(expected.length / (5 * 1024 * 1024));
  assert.match(result.stderr, new RegExp(`\\(${parts} parts, ETag`));
  const object = await s3.getObject(BUCKET, 'big.csv');
  assert.equal(object?.body.length, expected.length);
  assert.ok(object?.body.equals(expected));
  const calls = s3.requests.slice(before);
  assert.equal(calls.filter((c) => c === 'PUT part').length, parts);
  assert.equal(calls.filter((c) => c === 'POST complete').length, 1);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test('a Spotify failure after parts were uploaded leaves no object and no open upload', async () => {
  const failing = await startEmulator({
    seed: 8,
    albums: 64_000,
    cachePages: true,
    faults: [{ kind: '503', offset: 40_000 }],
  });
  try {
    const before = s3.requests.length;
    const result = await runCli(
      [
        'new-releases',
        '--out',
        `s3://${BUCKET}/failed.csv`,
        '--s3-part-size',
        '5',
        '--max-retries',
        '1',
      ],
      {
        env: env(failing),
      },
    );
    assert.equal(result.status, 4, result.stderr);
    assert.match(result.stderr, /HTTP 503 .*offset 40000/);
    const calls = s3.requests.slice(before);
    assert.ok(calls.includes('PUT part'), 'the failure came after at least one part was uploaded');
    assert.ok(calls.includes('DELETE upload'), 'AbortMultipartUpload was sent');
    assert.ok(!calls.includes('POST complete'));
    assert.equal(await s3.getObject(BUCKET, 'failed.csv'), undefined);
    assert.deepEqual(await s3.openUploads(BUCKET), []);
  } finally {
    await failing.stop();
  }
});

test('a bad record (a transform error) fails the run and nothing appears at the key', async () => {
  const broken = await startEmulator({ seed: 42, albums: 230, malformed: [200] });
  try {
    const result = await runCli(['new-releases', '--out', `s3://${BUCKET}/tiny-failed.csv`], {
      env: env(broken),
    });
    assert.equal(result.status, 6, result.stderr);
    assert.match(result.stderr, /bad record: album \w+: field name is missing/);
    assert.equal(await s3.getObject(BUCKET, 'tiny-failed.csv'), undefined);
    assert.deepEqual(await s3.openUploads(BUCKET), []);
  } finally {
    await broken.stop();
  }
});

test('a missing bucket is named, exit 5, before any Spotify request', async () => {
  const requests = small.stats.apiRequests;
  const result = await runCli(['new-releases', '--out', 's3://no-such-bucket/x.csv'], {
    env: env(small),
  });
  assert.equal(result.status, 5, result.stderr);
  assert.equal(
    result.stderr,
    'spotify-batch: error: S3 bucket no-such-bucket does not exist (writing s3://no-such-bucket/x.csv)\n',
  );
  assert.equal(small.stats.apiRequests, requests);
});

test('a missing bucket to replay from is named as read, not written', async () => {
  for (const [from, doing] of [
    ['s3://no-such-bucket/raw/', 'listing s3://no-such-bucket/raw/'],
    ['s3://no-such-bucket/raw/pages.ndjson.gz', 'reading s3://no-such-bucket/raw/pages.ndjson.gz'],
  ] as const) {
    const result = await runCli(['replay', '--from', from, '--out', '-'], { env: env(small) });
    assert.equal(result.status, 5, result.stderr);
    assert.equal(
      result.stderr,
      `spotify-batch: error: S3 bucket no-such-bucket does not exist (${doing})\n`,
    );
  }
});

test('an unreachable endpoint is one clear line, exit 5', async () => {
  const result = await runCli(['new-releases', '--out', `s3://${BUCKET}/x.csv`], {
    env: { ...env(small), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
  });
  assert.equal(result.status, 5, result.stderr);
  assert.match(
    result.stderr,
    /^spotify-batch: error: cannot reach http:\/\/127\.0\.0\.1:9 writing s3:\/\/spotify-bucket\/x\.csv/,
  );
});

test('an S3 that stops taking data stops the Spotify fetching (backpressure)', async () => {
  const pages = 1280;
  const paced = await startEmulator({ seed: 8, albums: pages * 50, cachePages: true });
  const from = s3.calls.length;
  const release = s3.holdParts();
  const concurrency = 4;
  const { stats, waitFor } = watchedStats();
  const running = run(
    { out: `s3://${BUCKET}/slow.csv`, s3PartSize: 5 * 1024 * 1024, s3QueueSize: 1, concurrency },
    { env: { ...emulatorEnv(paced), ...s3.env }, stats },
  );
  try {
    const signal = untilSettled(running, 'the source stopped');
    await s3.waitFor((_, s) => s.heldParts >= 1, { signal });
    // Then the source stops: it has pushed a page nobody reads and asks for nothing more. Its
    // window is full (a page yielded leaves concurrency - 1 requests ahead of it) and every
    // request it sent was answered. Nothing else can make it fetch while S3 holds the part: a
    // Readable whose buffer is full asks for more only when read. An S3 that did not hold the
    // pipeline back would let it fetch on: a request past 3/4 of the pages fails the test.
    const tripwire = Math.floor(pages * 0.75);
    await whenAll(
      () =>
        paced.stats.apiRequests >= tripwire ||
        (paced.stats.inFlight === 0 &&
          paced.stats.apiRequests === stats.requests &&
          stats.requests - stats.pages === concurrency - 1),
      [paced, s3, { waitFor }],
      { signal },
    );
    const seen = paced.stats.apiRequests;
    // Buffered: the held part, stream buffers and the source's window.
    assert.ok(seen < tripwire, `fetched ${seen} of ${pages} pages while S3 took nothing`);
    assert.equal(s3.heldParts, 1, 'one part is waiting in S3');
    assert.equal(s3.count('part', from), 1, 'S3 took no part');
    release();
    const report = await running;
    assert.equal(report.albums, pages * 50);
    assert.equal(paced.stats.apiRequests, pages);
  } finally {
    release();
    await running.catch(() => {});
    await paced.stop();
  }
});

test('part boundaries: 0 bytes, one part exactly, one part and a byte, two parts exactly, in odd chunks', async () => {
  const { S3Store } = await import('../src/sinks/s3.ts');
  const { pipeline } = await import('node:stream/promises');
  const { Readable } = await import('node:stream');
  const part = 5 * 1024 * 1024;
  const store = await S3Store.create(
    {
      partSize: part,
      queueSize: 1,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      sse: undefined,
      sseKmsKeyId: undefined,
      storageClass: undefined,
      tags: {},
    },
    s3.env,
  );
  try {
    for (const [size, parts] of [
      [0, 1],
      [part, 1],
      [part + 1, 2],
      [2 * part, 2],
      [2 * part + 12_345, 3],
    ] as const) {
      // Bytes that differ by position, in chunks that straddle the part boundaries.
      const bytes = Buffer.alloc(size);
      for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32LE(i >>> 2, i);
      const chunks = function* () {
        for (let i = 0; i < size; i += 100_003) yield bytes.subarray(i, i + 100_003);
      };
      const key = `boundaries/${size}.bin`;
      const from = s3.calls.length;
      const sink = await store.open({
        bucket: BUCKET,
        key,
        contentType: 'application/octet-stream',
      });
      await pipeline(Readable.from(chunks()), sink.writable);
      await sink.staged;
      assert.equal(
        (await s3.getObject(BUCKET, key)) ?? 'absent',
        'absent',
        'nothing before publish',
      );
      const result = await sink.publish();
      assert.equal(result.parts, parts, `${size} bytes`);
      const object = await s3.getObject(BUCKET, key);
      assert.ok(object?.body.equals(bytes), `${size} bytes round-trip`);
      const kinds = s3.calls.slice(from).map((c) => c.kind);
      assert.deepEqual(
        kinds.filter((k) => ['create', 'part', 'complete', 'put', 'abort'].includes(k)),
        parts === 1 ? ['put'] : ['create', ...Array(parts).fill('part'), 'complete'],
        `${size} bytes`,
      );
    }
    assert.deepEqual(await s3.openUploads(BUCKET), []);
  } finally {
    store.close();
  }
});
