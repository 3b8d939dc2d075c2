/**
 * The two-phase commit: a failed run leaves the destination byte-identical to before, nothing
 * appears before every output is staged, and a publish that fails part-way says exactly what
 * is out. Each re-run uses another catalogue seed, so an output it published by mistake would
 * differ from the first run's bytes.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { S3Call } from '../scripts/local-s3.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { emulator, localS3 } from './helpers/servers.ts';
import { s3Snapshot, snapshot } from './helpers/snapshot.ts';
import { untilExit, untilSettled } from './helpers/wait.ts';

const s3 = localS3();
const good = emulator({ seed: 1, albums: 600 });
/** Another catalogue; DE fails on its last page, after SE and US were pulled completely. */
const failing = emulator({
  seed: 2,
  albums: 600,
  faults: [{ kind: '404', market: 'DE', offset: 550 }],
});
const PAGES = 12; // 600 albums, 50 per page

/** Requests the emulator got for one market's pages. */
const marketRequests = (emulator: Emulator, market: string) =>
  emulator.stats.log.filter((r) => r.query.includes(`country=${market}`)).length;

const pull = ['new-releases', '--market', 'SE,US,DE', '--concurrency', '1'];

/** A good first run into `bucket`'s dt=X partition: the out template and what it left. */
async function firstRunToS3(bucket: string) {
  await s3.createBucket(bucket);
  const out = `s3://${bucket}/dt=X/market={market}/albums.csv`;
  const first = await runCli([...pull, '--out', out], { env: { ...emulatorEnv(good), ...s3.env } });
  assert.equal(first.status, 0, first.stderr);
  return { out, before: await s3Snapshot(s3, bucket) };
}

test('files: a re-run that fails on its last market leaves the previous run byte-identical', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-commit-'));
  const out = join(dir, 'dt=X', 'market={market}', 'albums.csv');
  const first = await runCli([...pull, '--out', out], { env: emulatorEnv(good) });
  assert.equal(first.status, 0, first.stderr);
  const before = await snapshot(dir);
  assert.deepEqual([...before.keys()].sort(), [
    'dt=X/_manifest.json',
    'dt=X/market=DE/albums.csv',
    'dt=X/market=SE/albums.csv',
    'dt=X/market=US/albums.csv',
  ]);

  const seBefore = marketRequests(failing, 'SE');
  const second = await runCli([...pull, '--out', out], { env: emulatorEnv(failing) });
  assert.equal(second.status, 4, second.stderr);
  assert.match(second.stderr, /error: market DE: .*404/);
  // SE was pulled completely (and staged) before DE failed: the take-back path ran.
  assert.equal(marketRequests(failing, 'SE') - seBefore, PAGES);
  assert.deepEqual(await snapshot(dir), before, 'the previous outputs and manifest are untouched');
});

test('S3: a re-run that fails on its last market sends nothing that publishes, and aborts what it opened', async () => {
  const bucket = 'commit-rerun';
  const { out, before } = await firstRunToS3(bucket);
  assert.equal(before.size, 4);

  const mark = s3.calls.length;
  const second = await runCli([...pull, '--out', out], {
    env: { ...emulatorEnv(failing), ...s3.env },
  });
  assert.equal(second.status, 4, second.stderr);
  // Small outputs are single PutObjects: held at the barrier, never sent.
  assert.equal(s3.count('put', mark), 0);
  assert.equal(s3.count('complete', mark), 0);
  assert.equal(s3.count('delete', mark), 0, 'no run deletes what it did not create');
  assert.deepEqual(await s3Snapshot(s3, bucket), before);
  assert.deepEqual(await s3.openUploads(bucket), []);
});

