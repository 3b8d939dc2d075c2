/**
 * Repeatable bytes (issue 23, item 3): with `{market}` outputs the markets are pulled side by
 * side, and an album that several markets list is claimed by one of them (`--new-only`: the
 * state's first sighting). Which one must follow `--market` order, not the order the pages
 * arrive in (src/transforms/turn.ts). The emulator holds every market's pages and lets the
 * markets go in a chosen order, so each run's order is the one asked for, not a race of delays.
 *
 * The catalogue: 200 albums, each market lists all of them from its own quarter
 * (`marketShift`): SE albums 150–349, DE 0–199, US 50–249. So 200 of the 350 albums are listed
 * by two or three markets, and a release order that lets a later market claim first moves
 * albums between the per-market files.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Options } from '../src/core/options.ts';
import { album } from '../src/emulator/catalogue.ts';
import { type Emulator, marketShift, type RequestRecord } from '../src/emulator/server.ts';
import { run } from '../src/pipeline.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { emulators, localS3 } from './helpers/servers.ts';
import { untilSettled, watchedStats, whenAll } from './helpers/wait.ts';

const SEED = 23;
const ALBUMS = 200;
const emulator = emulators({ seed: SEED, albums: ALBUMS });
const s3 = localS3('order');
const MARKETS = ['SE', 'DE', 'US'];
const DATE = '2026-12-02';

/** Every order of the three markets: each is let go first, second and last twice. */
const ORDERS = [
  ['SE', 'DE', 'US'],
  ['SE', 'US', 'DE'],
  ['DE', 'SE', 'US'],
  ['DE', 'US', 'SE'],
  ['US', 'SE', 'DE'],
  ['US', 'DE', 'SE'],
];

/** The album ids `market` lists, in its order (the emulator's catalogue, as served). */
function listed(market: string): string[] {
  const shift = marketShift(market, ALBUMS);
  return Array.from({ length: ALBUMS }, (_, i) => album(SEED, i + shift, '').id);
}

/** Album ids with at least one artist: those that have rows in an `album_id,artist_id` file. */
const withArtists = new Set(
  Array.from({ length: 2 * ALBUMS }, (_, i) => album(SEED, i, '')).flatMap((a) =>
    a.artists.length > 0 ? [a.id] : [],
  ),
);

/** Which market writes each album: the first in `markets` (the --market order) that lists it. */
function owners(markets: string[]): Map<string, string> {
  const owner = new Map<string, string>();
  for (const market of markets)
    for (const id of listed(market)) if (!owner.has(id)) owner.set(id, market);
  return owner;
}

/** The market a request asks for (new-releases' `country`). */
function marketOf(request: RequestRecord): string {
  return new URLSearchParams(request.query).get('country') ?? '';
}

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

/** The album ids of a per-market `album_id,…` CSV, each once. */
async function csvIds(path: string): Promise<Set<string>> {
  const lines = (await readFile(path, 'utf8')).trim().split('\n').slice(1);
  return new Set(lines.map((line) => line.split(',')[0] as string));
}

/** The state's `album_id → market` (the market it was first written under). */
async function stateMarkets(path: string): Promise<Map<string, string>> {
  const lines = (await readFile(path, 'utf8')).trim().split('\n').slice(1);
  return new Map(lines.map((l) => [l.split('\t')[0] as string, l.split('\t')[2] as string]));
}

/**
 * The markets in the order their first answers went out, from the emulator's log (`answered`):
 * e.g. `US,DE,SE` for a run released in that order.
 */
function answeredOrder(e: Emulator): string[] {
  const answered = e.stats.log
    .filter((r) => r.answered > 0)
    .sort((a, b) => a.answered - b.answered);
  return [...new Set(answered.map(marketOf))];
}

/**
 * Runs `options` side by side (concurrency 3) with every market's pages held, then lets the
 * markets go one by one in `order`: the next once the previous one's first page was answered.
 * No market can be answered before its turn in `order`; whether it also claims first is up to
 * the run (turns), which is what the outputs then show.
 */
