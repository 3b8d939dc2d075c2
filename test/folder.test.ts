/**
 * A folder is one run's truth (issue 23): after every run, the folder that holds `_manifest.json`
 * holds exactly the data files its manifest lists, each with the run that wrote it; a re-run
 * replaces the previous run of that folder as a unit; the raw landing is append-only.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { localS3, emulator as startedEmulator } from './helpers/servers.ts';
import { s3Snapshot, snapshot } from './helpers/snapshot.ts';

const s3 = localS3();
const good = startedEmulator({ seed: 1, albums: 120 });
/** Another catalogue: every DE page answers 500 (no retries in these runs). */
const deDown = startedEmulator({ seed: 2, albums: 120, faults: [{ kind: '500', market: 'DE' }] });

const pull = (markets: string) => [
  'new-releases',
  '--market',
  markets,
  '--concurrency',
  '1',
  '--max-retries',
  '0',
];

interface ManifestObject {
  location: string;
  market: string | null;
  runId: string;
  raw?: string;
}
interface Manifest {
  runId: string;
  objects: ManifestObject[];
}

/** The data files of a folder, as the manifest names them (relative to `root`). */
const listed = (m: Manifest, root: string) =>
  m.objects.map((o) => o.location.slice(root.length)).sort();

/** The markets of a raw landing's lines. */
const rawMarkets = (gz: Buffer) => [
  ...new Set(
    gunzipSync(gz)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { market: string }).market),
  ),
];

async function filesTwice(second: string, env2: NodeJS.ProcessEnv, extra: string[] = []) {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-folder-'));
  const out = join(dir, 'dt=X', 'market={market}', 'albums.csv');
  const raw = join(dir, 'raw', 'dt=X', 'pages.ndjson.gz');
  const args = ['--out', out, '--raw', raw];
  const first = await runCli([...pull('SE,DE,US'), ...args], { env: emulatorEnv(good) });
  assert.equal(first.status, 0, first.stderr);
  const m1 = JSON.parse(await readFile(join(dir, 'dt=X', '_manifest.json'), 'utf8')) as Manifest;
  const before = await snapshot(dir);
  const run2 = await runCli([...pull(second), ...args, ...extra], { env: env2 });
  return { dir, m1, before, run2 };
}

test('files: a re-run with fewer markets removes the old DE file; the folder is exactly the manifest', async () => {
  const { dir, m1, before, run2 } = await filesTwice('SE,US', emulatorEnv(good));
  assert.equal(run2.status, 0, run2.stderr);
  const folder = join(dir, 'dt=X');
  const m2 = JSON.parse(await readFile(join(folder, '_manifest.json'), 'utf8')) as Manifest;
  const files = [...(await snapshot(folder)).keys()].filter((f) => f !== '_manifest.json').sort();
  assert.deepEqual(files, ['market=SE/albums.csv', 'market=US/albums.csv']);
  assert.deepEqual(listed(m2, `${folder}/`), files);
  assert.ok(m2.objects.every((o) => o.runId === m2.runId));
  assert.notEqual(m1.runId, m2.runId);
  // The copy that remains of the removed DE file: the first run's raw landing, untouched.
  const firstRaw = join('raw', 'dt=X', 'pages.ndjson.gz');
  assert.deepEqual(await readFile(join(dir, firstRaw)), before.get(firstRaw));
  assert.match(run2.stderr, /removed .*market=DE\/albums\.csv.*pages\.ndjson\.gz/);
});