test('S3: a failed publish names what was published and what was not, and writes no manifest', async () => {
  const bucket = 'commit-partial';
  const { out, before } = await firstRunToS3(bucket);

  const fault = s3.fault({ kind: 'put', key: /market=US/, status: 403, times: Infinity });
  try {
    const mark = s3.calls.length;
    const second = await runCli([...pull, '--out', out], {
      env: { ...emulatorEnv(good), ...s3.env },
    });
    assert.equal(second.status, 5, second.stderr);
    assert.match(
      second.stderr,
      /publishing failed part-way, no manifest written: published s3:\/\/commit-partial\/dt=X\/market=SE\/albums\.csv, s3:\/\/commit-partial\/dt=X\/market=DE\/albums\.csv; not published: s3:\/\/commit-partial\/dt=X\/market=US\/albums\.csv \(access denied/,
    );
    assert.ok(fault.fired >= 1);
    const after = await s3Snapshot(s3, bucket);
    // The old manifest went before the first output changed; no new one was written.
    assert.equal(after.has('dt=X/_manifest.json'), false);
    assert.equal(s3.count('delete', mark), 1);
    // US keeps the previous run's object; SE and DE are this run's (the same catalogue here).
    assert.deepEqual(
      after.get('dt=X/market=US/albums.csv'),
      before.get('dt=X/market=US/albums.csv'),
    );
    assert.deepEqual(await s3.openUploads(bucket), []);
  } finally {
    fault.remove();
  }
});

test('S3: no object appears while another output is still being pulled', async () => {
  const bucket = 'commit-barrier';
  await s3.createBucket(bucket);
  // DE comes last (one market at a time); its second page is held: SE and US were pulled
  // completely, and DE is being pulled for as long as the test looks.
  const slow = await startEmulator({ seed: 3, albums: 600 });
  const de = slow.hold((r) => r.query.includes('country=DE') && r.offset >= 50);
  try {
    const mark = s3.calls.length;
    let child: ChildProcess | undefined;
    const running = runCli([...pull, '--out', `s3://${bucket}/{market}.csv`], {
      env: { ...emulatorEnv(slow), ...s3.env },
      onSpawn: (c) => (child = c),
    });
    try {
      await slow.waitFor(() => de.held >= 1, {
        signal: untilExit(child, "DE's second page was asked for"),
      });
      assert.equal(marketRequests(slow, 'SE'), PAGES, 'SE was pulled completely');
      assert.equal(marketRequests(slow, 'US'), PAGES, 'US was pulled completely');
      assert.equal(s3.count('put', mark), 0, 'no PutObject was sent before every output is staged');
      assert.deepEqual(
        await s3.listKeys(bucket),
        [],
        'no object is visible before every output is staged',
      );
    } finally {
      de.release();
    }
    const result = await running;
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual((await s3.listKeys(bucket)).sort(), [
      'DE.csv',
      'SE.csv',
      'US.csv',
      '_manifest.json',
    ]);
  } finally {
    await slow.stop();
  }
});

test('a signal while the raw landing uploads its last part: interrupted, nothing published, nothing open', async () => {
  const { run } = await import('../src/pipeline.ts');
  const { stat } = await import('node:fs/promises');
  const BUCKET = 'rawsignal';
  await s3.createBucket(BUCKET);
  // Both outputs span several parts: the data's last part answered shows it staged.
  const emulator = await startEmulator({ seed: 9, albums: 20_000, cachePages: true });
  const env = { ...emulatorEnv(emulator), ...s3.env };
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-rawsignal-'));
    await run({ out: join(dir, 'a.csv'), raw: join(dir, 'raw.ndjson') }, { env });
    const partsOf = async (file: string) =>
      Math.ceil((await stat(join(dir, file))).size / (5 * 1024 * 1024));
    const rawParts = await partsOf('raw.ndjson');
    const dataParts = await partsOf('a.csv');
    assert.ok(rawParts >= 2, `the raw landing spans ${rawParts} parts`);
    assert.ok(dataParts >= 2, `the data spans ${dataParts} parts`);
    // The raw landing's last part is held; the signal comes while it is held, once the data's
    // last part was answered too: every other output is staged, the run is at its commit point.
    const mark = s3.calls.length;
    const isRawLast = (c: S3Call) =>
      c.kind === 'part' && c.key === 'rawsignal/raw.ndjson' && c.partNumber === rawParts;
    const release = s3.holdParts(isRawLast);
    const controller = new AbortController();
    const running = run(
      { out: `s3://${BUCKET}/rawsignal/data.csv`, raw: `s3://${BUCKET}/rawsignal/raw.ndjson` },
      { env, signal: controller.signal },
    );
    try {
      await s3.waitFor(
        (calls, s) =>
          s.heldParts === 1 &&
          calls
            .slice(mark)
            .some(
              (c) =>
                c.key === 'rawsignal/data.csv' && c.partNumber === dataParts && c.status === 200,
            ),
        { signal: untilSettled(running, 'the commit point was reached') },
      );
      controller.abort(new Error('stop'));
      await assert.rejects(running, (error: { code?: string }) => error.code === 'ERR_INTERRUPTED');
    } finally {
      release();
    }
    // The held part answered (or dropped) before anything is looked at: a late answer is what
    // could publish or throw.
    await s3.waitFor((calls) =>
      calls.slice(mark).some((c) => isRawLast(c) && c.status !== undefined),
    );
    assert.equal(s3.count('complete', mark), 0, 'no upload completed');
    assert.equal(s3.count('put', mark), 0, 'no object put');
    assert.deepEqual(
      (await s3.listKeys(BUCKET)).filter((k) => k.startsWith('rawsignal/')),
      [],
      'nothing published',
    );
    assert.deepEqual(uncaught, [], 'no uncaught error');
  } finally {
    process.off('uncaughtException', onUncaught);
    await emulator.stop();
  }
});

