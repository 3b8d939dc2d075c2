import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import type { Options } from '../src/core/options.ts';
import type { RunEvent } from '../src/core/stats.ts';
import type { FaultRule } from '../src/emulator/faults.ts';
import { run } from '../src/pipeline.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { Collector, runToBuffer } from './helpers/run.ts';
import { emulators } from './helpers/servers.ts';
import { untilExit, untilSettled } from './helpers/wait.ts';

const SEED = 21;
const ALBUMS = 600;
const fast: Options = { retryDelay: 20, concurrency: 4 };
let clean: Buffer;
const emulator = emulators({ seed: SEED, albums: ALBUMS });
let s3: LocalS3;
before(async () => {
  clean = (await runToBuffer(await emulator({}))).bytes;
  s3 = await startS3();
  await s3.createBucket('resilience');
});
after(() => s3.stop());

const single: [string, FaultRule][] = [
  ['429 with Retry-After 1', { kind: '429', every: 4, times: 2, retryAfter: '1' }],
  ['429 with Retry-After 0', { kind: '429', every: 4, times: 3, retryAfter: '0' }],
  ['429 without Retry-After', { kind: '429', every: 4, times: 3, retryAfter: null }],
  [
    '429 with an empty body',
    { kind: '429', every: 4, times: 3, retryAfter: null, emptyBody: true },
  ],
  ['500', { kind: '500', every: 4, times: 3 }],
  ['502', { kind: '502', every: 4, times: 3 }],
  ['503', { kind: '503', every: 4, times: 3 }],
  ['504', { kind: '504', every: 4, times: 3 }],
  ['connection reset', { kind: 'reset', every: 4, times: 3 }],
  ['truncated body', { kind: 'truncate', every: 4, times: 3 }],
  ['token expired', { kind: 'expire-token', every: 5, times: 2 }],
];
for (const [name, fault] of single) {
  test(`fault alone, output identical: ${name}`, async () => {
    const e = await emulator({ faults: [fault] });
    const { bytes, report } = await runToBuffer(e, fast);
    assert.ok(e.stats.faultsFired > 0, 'the fault fired');
    assert.ok(bytes.equals(clean), 'output differs from the fault-free run');
    assert.equal(report.albums, ALBUMS);
    if (fault.kind === '429') assert.equal(report.rateLimited, e.stats.faultsFired);
    else if (fault.kind !== 'expire-token') assert.ok(report.retries >= e.stats.faultsFired);
  });
}

const mixed: FaultRule[] = [
  { kind: '429', every: 7, retryAfter: '1', times: 2 },
  { kind: '503', every: 5, times: 3 },
  { kind: 'reset', every: 6, times: 3 },
  { kind: 'truncate', every: 9, times: 2 },
  { kind: '429', every: 11, retryAfter: null, emptyBody: true, times: 2 },
];
const mixedEmulator = () =>
  emulator({ faults: mixed, tokenTtl: 2, latencyMs: 30, latencyJitterMs: 40 });

test('all faults mixed in one run: stdout identical', async () => {
  const e = await mixedEmulator();
  const { bytes, report } = await runToBuffer(e, fast);
  assert.ok(bytes.equals(clean));
  assert.ok(report.retries > 0 && report.rateLimited > 0);
  assert.ok(e.stats.faultsFired >= 5);
});

test('all faults mixed: --out FILE identical', async () => {
  const e = await mixedEmulator();
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const out = join(dir, 'a.csv');
  const result = await runCli(['new-releases', '--out', out, '--retry-delay', '20'], {
    env: emulatorEnv(e),
  });
  assert.equal(result.status, 0, result.stderr);
  assert.ok((await readFile(out)).equals(clean));
  assert.match(result.stderr, /retrying: /);
  assert.match(result.stderr, /rate limited \(429\)/);
});