test('files: a re-run with DE failing under skip keeps the old DE file, listed with its old run; both raw landings stay', async () => {
  const { dir, m1, before, run2 } = await filesTwice('SE,DE,US', emulatorEnv(deDown), [
    '--on-market-error',
    'skip',
  ]);
  assert.equal(run2.status, 7, run2.stderr);
  const folder = join(dir, 'dt=X');
  const m2 = JSON.parse(await readFile(join(folder, '_manifest.json'), 'utf8')) as Manifest;
  const de = join('dt=X', 'market=DE', 'albums.csv');
  assert.deepEqual(await readFile(join(dir, de)), before.get(de), 'the old DE file is kept');
  const files = [...(await snapshot(folder)).keys()].filter((f) => f !== '_manifest.json').sort();
  assert.deepEqual(listed(m2, `${folder}/`), files);
  const byMarket = Object.fromEntries(m2.objects.map((o) => [o.market, o]));
  assert.equal(byMarket.DE?.runId, m1.runId);
  assert.equal(byMarket.SE?.runId, m2.runId);
  // The raw landing is append-only: the first one untouched, the second beside it.
  const rawDir = join(dir, 'raw', 'dt=X');
  assert.deepEqual((await readdir(rawDir)).sort(), [
    `pages.${m2.runId}.ndjson.gz`,
    'pages.ndjson.gz',
  ]);
  const firstRaw = join('raw', 'dt=X', 'pages.ndjson.gz');
  assert.deepEqual(await readFile(join(dir, firstRaw)), before.get(firstRaw));
  assert.deepEqual(rawMarkets(await readFile(join(rawDir, 'pages.ndjson.gz'))), ['SE', 'DE', 'US']);
  assert.deepEqual(rawMarkets(await readFile(join(rawDir, `pages.${m2.runId}.ndjson.gz`))), [
    'SE',
    'US',
  ]);
  // Each output names the raw landing behind it.
  assert.equal(byMarket.DE?.raw, join(rawDir, 'pages.ndjson.gz'));
  assert.equal(byMarket.SE?.raw, join(rawDir, `pages.${m2.runId}.ndjson.gz`));
});

test('files: a re-run that fails leaves the folder and the raw landing byte-identical', async () => {
  const { dir, before, run2 } = await filesTwice('SE,DE,US', emulatorEnv(deDown));
  assert.equal(run2.status, 4, run2.stderr);
  assert.deepEqual(await snapshot(dir), before);
});

test('files: without a raw landing a market no longer asked for is kept and listed, not lost', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-folder-'));
  const out = join(dir, 'dt=X', 'market={market}', 'albums.csv');
  const first = await runCli([...pull('SE,DE,US'), '--out', out], { env: emulatorEnv(good) });
  assert.equal(first.status, 0, first.stderr);
  const m1 = JSON.parse(await readFile(join(dir, 'dt=X', '_manifest.json'), 'utf8')) as Manifest;
  const second = await runCli([...pull('SE,US'), '--out', out], { env: emulatorEnv(good) });
  assert.equal(second.status, 0, second.stderr);
  const folder = join(dir, 'dt=X');
  const m2 = JSON.parse(await readFile(join(folder, '_manifest.json'), 'utf8')) as Manifest;
  const files = [...(await snapshot(folder)).keys()].filter((f) => f !== '_manifest.json').sort();
  assert.deepEqual(files, ['market=DE/albums.csv', 'market=SE/albums.csv', 'market=US/albums.csv']);
  assert.deepEqual(listed(m2, `${folder}/`), files);
  assert.equal(m2.objects.find((o) => o.market === 'DE')?.runId, m1.runId);
  assert.match(second.stderr, /kept .*market=DE\/albums\.csv/);
});

test('S3: a re-run with fewer markets deletes the old DE object; the prefix is exactly the manifest', async () => {
  const bucket = 'folder-fewer';
  await s3.createBucket(bucket);
  const out = `s3://${bucket}/dt=X/market={market}/albums.csv`;
  const raw = `s3://${bucket}/raw/dt=X/pages.ndjson.gz`;
  const env = { ...emulatorEnv(good), ...s3.env };
  const first = await runCli([...pull('SE,DE,US'), '--out', out, '--raw', raw], { env });
  assert.equal(first.status, 0, first.stderr);
  const before = await s3Snapshot(s3, bucket);
  const second = await runCli([...pull('SE,US'), '--out', out, '--raw', raw], { env });
  assert.equal(second.status, 0, second.stderr);
  const m2 = JSON.parse(
    (await s3.getObject(bucket, 'dt=X/_manifest.json'))?.body.toString('utf8') ?? '',
  ) as Manifest;
  const keys = await s3.listKeys(bucket);
  const data = keys.filter((k) => k.startsWith('dt=X/') && k !== 'dt=X/_manifest.json').sort();
  assert.deepEqual(data, ['dt=X/market=SE/albums.csv', 'dt=X/market=US/albums.csv']);
  assert.deepEqual(listed(m2, `s3://${bucket}/`), data);
  // Both raw landings are there, the first byte-identical.
  assert.deepEqual(keys.filter((k) => k.startsWith('raw/')).sort(), [
    `raw/dt=X/pages.${m2.runId}.ndjson.gz`,
    'raw/dt=X/pages.ndjson.gz',
  ]);
  assert.deepEqual(
    (await s3.getObject(bucket, 'raw/dt=X/pages.ndjson.gz'))?.body,
    before.get('raw/dt=X/pages.ndjson.gz'),
  );
});

