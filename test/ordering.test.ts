/**
 * Repeatable bytes (issue 23, item 3): with `{market}` outputs the markets are pulled side by
 * side, and an album that several markets list is claimed by one of them (`--new-only`: the
 * state's first sighting). Which one must follow `--market` order, not the order the pages
 * arrive in. Six runs, each with the markets' answers delayed in another order by the emulator,
 * must write the same bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Options } from '../src/core/options.ts';
import { run } from '../src/pipeline.ts';
import { emulatorEnv } from './helpers/cli.ts';
import { emulators } from './helpers/servers.ts';

const emulator = emulators({ seed: 23, albums: 200 });
const MARKETS = ['SE', 'DE', 'US'];

/** Every order of three delays: each market is the fastest in two runs, the slowest in two. */
const LATENCIES = [
  [0, 40, 80],
  [0, 80, 40],
  [40, 0, 80],
  [40, 80, 0],
  [80, 0, 40],
  [80, 40, 0],
];

/** A fresh folder with `out/` and `raw/` made (a file's folder must exist; {market} ones are made). */
async function fresh(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-order-'));
  await mkdir(join(dir, 'out'));
  await mkdir(join(dir, 'raw'));
  return dir;
}

/** SHA-256 of every file below `dir` except the manifest (it names the run and its times). */
async function hashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === '_manifest.json') continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return out;
}

/** The markets of a raw landing's pages, in the order they were delivered (e.g. `DE,SE,DE,US,…`). */
async function delivered(raw: string): Promise<string> {
  return gunzipSync(await readFile(raw))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { market: string }).market)
    .join();
}

/**
 * Six runs of `options` (into fresh folders), one per order of delays. With `{market}` outputs
 * the delays reorder the markets (asserted, else the test could not fail); markets that share
 * one output are pulled one after the other by design.
 */
async function sixRuns(options: (dir: string) => Options, reordered = true) {
  const runs: { hashes: Record<string, string>; delivered: string; dir: string }[] = [];
  for (const delays of LATENCIES) {
    const e = await emulator({
      marketLatencyMs: Object.fromEntries(MARKETS.map((m, i) => [m, delays[i] as number])),
    });
    const dir = await fresh();
    await run(
      {
        markets: MARKETS,
        concurrency: 3,
        limit: 50,
        date: '2026-12-02',
        raw: join(dir, 'raw', 'pages.ndjson.gz'),
        ...options(dir),
      },
      { env: emulatorEnv(e) },
    );
    runs.push({
      hashes: await hashes(join(dir, 'out')),
      delivered: await delivered(join(dir, 'raw', 'pages.ndjson.gz')),
      dir,
    });
  }
  const orders = new Set(runs.map((r) => r.delivered));
  assert.equal(orders.size > 1, reordered, [...orders].join(' '));
  return runs;
}

test('--new-only with {market} outputs: six runs, markets delivered in six orders, one SHA-256 per output (data and state)', async () => {
  const runs = await sixRuns((dir) => ({
    out: join(dir, 'out', 'dt={date}', 'market={market}', 'albums.csv'),
    state: join(dir, 'out', 'state.tsv'),
    newOnly: true,
    // Ids only, so a line is an album × artist without quoted names to parse.
    columns: ['album_id', 'artist_id'],
  }));
  const first = runs[0]?.hashes ?? {};
  assert.deepEqual(Object.keys(first).sort(), [
    'dt=2026-12-02/market=DE/albums.csv',
    'dt=2026-12-02/market=SE/albums.csv',
    'dt=2026-12-02/market=US/albums.csv',
    'state.tsv',
  ]);
  for (const r of runs) assert.deepEqual(r.hashes, first, `delivered ${r.delivered}`);
  // The state records each album under the market whose file holds it (an album without
  // artists has no row: it is in the state only).
  const out = join(runs[0]?.dir ?? '', 'out');
  const ids = async (market: string) =>
    new Set(
      (await readFile(join(out, 'dt=2026-12-02', `market=${market}`, 'albums.csv'), 'utf8'))
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',')[0]),
    );
  const state = (await readFile(join(out, 'state.tsv'), 'utf8')).trim().split('\n').slice(1);
  const recorded = new Map(state.map((l) => [l.split('\t')[0], l.split('\t')[2]]));
  for (const market of MARKETS) {
    for (const id of await ids(market))
      assert.equal(recorded.get(id), market, `${id} in ${market}`);
  }

  // The raw landing (pages in arrival order) replays to the same bytes.
  for (const r of runs.slice(0, 2)) {
    const dir = await fresh();
    await run({
      from: [join(r.dir, 'raw', 'pages.ndjson.gz')],
      out: join(dir, 'out', 'dt={date}', 'market={market}', 'albums.csv'),
      state: join(dir, 'out', 'state.tsv'),
      newOnly: true,
      columns: ['album_id', 'artist_id'],
      concurrency: 3,
      date: '2026-12-02',
    });
    assert.deepEqual(await hashes(join(dir, 'out')), first);
  }
});

test('--dedupe, markets in one output and with {market} outputs: six orders, one SHA-256 per output', async () => {
  for (const [out, reordered] of [
    ['albums.csv', false],
    [join('market={market}', 'albums.csv'), true],
  ] as const) {
    const runs = await sixRuns((dir) => ({ out: join(dir, 'out', out), dedupe: true }), reordered);
    const first = runs[0]?.hashes ?? {};
    assert.ok(Object.keys(first).length >= 1);
    for (const r of runs) assert.deepEqual(r.hashes, first, `delivered ${r.delivered}`);
  }
});