test('all faults mixed: S3 object identical', async () => {
  const e = await mixedEmulator();
  const result = await runCli(
    ['new-releases', '--out', 's3://resilience/mixed.csv', '--retry-delay', '20'],
    {
      env: { ...emulatorEnv(e), ...s3.env },
    },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.ok((await s3.getObject('resilience', 'mixed.csv'))?.body.equals(clean));
});

test('during a Retry-After pause no request reaches Spotify', async () => {
  const e = await emulator({
    albums: 2000,
    faults: [{ kind: '429', offset: 200, times: 1, retryAfter: '2' }],
  });
  // Spotify holds its answers (all but the first page's) until the client has its whole window
  // of 8 requests out, then answers 429 to one of them: no request of the client can still be
  // on its way when the 429 arrives, so everything that arrives later was sent after it.
  const limited = e.hold((r) => r.offset === 200);
  const others = e.hold((r) => r.offset !== 0);
  const events: RunEvent[] = [];
  let arrivedBeforePause = -1;
  const running = run(
    { ...fast, concurrency: 8 },
    {
      env: emulatorEnv(e),
      stdout: new Collector(),
      onEvent: (event) => {
        events.push(event);
        if (event.event === 'rate-limited') {
          // The client took in the 429 and paused: the other seven pages are answered now, so
          // the source wants more pages at once, and only the pause stops it asking.
          arrivedBeforePause = e.stats.log.length;
          others.release();
        }
      },
    },
  );
  await e
    .waitFor(() => limited.held + others.held >= 8, {
      signal: untilSettled(running, 'the window of 8 was out'),
    })
    .catch(async (error: unknown) => {
      await running; // its own error, if it failed
      throw error;
    });
  const answered = Date.now();
  limited.release();
  const report = await running;
  assert.equal(report.rateLimited, 1);
  assert.equal(arrivedBeforePause, 9, 'the first page and the window of 8, nothing else');
  const later = e.stats.log.slice(arrivedBeforePause);
  assert.equal(later.length, 31 + 1, 'the other 31 pages and the retried one');
  // The pause ends 2 s after the client took in the 429, which Spotify sent after `answered`:
  // a lower bound the client guarantees, however slow the machine (no upper bound is checked).
  const early = later.filter((r) => r.at < answered + 2000);
  assert.deepEqual(early, [], 'requests sent during the pause');
  assert.ok(report.rateLimitWaitMs >= 2000);
  const event = events.find((ev) => ev.event === 'rate-limited');
  // One 429 is no evidence of a limit (issue 24): it pauses everybody and teaches no rate.
  assert.ok(
    event && event.event === 'rate-limited' && event.rate === null,
    `one 429 taught the client a rate: ${JSON.stringify(event)}`,
  );
});

test('a Retry-After beyond --max-retry-after fails at once, quoting it', async () => {
  const e = await emulator({ faults: [{ kind: '429', offset: 100, retryAfter: '3600' }] });
  const result = await runCli(['new-releases', '--max-retry-after', '60'], { env: emulatorEnv(e) });
  assert.equal(result.status, 4);
  assert.match(
    result.stderr,
    /asked to wait 3600 s \(Retry-After\), more than --max-retry-after 60 s/,
  );
  assert.equal(e.stats.log.filter((r) => r.offset === 100).length, 1, 'no retry of that page');
});

test('a 403 on new-releases explains Development Mode and points to --via search', async () => {
  const e = await emulator({ devMode: true });
  const result = await runCli(['new-releases'], { env: emulatorEnv(e) });
  assert.equal(result.status, 4);
  assert.match(result.stderr, /403 .*Forbidden.*Development Mode.*Extended Quota.*--via search/);
  assert.equal(result.stderr.trim().split('\n').length, 1);
});

test('a malformed album fails the run by default, naming the album and field', async () => {
  const e = await emulator({ malformed: [123] });
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await runCli(['new-releases', '--out', join(dir, 'x.csv')], {
    env: emulatorEnv(e),
  });
  assert.equal(result.status, 6, result.stderr);
  assert.match(result.stderr, /bad record: album \w{22}: field name is missing/);
  assert.deepEqual(await readdir(dir), []);
});

test('--rejects diverts malformed albums and the rest of the output is complete', async () => {
  const e = await emulator({ malformed: [5, 300] });
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const rejects = join(dir, 'rejects.ndjson');
  const result = await runCli(['new-releases', '--rejects', rejects], { env: emulatorEnv(e) });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /2 rejected/);
  const lines = (await readFile(rejects, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].field, 'name');
  assert.equal(typeof lines[0].record.id, 'string');
  // Every other album's rows are there: the clean output minus the two albums' rows.
  const ids = new Set(lines.map((l) => l.record.id));
  const expected = clean
    .toString()
    .split(/\n(?=[0-9A-Za-z]{22},)/)
    .filter((row) => !ids.has(row.slice(0, 22)))
    .join('\n');
  assert.equal(result.stdout.toString(), expected);
});

