/**
 * `check` and the pull share one plan and one preflight (src/plan/plan.ts, src/plan/preflight.ts): `check`
 * exits with the status the run would have, and a run that cannot write somewhere fails before
 * it spends Spotify quota. Every case runs the real CLI against the emulator and a local S3.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import { type Emulator, startEmulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';

const BUCKET = 'preflight';
let s3: LocalS3;
let emulator: Emulator;
let dir: string;

before(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
  emulator = await startEmulator({ seed: 42, albums: 500 });
  dir = await mkdtemp(join(tmpdir(), 'spotify-batch-preflight-'));
});
after(async () => {
  await Promise.all([s3.stop(), emulator.stop()]);
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ ...emulatorEnv(emulator), ...s3.env });
/** API requests the emulator has answered (the token endpoint not counted). */
const apiRequests = () => emulator.stats.apiRequests;

/** Runs `check` and then the pull with the same options; both must fail alike. */
async function checkAndRun(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const check = await runCli(['check', ...args], { env: { ...env(), ...extraEnv } });
  const before = apiRequests();
  const pull = await runCli(['new-releases', ...args], { env: { ...env(), ...extraEnv } });
  return { check, pull, pullRequests: apiRequests() - before };
}

for (const flag of ['--raw', '--report', '--state'] as const) {
  test(`a missing bucket for ${flag} fails check and the pull alike, before any page`, async () => {
    const target = {
      '--raw': 's3://no-such-bucket/raw.ndjson.gz',
      '--report': 's3://no-such-bucket/report.html',
      '--state': 's3://no-such-bucket/daily.state',
    }[flag];
    const { check, pull, pullRequests } = await checkAndRun([
      '--out',
      `s3://${BUCKET}/missing${flag}/a.csv`,
      flag,
      target,
    ]);
    assert.equal(check.status, 5, check.stderr);
    assert.equal(pull.status, 5, pull.stderr);
    assert.match(check.stderr, /no-such-bucket/);
    assert.match(pull.stderr, /no-such-bucket/);
    assert.equal(pullRequests, 0, 'the pull asked Spotify for pages it could never publish');
    assert.deepEqual(
      (await s3.listKeys(BUCKET)).filter((k) => k.startsWith(`missing${flag}/`)),
      [],
    );
  });
}

test('wrong S3 credentials fail the pull before its first page, and check with the same status', async () => {
  const { check, pull, pullRequests } = await checkAndRun(
    ['--out', `s3://${BUCKET}/creds/a.csv`, '--max-items', '400'],
    { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG0' },
  );
  assert.equal(check.status, 5, check.stderr);
  assert.equal(pull.status, 5, pull.stderr);
  assert.match(pull.stderr, /InvalidAccessKeyId|access key/i);
  assert.ok(pullRequests <= 1, `${pullRequests} requests to Spotify before the S3 error`);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test('--new-only over an existing partition: check refuses it with the status of the pull', async () => {
  const out = join(dir, 'dt=2026-12-01', 'albums.csv');
  await mkdir(join(dir, 'dt=2026-12-01'));
  await writeFile(out, 'album_id\nkept\n');
  const state = join(dir, 'new-only.state');
  const { check, pull, pullRequests } = await checkAndRun([
    '--out',
    out,
    '--state',
    state,
    '--new-only',
  ]);
  assert.equal(check.status, pull.status, `${check.stderr}\n${pull.stderr}`);
  assert.notEqual(check.status, 0, check.stderr);
  assert.match(check.stderr, /already exists/);
  assert.equal(pullRequests, 0);
});

test("check's plan lists every place the run writes", async () => {
  const result = await runCli(
    [
      'check',
      '--out',
      join(dir, 'plan', 'dt={date}', 'a.csv'),
      '--raw',
      join(dir, 'plan', 'raw', 'dt={date}', 'pages.ndjson.gz'),
      '--report',
      join(dir, 'plan', 'report.html'),
      '--state',
      join(dir, 'plan.state'),
      '--rejects',
      join(dir, 'rejects.ndjson'),
      '--manifest',
    ],
    { env: env() },
  );
  assert.equal(result.status, 0, result.stderr);
  const today = new Date().toISOString().slice(0, 10);
  const out = result.stdout.toString();
  for (const place of [
    `raw landing: ${join(dir, 'plan', 'raw', `dt=${today}`, 'pages.ndjson.gz')}`,
    `report: ${join(dir, 'plan', 'report.html')}`,
    `state: ${join(dir, 'plan.state')} (lease ${join(dir, 'plan.state')}.lease)`,
    `rejects: ${join(dir, 'rejects.ndjson')}`,
    `manifest: ${join(dir, 'plan', `dt=${today}`, '_manifest.json')}`,
  ]) {
    assert.ok(out.includes(place), `missing "${place}" in:\n${out}`);
  }
});

test('a lease held by a live run: check exits 8 as the pull does, and neither takes it', async () => {
  const state = join(dir, 'held.state');
  // This test process is alive on this host: its lease cannot be taken over.
  const lease = `${JSON.stringify({ runId: 'other-run', startedAt: new Date().toISOString(), host: hostname(), pid: process.pid })}\n`;
  await writeFile(`${state}.lease`, lease);
  const { check, pull, pullRequests } = await checkAndRun([
    '--out',
    join(dir, 'held.csv'),
    '--state',
    state,
  ]);
  assert.equal(check.status, 8, check.stderr);
  assert.equal(pull.status, 8, pull.stderr);
  assert.match(check.stderr, /in use by run other-run/);
  assert.equal(pullRequests, 0);
  assert.equal(await readFile(`${state}.lease`, 'utf8'), lease);
});