async function inOrder(
  order: string[],
  options: (dir: string) => Options,
): Promise<{ hashes: Record<string, string>; dir: string; e: Emulator }> {
  const e = await emulator();
  const holds = new Map(MARKETS.map((m) => [m, e.hold((r) => marketOf(r) === m)]));
  const dir = await fresh();
  const running = run(
    {
      markets: MARKETS,
      concurrency: 3,
      date: DATE,
      raw: join(dir, 'raw', 'pages.ndjson.gz'),
      ...options(dir),
    },
    { env: emulatorEnv(e) },
  );
  try {
    const signal = untilSettled(running, `markets released in the order ${order}`);
    // Every market is pulled at once: each has its first request out, held.
    await e.waitFor(() => [...holds.values()].every((h) => h.held > 0), { signal });
    for (const market of order) {
      holds.get(market)?.release();
      await e.waitFor((s) => s.log.some((r) => marketOf(r) === market && r.status === 200), {
        signal,
      });
    }
  } finally {
    for (const hold of holds.values()) hold.release();
  }
  await running;
  assert.deepEqual(answeredOrder(e), order, 'the markets were answered in the order let go');
  return { hashes: await hashes(join(dir, 'out')), dir, e };
}

/** The same run, one market after the other in --market order (no side by side, no turns). */
async function oneByOne(options: (dir: string) => Options): Promise<Record<string, string>> {
  const e = await emulator();
  const dir = await fresh();
  await run(
    {
      markets: MARKETS,
      concurrency: 1,
      date: DATE,
      raw: join(dir, 'raw', 'pages.ndjson.gz'),
      ...options(dir),
    },
    { env: emulatorEnv(e) },
  );
  assert.deepEqual(answeredOrder(e), MARKETS);
  return hashes(join(dir, 'out'));
}

const newOnly = (dir: string): Options => ({
  out: join(dir, 'out', 'dt={date}', 'market={market}', 'albums.csv'),
  state: join(dir, 'out', 'state.tsv'),
  newOnly: true,
  // Ids only, so a line is an album × artist without quoted names to parse.
  columns: ['album_id', 'artist_id'],
});

test('the catalogue: 200 of the 350 albums are listed by more than one market', () => {
  const counts = new Map<string, number>();
  for (const market of MARKETS)
    for (const id of listed(market)) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.equal(counts.size, 350);
  assert.equal([...counts.values()].filter((n) => n > 1).length, 200);
});

test('--new-only with {market} outputs: markets let go in six orders write the bytes of a one-by-one run; an album goes to the first market in --market order that lists it', {
  timeout: 120_000,
}, async () => {
  const reference = await oneByOne(newOnly);
  assert.deepEqual(Object.keys(reference).sort(), [
    'dt=2026-12-02/market=DE/albums.csv',
    'dt=2026-12-02/market=SE/albums.csv',
    'dt=2026-12-02/market=US/albums.csv',
    'state.tsv',
  ]);
  const runs = [];
  for (const order of ORDERS) {
    const r = await inOrder(order, newOnly);
    // The data files first, one by one, so a claim in the wrong order names the market file it
    // moved albums into (the state alone would also see an album without artists move).
    for (const market of MARKETS) {
      const file = `dt=${DATE}/market=${market}/albums.csv`;
      assert.equal(
        r.hashes[file],
        reference[file],
        `${file}, markets let go in the order ${order}`,
      );
    }
    runs.push(r);
  }
  for (const r of runs) assert.deepEqual(r.hashes, reference);

  // What those bytes say: each album under the first market in --market order that lists it,
  // and the state records it under that market.
  const out = join(runs[0]?.dir ?? '', 'out');
  const owner = owners(MARKETS);
  const state = await stateMarkets(join(out, 'state.tsv'));
  assert.deepEqual(new Map([...state].sort()), new Map([...owner].sort()));
  for (const market of MARKETS) {
    const expected = [...owner].filter(([id, m]) => m === market && withArtists.has(id));
    assert.deepEqual(
      [...(await csvIds(join(out, `dt=${DATE}`, `market=${market}`, 'albums.csv')))].sort(),
      expected.map(([id]) => id).sort(),
      market,
    );
  }

  // The raw landing (pages in the order they were answered) replays to the same bytes.
  for (const r of runs.slice(-2)) {
    assert.ok((await delivered(join(r.dir, 'raw', 'pages.ndjson.gz'))).startsWith('US,'));
    const dir = await fresh();
    await run({
      ...newOnly(dir),
      from: [join(r.dir, 'raw', 'pages.ndjson.gz')],
      concurrency: 3,
      date: DATE,
    });
    assert.deepEqual(await hashes(join(dir, 'out')), reference);
  }
});