test('--max-rejects bounds the rejects', async () => {
  const e = await emulator({ malformed: [5, 300] });
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await runCli(
    [
      'new-releases',
      '--rejects',
      join(dir, 'r.ndjson'),
      '--max-rejects',
      '1',
      '--out',
      join(dir, 'o.csv'),
    ],
    {
      env: emulatorEnv(e),
    },
  );
  assert.equal(result.status, 6);
  assert.match(result.stderr, /more than --max-rejects 1 bad records/);
  assert.deepEqual(await readdir(dir), []);
});

test('--csv-escape-formulas neutralises cells that start a formula', async () => {
  const e = await emulator({});
  const result = await runCli(['new-releases', '--csv-escape-formulas'], { env: emulatorEnv(e) });
  assert.equal(result.status, 0);
  const text = result.stdout.toString();
  assert.ok(clean.toString().includes(',=SUM(A1:A2),'));
  assert.ok(text.includes(",'=SUM(A1:A2),"));
  assert.ok(!text.includes(',=SUM('));
});

/**
 * Runs the CLI and sends it `signal` once `ready` (given a signal that aborts when the run
 * exits) resolves; then lets `hold` go, which keeps the run mid-pull until the signal came.
 */
async function interrupt(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (exited: AbortSignal) => Promise<void>,
  signal: NodeJS.Signals,
  hold: { release(): void },
) {
  let child: ChildProcess | undefined;
  const result = runCli(args, { env, onSpawn: (c) => (child = c) });
  try {
    await ready(untilExit(child, 'it was ready for the signal'));
    child?.kill(signal);
  } finally {
    hold.release();
  }
  return result;
}

test('SIGTERM mid-run with --out FILE: exit 143, nothing left', async () => {
  const e = await emulator({ albums: 20_000 });
  // Pages from offset 300 on are held: the run is mid-pull when the signal comes.
  const hold = e.hold((r) => r.offset >= 300);
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await interrupt(
    ['new-releases', '--out', join(dir, 'x.csv')],
    emulatorEnv(e),
    (signal) => e.waitFor((s) => s.apiRequests >= 6 && hold.held >= 1, { signal }),
    'SIGTERM',
    hold,
  );
  assert.equal(result.status, 143, result.stderr);
  assert.match(result.stderr, /interrupted by SIGTERM/);
  assert.deepEqual(await readdir(dir), []);
});

test('SIGTERM mid-run to S3 after parts were uploaded: exit 143, no object, no open upload', async () => {
  const e = await emulator({ seed: 8, albums: 64_000, cachePages: true });
  // Pages from offset 32 000 on (about 10 MiB of CSV in) are held: the run has sent its first
  // part and is still pulling when the signal comes.
  const hold = e.hold((r) => r.offset >= 32_000);
  const from = s3.calls.length;
  const result = await interrupt(
    ['new-releases', '--out', 's3://resilience/interrupted.csv', '--s3-part-size', '5'],
    { ...emulatorEnv(e), ...s3.env },
    (signal) => s3.waitFor((calls) => calls.slice(from).some((c) => c.kind === 'part'), { signal }),
    'SIGTERM',
    hold,
  );
  assert.equal(result.status, 143, result.stderr);
  assert.equal(await s3.getObject('resilience', 'interrupted.csv'), undefined);
  assert.deepEqual(await s3.openUploads('resilience'), []);
  assert.equal(s3.count('abort', from, { probes: false }), 1, 'AbortMultipartUpload sent once');
  assert.equal(s3.count('complete', from), 0);
});

