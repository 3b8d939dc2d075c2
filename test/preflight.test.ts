/**
 * `check` and the pull share one plan and one preflight (src/plan/plan.ts, src/plan/preflight.ts): `check`
 * exits with the status the run would have, and a run that cannot write somewhere fails before
 * it spends Spotify quota. Every case runs the real CLI against the emulator and a local S3.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { emulator, localS3, tempDir } from './helpers/servers.ts';

const BUCKET = 'preflight';
const s3 = localS3(BUCKET);
const spotify = emulator({ seed: 42, albums: 500 });
const dir = tempDir('spotify-batch-preflight-');

const env = () => ({ ...emulatorEnv(spotify), ...s3.env });
/** API requests the emulator has answered (the token endpoint not counted). */
const apiRequests = () => spotify.stats.apiRequests;

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
  assert.equal(pullRequests, 0, 'requests to Spotify before the S3 error');
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test('a wrong S3 secret fails the pull before its second request to Spotify, and check with the same status', async () => {
  const { check, pull, pullRequests } = await checkAndRun(
    ['--out', `s3://${BUCKET}/secret/a.csv`, '--max-items', '400'],
    { AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
  );
  for (const result of [check, pull]) {
    assert.equal(result.status, 5, result.stderr);
    assert.equal(
      result.stderr,
      `spotify-batch: error: S3 rejected the AWS credentials (SignatureDoesNotMatch) writing s3://${BUCKET}/secret/a.csv\n`,
    );
  }
  assert.ok(pullRequests <= 1, `${pullRequests} requests to Spotify before the S3 error`);
  assert.deepEqual(
    (await s3.listKeys(BUCKET)).filter((k) => k.startsWith('secret/')),
    [],
  );
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
  assert.equal(check.status, 10, check.stderr);
  assert.equal(pull.status, 10, pull.stderr);
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

for (const [name, args] of [
  [
    'the manifest (written last) in a folder only the data makes',
    ['--out', 'new1/a.csv', '--manifest'],
  ],
  [
    'rejects (opened first) in the folder the report makes',
    ['--out', 'x2.csv', '--report', 'made2/r.html', '--rejects', 'made2/rej.ndjson'],
  ],
] as const) {
  test(`a folder one output makes serves the others in it: ${name}`, async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'spotify-batch-folders-'));
    try {
      const checked = await runCli(['check', ...args], { env: env(), cwd });
      const pulled = await runCli(['new-releases', ...args, '--max-items', '50'], {
        env: env(),
        cwd,
      });
      assert.equal(checked.status, 0, checked.stderr);
      assert.equal(pulled.status, 0, pulled.stderr);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
}

test('a successful S3 probe is aborted: no upload stays open after check', async () => {
  const mark = s3.calls.length;
  const result = await runCli(['check', '--out', `s3://${BUCKET}/probed/a.csv`], { env: env() });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(s3.count('create', mark), 1);
  assert.equal(s3.count('abort', mark), 1);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test('--out naming a directory: check refuses it as the pull does', async () => {
  const { check, pull } = await checkAndRun(['--out', dir]);
  assert.equal(check.status, 2, check.stderr);
  assert.equal(pull.status, 2, pull.stderr);
  assert.match(check.stderr, /is a directory/);
});

test('--raw naming a folder: check and the pull refuse it, and make no name beside it', async () => {
  const folder = join(dir, 'landing');
  await mkdir(folder);
  const before = await readdir(dir);
  for (const raw of [folder, `${folder}/`]) {
    const { check, pull } = await checkAndRun(['--out', join(dir, 'raw-folder.csv'), '--raw', raw]);
    assert.equal(check.status, 2, check.stderr);
    assert.equal(pull.status, 2, pull.stderr);
    assert.match(pull.stderr, raw.endsWith('/') ? /names a file, not a folder/ : /is a directory/);
  }
  // Neither the data nor a raw landing named after the folder (`landing.<run_id>`, `llanding…`).
  assert.deepEqual(await readdir(dir), before);
  assert.deepEqual(await readdir(folder), []);
});

test('--raw /dev/null discards the pages: the data is published, exit 0, nothing made in /dev', async () => {
  const before = new Set(await readdir('/dev'));
  const out = join(dir, 'raw-devnull.csv');
  const pull = await runCli(['new-releases', '--out', out, '--raw', '/dev/null'], { env: env() });
  assert.equal(pull.status, 0, pull.stderr);
  assert.ok((await readFile(out, 'utf8')).startsWith('album_id,'));
  assert.deepEqual(
    (await readdir('/dev')).filter((name) => !before.has(name) && name.startsWith('null')),
    [],
  );
});

test('the state (written in place) in a folder only the report makes: check and the pull both refuse it', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'spotify-batch-folders-'));
  try {
    const args = ['--out', 'x.csv', '--report', 'rep/r.html', '--state', 'rep/s.tsv'];
    const checked = await runCli(['check', ...args], { env: env(), cwd });
    const pulled = await runCli(['new-releases', ...args], { env: env(), cwd });
    assert.equal(checked.status, 2, checked.stderr);
    assert.equal(pulled.status, 2, pulled.stderr);
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});

/** `check --log-format json`'s report (its one stderr line). */
async function checkReport(args: string[]) {
  const result = await runCli(['check', '--log-format', 'json', ...args], { env: env() });
  assert.equal(result.status, 0, result.stderr);
  const line = result.stderr.trim().split('\n').at(-1) as string;
  return JSON.parse(line) as { writable: string[]; outputs: string[] };
}

test('check lists every place as writable; an S3 prefix is probed once, whatever folders a file would need', async () => {
  const today = new Date().toISOString().slice(0, 10);
  const prefix = `s3://${BUCKET}/once`;
  const mark = s3.calls.length;
  // The data's {date} makes it a place whose folders are made; the state (and its lease) are
  // written in place: for files two ways of opening, for S3 one prefix and one probe.
  const report = await checkReport([
    '--out',
    `${prefix}/{date}.csv`,
    '--report',
    `${prefix}/report.html`,
    '--state',
    `${prefix}/daily.state`,
  ]);
  assert.deepEqual(report.writable, [
    `${prefix}/${today}.csv`,
    `${prefix}/report.html`,
    `${prefix}/daily.state`,
    `${prefix}/daily.state.lease`,
  ]);
  assert.equal(s3.count('create', mark), 1, 'one probe upload for one prefix');
  assert.equal(s3.count('abort', mark), 1);
  assert.deepEqual(await s3.openUploads(BUCKET), []);
});

test("check lists every output's place as writable, not one per folder: a star's tables", async () => {
  const star = join(dir, 'star', 'dt={date}/');
  const today = new Date().toISOString().slice(0, 10);
  const report = await checkReport(['--model', 'star', '--out', star, '--manifest']);
  const folder = join(dir, 'star', `dt=${today}`);
  assert.deepEqual(report.writable, [
    ...['dim_album', 'dim_artist', 'bridge_album_artist'].map((t) => join(folder, `${t}.csv`)),
    join(folder, '_manifest.json'),
  ]);
  assert.deepEqual(report.outputs, report.writable.slice(0, 3));
});

test('check says what a re-run with fewer markets will remove or keep of the previous run', async () => {
  const root = join(dir, 'rerun');
  const out = join(root, 'dt=2026-12-02', 'market={market}', 'a.csv');
  const raw = join(root, 'raw', 'pages.ndjson.gz');
  const first = await runCli(
    ['new-releases', '--market', 'SE,DE,US', '--out', out, '--raw', raw, '--date', '2026-12-02'],
    { env: env() },
  );
  assert.equal(first.status, 0, first.stderr);
  const deFile = join(root, 'dt=2026-12-02', 'market=DE', 'a.csv');
  const before = await readFile(deFile);
  const check = await runCli(
    ['check', '--market', 'SE', '--out', out, '--raw', raw, '--date', '2026-12-02'],
    { env: env() },
  );
  assert.equal(check.status, 0, check.stderr);
  const removals = check.stdout
    .toString()
    .split('\n')
    .filter((l) => l.includes('will remove'));
  assert.deepEqual(
    removals.map((l) => l.trim().split(' ')[2]).sort(),
    [deFile, join(root, 'dt=2026-12-02', 'market=US', 'a.csv')].sort(),
  );
  assert.ok(
    removals.every((l) => l.includes(raw)),
    removals.join('\n'),
  );
  // Only said: the check removed nothing.
  assert.deepEqual(await readFile(deFile), before);
});
