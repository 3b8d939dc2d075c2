import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import type { Options } from '../src/core/options.ts';
import type { RunEvent } from '../src/core/stats.ts';
import type { FaultRule } from '../src/emulator/faults.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { run } from '../src/pipeline.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { Collector, runToBuffer } from './helpers/run.ts';

const SEED = 21;
const ALBUMS = 600;
const fast: Options = { retryDelay: 20, concurrency: 4 };
let clean: Buffer;
const started: Emulator[] = [];
async function emulator(options: Parameters<typeof startEmulator>[0]): Promise<Emulator> {
  const e = await startEmulator({ seed: SEED, albums: ALBUMS, ...options });
  started.push(e);
  return e;
}
let s3: LocalS3;
before(async () => {
  clean = (await runToBuffer(await emulator({}))).bytes;
  s3 = await startS3();
  await s3.createBucket('resilience');
});
after(() => Promise.all([...started.map((e) => e.stop()), s3.stop()]));

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
    faults: [{ kind: '429', every: 6, times: 1, retryAfter: '2' }],
  });
  const events: RunEvent[] = [];
  const report = await run(
    { ...fast, concurrency: 8 },
    {
      env: emulatorEnv(e),
      stdout: new Collector(),
      onEvent: (event) => events.push(event),
    },
  );
  assert.equal(report.rateLimited, 1);
  const limited = e.stats.log.find((r) => r.status === 429);
  assert.ok(limited);
  // Requests already on the wire when the 429 was sent may land a moment later; after that,
  // nothing until the two seconds are over.
  const during = e.stats.log.filter((r) => r.at > limited.at + 200 && r.at < limited.at + 1900);
  assert.deepEqual(during, []);
  assert.ok(report.rateLimitWaitMs >= 1900);
  const event = events.find((ev) => ev.event === 'rate-limited');
  assert.ok(
    event && event.event === 'rate-limited' && event.concurrency === 4,
    'concurrency halved on 429',
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

async function interrupt(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => boolean,
  signal: NodeJS.Signals,
) {
  let child: import('node:child_process').ChildProcess | undefined;
  const result = runCli(args, { env, onSpawn: (c) => (child = c) });
  while (!ready()) await sleep(20);
  child?.kill(signal);
  return result;
}

test('SIGTERM mid-run with --out FILE: exit 143, nothing left', async () => {
  const e = await emulator({ albums: 20_000, latencyMs: 100 });
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-'));
  const result = await interrupt(
    ['new-releases', '--out', join(dir, 'x.csv')],
    emulatorEnv(e),
    () => e.stats.apiRequests >= 6,
    'SIGTERM',
  );
  assert.equal(result.status, 143, result.stderr);
  assert.match(result.stderr, /interrupted by SIGTERM/);
  assert.deepEqual(await readdir(dir), []);
});

test('SIGTERM mid-run to S3 after parts were uploaded: exit 143, no object, no open upload', async () => {
  const e = await emulator({ seed: 8, albums: 64_000, cachePages: true, latencyMs: 2 });
  const before = s3.requests.length;
  const result = await interrupt(
    ['new-releases', '--out', 's3://resilience/interrupted.csv', '--s3-part-size', '5'],
    { ...emulatorEnv(e), ...s3.env },
    () => s3.requests.slice(before).includes('PUT part'),
    'SIGTERM',
  );
  assert.equal(result.status, 143, result.stderr);
  assert.equal(await s3.getObject('resilience', 'interrupted.csv'), undefined);
  assert.deepEqual(await s3.openUploads('resilience'), []);
  assert.ok(s3.requests.slice(before).includes('DELETE upload'));
});

test('the emulator log proves the interrupted run stopped fetching', async () => {
  const e = await emulator({ albums: 20_000, latencyMs: 50 });
  const result = await interrupt(
    ['new-releases'],
    emulatorEnv(e),
    () => e.stats.apiRequests >= 4,
    'SIGINT',
  );
  assert.equal(result.status, 130);
  const seen = e.stats.apiRequests;
  await sleep(300);
  assert.equal(e.stats.apiRequests, seen);
  assert.ok(seen < 400);
  void once;
});