test('S3: a re-run with DE failing under skip keeps the old DE object, listed with its old run', async () => {
  const bucket = 'folder-skip';
  await s3.createBucket(bucket);
  const out = `s3://${bucket}/dt=X/market={market}/albums.csv`;
  const raw = `s3://${bucket}/raw/dt=X/pages.ndjson.gz`;
  const first = await runCli([...pull('SE,DE,US'), '--out', out, '--raw', raw], {
    env: { ...emulatorEnv(good), ...s3.env },
  });
  assert.equal(first.status, 0, first.stderr);
  const before = await s3Snapshot(s3, bucket);
  const m1 = JSON.parse(before.get('dt=X/_manifest.json')?.toString('utf8') ?? '') as Manifest;
  const second = await runCli(
    [...pull('SE,DE,US'), '--out', out, '--raw', raw, '--on-market-error', 'skip'],
    { env: { ...emulatorEnv(deDown), ...s3.env } },
  );
  assert.equal(second.status, 7, second.stderr);
  const m2 = JSON.parse(
    (await s3.getObject(bucket, 'dt=X/_manifest.json'))?.body.toString('utf8') ?? '',
  ) as Manifest;
  assert.deepEqual(
    (await s3.getObject(bucket, 'dt=X/market=DE/albums.csv'))?.body,
    before.get('dt=X/market=DE/albums.csv'),
  );
  const data = (await s3.listKeys(bucket))
    .filter((k) => k.startsWith('dt=X/') && k !== 'dt=X/_manifest.json')
    .sort();
  assert.deepEqual(listed(m2, `s3://${bucket}/`), data);
  assert.equal(m2.objects.find((o) => o.market === 'DE')?.runId, m1.runId);
  assert.equal(m2.objects.find((o) => o.market === 'DE')?.raw, raw);
});

test('files: a re-run deletes nothing outside the manifest’s folder or not listed in it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-folder-'));
  const out = join(dir, 'dt=X', 'market={market}', 'albums.csv');
  const raw = join(dir, 'raw', 'pages.ndjson.gz');
  const args = ['--out', out, '--raw', raw];
  const first = await runCli([...pull('SE,DE,US'), ...args], { env: emulatorEnv(good) });
  assert.equal(first.status, 0, first.stderr);
  // A manifest edited to claim a file outside its folder, and a file put in by hand.
  const manifestPath = join(dir, 'dt=X', '_manifest.json');
  const m1 = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  const outside = join(dir, 'outside.csv');
  const byHand = join(dir, 'dt=X', 'market=FR', 'albums.csv');
  await mkdir(dirname(byHand), { recursive: true });
  await writeFile(outside, 'keep me\n');
  await writeFile(byHand, 'mine\n');
  m1.objects.push({ location: outside, market: 'FR', runId: m1.runId, raw });
  m1.objects.push({
    location: `${join(dir, 'dt=X')}/../outside.csv`,
    market: 'FR',
    runId: m1.runId,
    raw,
  });
  await writeFile(manifestPath, JSON.stringify(m1));
  const second = await runCli([...pull('SE,US'), ...args], { env: emulatorEnv(good) });
  assert.equal(second.status, 0, second.stderr);
  assert.equal(await readFile(outside, 'utf8'), 'keep me\n');
  assert.equal(await readFile(byHand, 'utf8'), 'mine\n');
  assert.equal(existsSync(join(dir, 'dt=X', 'market=DE', 'albums.csv')), false);
});