test('--dedupe with {market} outputs: six orders, the bytes of a one-by-one run', {
  timeout: 120_000,
}, async () => {
  const dedupe = (dir: string): Options => ({
    out: join(dir, 'out', 'market={market}', 'albums.csv'),
    dedupe: true,
  });
  const reference = await oneByOne(dedupe);
  assert.equal(Object.keys(reference).length, 3);
  for (const order of ORDERS) {
    const r = await inOrder(order, dedupe);
    assert.deepEqual(r.hashes, reference, `markets let go in the order ${order}`);
  }
});

test('--dedupe, markets in one output: pulled one after the other in --market order, side by side or not', async () => {
  const one = (dir: string): Options => ({ out: join(dir, 'out', 'albums.csv'), dedupe: true });
  const reference = await oneByOne(one);
  const e = await emulator();
  const dir = await fresh();
  await run(
    {
      markets: MARKETS,
      concurrency: 3,
      date: DATE,
      raw: join(dir, 'raw', 'pages.ndjson.gz'),
      ...one(dir),
    },
    { env: emulatorEnv(e) },
  );
  assert.deepEqual(await hashes(join(dir, 'out')), reference);
  assert.equal(
    await delivered(join(dir, 'raw', 'pages.ndjson.gz')),
    MARKETS.flatMap((m) => Array(ALBUMS / 50).fill(m)).join(),
  );
});

/** SE's first page: the albums SE claims (it is first in --market order) before it fails. */
const SE_FIRST_PAGE = listed('SE').slice(0, 50);
/** Rows of SE's first page in an `album_id,artist_id` file (one per artist). */
const SE_FIRST_ROWS = SE_FIRST_PAGE.reduce(
  (n, _, i) => n + album(SEED, i + marketShift('SE', ALBUMS), '').artists.length,
  0,
);

/** Asserts the files and state of a run whose SE failed: DE and US own every album they list. */
async function assertSeSkipped(out: string): Promise<void> {
  assert.deepEqual((await readdir(join(out, `dt=${DATE}`))).sort(), [
    '_manifest.json',
    'market=DE',
    'market=US',
  ]);
  const owner = owners(['DE', 'US']);
  const state = await stateMarkets(join(out, 'state.tsv'));
  assert.deepEqual(new Map([...state].sort()), new Map([...owner].sort()), 'no album under SE');
  const de = await csvIds(join(out, `dt=${DATE}`, 'market=DE', 'albums.csv'));
  for (const market of ['DE', 'US']) {
    const ids =
      market === 'DE'
        ? de
        : await csvIds(join(out, `dt=${DATE}`, `market=${market}`, 'albums.csv'));
    const expected = [...owner].filter(([id, m]) => m === market && withArtists.has(id));
    assert.deepEqual([...ids].sort(), expected.map(([id]) => id).sort(), market);
  }
  // What SE had claimed and gave back: DE lists 50 of it (SE's 150–199), and writes them.
  const given = SE_FIRST_PAGE.filter((id) => owner.get(id) === 'DE' && withArtists.has(id));
  assert.ok(given.length > 30, `${given.length}`);
  for (const id of given) assert.ok(de.has(id), `${id}, claimed by SE, then written under DE`);
}

const skipArgs = (out: string) => ({
  markets: MARKETS,
  concurrency: 3,
  date: DATE,
  out: join(out, 'dt={date}', 'market={market}', 'albums.csv'),
  state: join(out, 'state.tsv'),
  newOnly: true,
  columns: ['album_id', 'artist_id'],
  onMarketError: 'skip' as const,
  maxRetries: 0,
});

