/**
 * docs/daily-job.md's promise for readers of the partitions (issue 23): after a re-run, the
 * DuckDB queries of that page read exactly the files the manifest lists — with fewer markets
 * (the old DE file removed) and with a market failing under skip (the old DE file carried over).
 * The queries are taken from the page itself, so the page and the test cannot drift apart.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Emulator } from '../src/emulator/server.ts';
import { emulatorEnv, runCli } from './helpers/cli.ts';
import { extractBlocks } from './helpers/readme.ts';
import { emulator as startedEmulator } from './helpers/servers.ts';

const PAGE = fileURLToPath(new URL('../docs/daily-job.md', import.meta.url));
const DATE = '2026-12-02';
const good = startedEmulator({ seed: 23, albums: 120 });
/** The same catalogue, but every DE page answers 500. */
const deDown = startedEmulator({ seed: 23, albums: 120, faults: [{ kind: '500', market: 'DE' }] });

/** The page's two DuckDB queries: the table, and the files read that no manifest lists. */
async function pageQueries(): Promise<[string, string]> {
  const sql = extractBlocks(await readFile(PAGE, 'utf8')).blocks.filter((b) => b.lang === 'sql');
  assert.equal(sql.length, 1, 'one sql block in docs/daily-job.md');
  const queries = (sql[0]?.text ?? '')
    .split(';')
    .map((q) => q.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
  assert.equal(queries.length, 2, queries.join('\n---\n'));
  return queries as [string, string];
}

/** Two pulls of the day into `dir/data` (the page's layout), the second as given. */
async function twoRuns(second: { markets: string; emulator: Emulator; extra?: string[] }) {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-daily-'));
  const args = (markets: string) => [
    'new-releases',
    '--market',
    markets,
    '--date',
    DATE,
    '--max-retries',
    '0',
    '--out',
    join(dir, 'data', 'dt={date}', 'market={market}', 'albums.csv'),
    '--raw',
    join(dir, 'raw', 'dt={date}', 'pages.ndjson.gz'),
  ];
  const first = await runCli(args('SE,DE,US'), { env: emulatorEnv(good) });
  assert.equal(first.status, 0, first.stderr);
  const firstManifest = await manifest(dir);
  const rerun = await runCli([...args(second.markets), ...(second.extra ?? [])], {
    env: emulatorEnv(second.emulator),
  });
  return { dir, first: firstManifest, rerun, manifest: await manifest(dir) };
}

interface Manifest {
  runId: string;
  objects: { location: string; market: string; rows: number; runId: string }[];
}
const manifest = async (dir: string): Promise<Manifest> =>
  JSON.parse(await readFile(join(dir, 'data', `dt=${DATE}`, '_manifest.json'), 'utf8'));

/** Runs the page's queries over `dir` (its `data/` made absolute, as the manifest's paths are). */
async function query(dir: string) {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const [table, unlisted] = (await pageQueries()).map((q) =>
    q.replaceAll("'data/", `'${join(dir, 'data')}/`),
  ) as [string, string];
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const files = await connection.runAndReadAll(
      `SELECT DISTINCT filename FROM read_csv('${join(dir, 'data')}/dt=*/market=*/albums.csv', filename = true, all_varchar = true) ORDER BY filename`,
    );
    return {
      rows: (await connection.runAndReadAll(table)).getRowObjects(),
      unlisted: (await connection.runAndReadAll(unlisted)).getRowObjects(),
      files: files.getRowObjects().map((r) => String(r.filename)),
    };
  } finally {
    connection.closeSync();
  }
}

test('after a re-run with fewer markets, the DuckDB glob reads exactly the manifest: SE and US of the re-run', async () => {
  const { dir, rerun, manifest: m } = await twoRuns({ markets: 'SE,US', emulator: good });
  assert.equal(rerun.status, 0, rerun.stderr);
  const read = await query(dir);
  assert.deepEqual(read.files, m.objects.map((o) => o.location).sort());
  assert.deepEqual(read.unlisted, []);
  assert.deepEqual(
    read.rows.map((r) => [String(r.dt), r.market, Number(r.rows)]),
    m.objects
      .map((o) => [DATE, o.market, o.rows])
      .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
  );
  assert.deepEqual(
    m.objects.map((o) => o.market),
    ['SE', 'US'],
  );
});

test('after a re-run with DE failing under skip, the glob reads the manifest: the new SE and US, the old DE', async () => {
  const {
    dir,
    first,
    rerun,
    manifest: m,
  } = await twoRuns({
    markets: 'SE,DE,US',
    emulator: deDown,
    extra: ['--on-market-error', 'skip'],
  });
  assert.equal(rerun.status, 7, rerun.stderr);
  const read = await query(dir);
  assert.deepEqual(read.files, m.objects.map((o) => o.location).sort());
  assert.deepEqual(read.unlisted, []);
  assert.deepEqual(
    Object.fromEntries(m.objects.map((o) => [o.market, o.runId === first.runId ? 'old' : 'new'])),
    { SE: 'new', DE: 'old', US: 'new' },
  );
  assert.deepEqual(
    read.rows.map((r) => [r.market, Number(r.rows)]).sort(),
    m.objects.map((o) => [o.market, o.rows]).sort(),
  );
});