test('an interrupted run stops fetching at once, while its cleanup is still pending', async () => {
  const e = await emulator({ seed: 8, albums: 64_000, cachePages: true });
  const from = s3.calls.length;
  // S3 takes no part: the interrupted run cannot finish its cleanup, so it is alive while we
  // look at what it does.
  const releaseParts = s3.holdParts();
  // Spotify answers nothing from offset 32 000 on (about 10 MiB of CSV, two parts in): the run
  // ends up with its whole window of 4 requests out and none answered, so it can send no more.
  const api = e.hold((r) => r.offset >= 32_000);
  let child: ChildProcess | undefined;
  const result = runCli(
    [
      'new-releases',
      '--out',
      's3://resilience/stopped.csv',
      '--s3-part-size',
      '5',
      '--concurrency',
      '4',
      // Only a cancellation may end the held requests, not the client's own timeout.
      '--request-timeout',
      '600000',
    ],
    { env: { ...emulatorEnv(e), ...s3.env }, onSpawn: (c) => (child = c) },
  );
  const alive = () => child?.exitCode === null && child.signalCode === null;
  let sent = -1;
  try {
    // Both are held until released: once true, they stay true.
    const signal = untilExit(child, '4 requests and a part were held');
    await Promise.all([
      e.waitFor(() => api.held === 4, { signal }),
      s3.waitFor((_, s) => s.heldParts > 0, { signal }),
    ]);
    sent = e.stats.apiRequests;
    child?.kill('SIGTERM');
    // While its cleanup is blocked, it gives up the four requests it was waiting for and has
    // sent no other.
    await e.waitFor(() => api.held === 0, {
      signal: untilExit(child, 'the run cancelled its requests'),
    });
    assert.ok(alive(), 'still cleaning up');
    assert.equal(e.stats.apiRequests, sent);
    // Spotify answers again while the run is still alive, then S3 lets it finish its cleanup:
    // a run that went on fetching would ask for the next pages before it exits.
    api.release();
    assert.ok(alive(), 'still cleaning up');
  } catch (error) {
    child?.kill('SIGKILL');
    throw error;
  } finally {
    api.release();
    releaseParts();
  }
  const { status, stderr } = await result;
  assert.equal(status, 143, stderr);
  assert.equal(e.stats.apiRequests, sent, 'requests sent after the interrupt');
  assert.equal(await s3.getObject('resilience', 'stopped.csv'), undefined);
  assert.deepEqual(await s3.openUploads('resilience'), []);
  assert.equal(s3.count('abort', from, { probes: false }), 1, 'AbortMultipartUpload sent once');
});

test('requests that shared one failed token refresh each say "gave up" once', async () => {
  const { SpotifyClient } = await import('../src/sources/client.ts');
  const { createStats } = await import('../src/core/stats.ts');
  const controller = new AbortController();
  const client = new SpotifyClient({
    apiUrl: 'http://127.0.0.1:9',
    accountsUrl: 'http://127.0.0.1:9', // nothing listens: every token request is refused
    clientId: 'id',
    clientSecret: 'secret',
    concurrency: 4,
    maxRetries: 1,
    retryDelay: 1,
    maxRetryAfter: 60,
    maxRateLimitWait: 900,
    requestTimeout: 5_000,
    stats: createStats(),
    signal: controller.signal,
  });
  try {
    const failures = await Promise.allSettled(
      [0, 50, 100, 150].map((offset) =>
        client.getJson(`http://127.0.0.1:9/v1/browse/new-releases?offset=${offset}`, offset),
      ),
    );
    for (const failure of failures) {
      assert.equal(failure.status, 'rejected');
      const message = (failure as PromiseRejectedResult).reason.message as string;
      assert.equal(message.match(/gave up after/g)?.length, 1, message);
    }
  } finally {
    controller.abort();
    await client.close();
  }
});