test('--on-market-error skip --new-only: SE fails after claiming its first page while DE and US wait their turn; they write what it gave back, the state has nothing of SE', {
  timeout: 60_000,
}, async () => {
  const e = await emulator({ faults: [{ kind: '500', market: 'SE', offset: 50 }] });
  const failing = e.hold((r) => marketOf(r) === 'SE' && r.offset === 50);
  const watched = watchedStats();
  const dir = await fresh();
  const out = join(dir, 'out');
  const running = run(skipArgs(out), { env: emulatorEnv(e), stats: watched.stats });
  try {
    const signal = untilSettled(running, 'SE claimed its first page');
    // SE goes first, so until it ends the rows are its own (DE and US wait for their turn):
    // once its first page's rows are out, it has claimed those albums. DE and US have pages.
    const answered = (m: string) => e.stats.log.some((r) => marketOf(r) === m && r.status === 200);
    await whenAll(
      () =>
        watched.stats.rows >= SE_FIRST_ROWS &&
        failing.held === 1 &&
        answered('DE') &&
        answered('US'),
      [watched, e],
      { signal },
    );
    assert.equal(watched.stats.rows, SE_FIRST_ROWS, 'only SE had rows');
  } finally {
    failing.release();
  }
  const report = await running;
  assert.deepEqual(
    report.marketsFailed.map((f) => [f.market, f.code]),
    [['SE', 'ERR_SPOTIFY_HTTP']],
  );
  await assertSeSkipped(out);

  // The CLI: exit 7 (some markets skipped), and the same files and state. Unheld, SE may fail
  // before or after it claims its first page: given back, its albums end up the same either way.
  const cliDir = await fresh();
  const cliOut = join(cliDir, 'out');
  const failingAgain = await emulator({ faults: [{ kind: '500', market: 'SE', offset: 50 }] });
  const result = await runCli(
    [
      'new-releases',
      '--market',
      'SE,DE,US',
      '-c',
      '3',
      '--date',
      DATE,
      '--out',
      join(cliOut, 'dt={date}', 'market={market}', 'albums.csv'),
      '--state',
      join(cliOut, 'state.tsv'),
      '--new-only',
      '--columns',
      'album_id,artist_id',
      '--on-market-error',
      'skip',
      '--max-retries',
      '0',
    ],
    { env: emulatorEnv(failingAgain) },
  );
  assert.equal(result.status, 7, result.stderr);
  assert.match(result.stderr, /market SE failed and is skipped/);
  await assertSeSkipped(cliOut);
});

test('an abort while DE and US wait for SE: the run rejects, nothing is published, the lease is gone, no S3 upload left open', {
  timeout: 60_000,
}, async () => {
  const e = await emulator();
  const stuck = e.hold((r) => marketOf(r) === 'SE' && r.offset === 50);
  const watched = watchedStats();
  const controller = new AbortController();
  const prefix = 's3://order/abort/';
  const mark = s3.calls.length;
  const running = run(
    {
      markets: MARKETS,
      concurrency: 3,
      date: DATE,
      out: `${prefix}dt={date}/market={market}/albums.csv`,
      state: `${prefix}state.tsv`,
      newOnly: true,
      columns: ['album_id', 'artist_id'],
    },
    { env: { ...emulatorEnv(e), ...s3.env }, signal: controller.signal, stats: watched.stats },
  );
  try {
    const signal = untilSettled(running, 'DE and US waited for SE');
    // SE wrote its first page's rows and waits for its second; DE and US have their first
    // pages and wait for SE's turn to end.
    const answered = (m: string) => e.stats.log.some((r) => marketOf(r) === m && r.status === 200);
    await whenAll(
      () =>
        watched.stats.rows >= SE_FIRST_ROWS && stuck.held === 1 && answered('DE') && answered('US'),
      [watched, e],
      { signal },
    );
    assert.equal(watched.stats.rows, SE_FIRST_ROWS, 'only SE had rows');
    controller.abort(new Error('stop'));
    await assert.rejects(running, (error: { code?: string }) => {
      assert.equal(error.code, 'ERR_INTERRUPTED');
      return true;
    });
  } finally {
    stuck.release();
  }
  assert.ok(s3.count('put', mark) > 0, 'the lease was written');
  assert.deepEqual(await s3.listKeys('order'), [], 'no data, no state, no manifest, no lease');
  assert.deepEqual(await s3.openUploads('order'), []);
});