test('a listener that throws on the abort-failed event does not keep the failed run from ending', async () => {
  const { run } = await import('../src/pipeline.ts');
  const BUCKET = 'listenerthrows';
  await s3.createBucket(BUCKET);
  // About 6 MiB of CSV: two parts of 5 MiB, the second refused.
  const emulator = await startEmulator({ seed: 4, albums: 20_000, cachePages: true });
  const faults = [
    s3.fault({ kind: 'part', bucket: BUCKET, nth: 2, status: 500, times: Infinity }),
    s3.fault({ kind: 'abort', bucket: BUCKET, status: 403, times: Infinity, staged: true }),
  ];
  const events: string[] = [];
  try {
    await assert.rejects(
      run(
        { out: `s3://${BUCKET}/a.csv`, s3PartSize: 5 * 1024 * 1024 },
        {
          env: { ...emulatorEnv(emulator), ...s3.env },
          onEvent: (e) => {
            events.push(e.event);
            if (e.event === 'abort-failed') throw new Error('a listener bug');
          },
        },
      ),
      /S3 error writing s3:\/\/listenerthrows\/a\.csv: InternalError/,
    );
    assert.ok(events.includes('abort-failed'), events.join(' '));
  } finally {
    for (const fault of faults) fault.remove();
    for (const UploadId of await s3.openUploads(BUCKET)) {
      await s3.client.send(
        new (await import('@aws-sdk/client-s3')).AbortMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'a.csv',
          UploadId,
        }),
      );
    }
    await emulator.stop();
  }
});

test('a signal once publishing started does not replace the publish’s own error (what is out is said, not "aborted")', async () => {
  const { run } = await import('../src/pipeline.ts');
  const BUCKET = 'latesignal';
  await s3.createBucket(BUCKET);
  // A small output is one PutObject, sent at the commit; S3 takes its time and then refuses it.
  // The signal comes while it is in flight: past the commit point the run finishes publishing,
  // and its error is the refusal (exit 5), not "run aborted" (exit 130), which would hide it.
  const fault = s3.fault({ kind: 'put', bucket: BUCKET, status: 403, delayMs: 1500, times: 1 });
  const mark = s3.calls.length;
  const controller = new AbortController();
  const running = run(
    { out: `s3://${BUCKET}/late.csv` },
    { env: { ...emulatorEnv(good), ...s3.env }, signal: controller.signal },
  );
  try {
    await s3.waitFor(
      (calls) => calls.slice(mark).some((c) => c.kind === 'put' && c.status === undefined),
      { signal: untilSettled(running, 'the publish began') },
    );
    controller.abort(new Error('stop'));
    // Aborted while the PutObject was still unanswered: past the commit point, not after it.
    const put = s3.calls.slice(mark).find((c) => c.kind === 'put');
    assert.equal(put?.status, undefined, 'the signal came while the publish was in flight');
    await assert.rejects(running, (error: { code?: string; message?: string }) => {
      assert.equal(error.code, 'ERR_S3', error.message);
      // S3's own refusal, not a request the signal cancelled.
      assert.match(
        error.message ?? '',
        /no output was published: s3:\/\/latesignal\/late\.csv \(access denied writing/,
      );
      return true;
    });
    assert.equal(fault.fired, 1);
    assert.deepEqual(await s3.listKeys(BUCKET), [], 'nothing published');
  } finally {
    fault.remove();
  }
});
