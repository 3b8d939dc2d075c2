/**
 * `--report`: the HTML page of a run, opened in a real browser (Debian's Chromium, headless,
 * from file:// with the network blocked): no console error, no request but the page itself,
 * every chart drawn with a size, and the run's numbers in the page equal to the run's JSON
 * report. Plus the page as an output of the commit (published with the data, not at all on
 * failure), the option's checks, the aggregates' bounds, and Vega loaded only when asked.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type LocalS3, startS3 } from '../scripts/local-s3.ts';
import type { SourceItem } from '../src/core/records.ts';
import { album } from '../src/emulator/catalogue.ts';
import { type Emulator, marketShift, startEmulator } from '../src/emulator/server.ts';
import type { RunReport } from '../src/pipeline.ts';
import { MarketOverlap, ReportAggregator, TopArtists } from '../src/report/aggregate.ts';
import { dataCharts, timeCharts } from '../src/report/charts.ts';
import { reportHtml } from '../src/report/html.ts';
import { Browser } from './helpers/browser.ts';
import { CLI, emulatorEnv, runCli } from './helpers/cli.ts';

const T = { timeout: 120_000 };
/** Charts every run with albums and several markets has (recent releases depend on the day). */
const DATA_CHARTS = ['releases-years', 'album-types', 'tracks', 'top-artists'];
const MARKET_CHARTS = ['markets', 'overlap', 'market-count'];
const TIME_CHARTS = ['requests', 'in-flight', 'rows'];

let emulator: Emulator;
let empty: Emulator;
let s3: LocalS3;
let browser: Browser;
let dir: string;

before(async () => {
  [emulator, empty, s3, browser] = await Promise.all([
    startEmulator({
      seed: 7,
      albums: 300,
      latencyMs: 5,
      // One 429 with Retry-After: 1, so the run over time has a shaded pause.
      faults: [{ kind: '429', times: 1, offset: 100, retryAfter: '1' }],
    }),
    startEmulator({ albums: 0 }),
    startS3(),
    Browser.launch(),
  ]);
  await s3.createBucket('reports');
  dir = await mkdtemp(join(tmpdir(), 'spotify-batch-report-'));
});
after(async () => {
  await Promise.all([emulator.stop(), empty.stop(), s3.stop(), browser.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI with JSON logs; returns its final report. */
async function pull(args: string[], on = emulator) {
  const result = await runCli(['new-releases', ...args, '--log-format', 'json'], {
    env: emulatorEnv(on),
  });
  assert.equal(result.status, 0, result.stderr);
  const line = result.stderr.split('\n').find((l) => l.includes('"event":"report"'));
  assert.ok(line, result.stderr);
  return { report: JSON.parse(line) as RunReport & { requests?: number }, stdout: result.stdout };
}

interface Seen {
  fields: [string, string, string][];
  outputs: Record<string, [string, string]>[];
  charts: {
    id: string;
    width: number;
    height: number;
    marks: number;
    alt: string;
    rows: number;
    /** The chart's numbers as the page shows them, one array of cell texts per row. */
    table: string[][];
  }[];
  notes: string[];
  footer: string;
}

/** Opens the page as a person would, from file://, and reads back what it shows. */
async function open(file: string) {
  const url = pathToFileURL(file).href;
  const page = await browser.newPage();
  try {
    await page.goto(url);
    const seen = await page.evaluate<Seen>(`(() => ({
      fields: [...document.querySelectorAll('[data-field]')].map((e) => [e.dataset.field, e.dataset.value, e.textContent]),
      outputs: [...document.querySelectorAll('tr[data-output]')].map((tr) => Object.fromEntries(
        [...tr.querySelectorAll('[data-output-field]')].map((td) => [td.dataset.outputField, [td.dataset.value, td.textContent]]))),
      charts: [...document.querySelectorAll('figure[data-chart]')].map((f) => {
        const svg = f.querySelector('svg');
        const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
        return {
          id: f.dataset.chart,
          width: box.width,
          height: box.height,
          marks: svg ? svg.querySelectorAll('path, rect, line, text').length : 0,
          alt: svg && svg.getAttribute('role') === 'img' ? document.getElementById(svg.getAttribute('aria-describedby')).textContent : '',
          rows: f.querySelectorAll('details table tbody tr').length,
          table: [...f.querySelectorAll('details table tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
        };
      }),
      notes: [...document.querySelectorAll('.note')].map((p) => p.textContent),
      footer: document.querySelector('footer').textContent,
    }))()`);
    return { url, seen, log: page.log };
  } finally {
    await page.close();
  }
}

/** The browser assertions every report must pass, for the run whose JSON report is `report`. */
function assertPage(
  { url, seen, log }: Awaited<ReturnType<typeof open>>,
  report: RunReport & { requests?: number },
  charts: string[],
) {
  assert.deepEqual(log.errors, [], 'no console error');
  assert.deepEqual(log.requests, [url], 'no request but the page itself');
  // The memory bounds are stated in words (not escaped into something else).
  assert.match(seen.footer, /top artists exact up to 10,000 distinct artists, then a Space-Saving/);
  for (const id of charts) {
    assert.ok(
      seen.charts.some((c) => c.id === id),
      `chart ${id} is in the page: ${seen.charts.map((c) => c.id)}`,
    );
  }
  for (const chart of seen.charts) {
    assert.ok(chart.width > 0 && chart.height > 0, `chart ${chart.id} has a size`);
    assert.ok(chart.marks > 0, `chart ${chart.id} has marks`);
    assert.ok(chart.alt.length > 20, `chart ${chart.id} has a text alternative`);
    assert.ok(chart.rows > 0, `chart ${chart.id} has its numbers in a table`);
  }
  // Every number the page shows with a data-field equals the JSON report's.
  const keys = new Set<string>();
  for (const [key, value, text] of seen.fields) {
    keys.add(key);
    const expected = (report as unknown as Record<string, unknown>)[key];
    assert.equal(value, String(expected), `${key} in the page`);
    const shown = typeof expected === 'number' ? text.replaceAll(',', '') : text;
    assert.equal(shown, String(expected), `${key} as shown`);
  }
  for (const key of [
    'runId',
    'startedAt',
    'pages',
    'albums',
    'rows',
    'rejected',
    'retries',
    'rateLimited',
    'rateLimitWaitMs',
    'tokens',
    'serializedBytes',
    'storedBytes',
  ]) {
    assert.ok(keys.has(key), `the page shows ${key}`);
  }
  assert.equal(seen.outputs.length, report.outputs.length);
  report.outputs.forEach((out, i) => {
    const row = seen.outputs[i] as Record<string, [string, string]>;
    assert.deepEqual(row.location, [out.location, out.location]);
    assert.deepEqual(row.market, [out.market ?? '', out.market ?? '']);
    assert.equal(row.rows?.[0], String(out.rows));
    assert.equal(row.storedBytes?.[0], String(out.storedBytes));
    assert.equal(row.sha256?.[0], out.sha256 ?? '');
    assert.match(out.sha256 ?? '', /^[0-9a-f]{64}$/);
  });
}

describe('the page in a browser', () => {
  test(
    'three markets to files: every chart drawn, the numbers equal the JSON report',
    T,
    async () => {
      const out = join(dir, 'markets');
      const before = emulator.stats.apiRequests;
      const { report } = await pull([
        '--market',
        'SE,DE,US',
        '--out',
        `${out}/{market}.csv`,
        '--report',
        `${out}/report.html`,
      ]);
      assert.equal(report.report, `${out}/report.html`);
      assert.deepEqual((await readdir(out)).sort(), [
        'DE.csv',
        'SE.csv',
        'US.csv',
        '_manifest.json',
        'report.html',
      ]);
      const page = await open(`${out}/report.html`);
      assertPage(page, report, [...DATA_CHARTS, ...MARKET_CHARTS, ...TIME_CHARTS]);
      const requests = page.seen.charts.find((c) => c.id === 'requests');
      // The page's request count comes from undici's diagnostics channels: the emulator agrees.
      assert.match(
        requests?.alt ?? '',
        new RegExp(`\\(${emulator.stats.apiRequests - before} requests in all`),
      );
      assert.ok(report.rateLimited >= 1);
      assert.match(requests?.alt ?? '', /Shaded: 1 rate-limit pause/);
      const overlap = page.seen.charts.find((c) => c.id === 'overlap');
      assert.match(overlap?.alt ?? '', /distinct albums in all/);
    },
  );

  test('a run to stdout: the report is the only staged output', T, async () => {
    const file = join(dir, 'stdout', 'report.html');
    const { report, stdout } = await pull(['--out', '-', '--report', file]);
    assert.equal(stdout.toString().split('\n')[0]?.startsWith('album_id,'), true);
    assert.equal(report.outputs.length, 1);
    assert.equal(report.outputs[0]?.location, '-');
    assertPage(await open(file), report, [...DATA_CHARTS, ...TIME_CHARTS]);
  });

  test('a star model with two markets: three tables listed, market charts drawn', T, async () => {
    const out = join(dir, 'star');
    const { report } = await pull([
      '--model',
      'star',
      '--market',
      'SE,DE',
      '--out',
      `${out}/`,
      '--report',
      `${out}/report.html`,
    ]);
    assert.equal(report.outputs.length, 3);
    assertPage(await open(`${out}/report.html`), report, [
      ...DATA_CHARTS,
      ...MARKET_CHARTS,
      ...TIME_CHARTS,
    ]);
  });

  test('zero albums: the page says so, the run over time is still drawn', T, async () => {
    const file = join(dir, 'empty', 'report.html');
    const { report } = await pull(
      ['--out', join(dir, 'empty', 'none.csv'), '--report', file],
      empty,
    );
    assert.equal(report.albums, 0);
    const page = await open(file);
    assertPage(page, report, TIME_CHARTS);
    assert.deepEqual(
      page.seen.charts.map((c) => c.id),
      TIME_CHARTS,
    );
    assert.ok(page.seen.notes.some((n) => /no albums/.test(n)));
  });
});

describe('with --new-only: the markets count what they listed', () => {
  const SEED = 11;
  const MARKETS = ['SE', 'DE', 'US'];
  /** The ids the emulator lists in a market: its catalogue from that market's own start. */
  const listedIds = (albums: number, market: string) => {
    const shift = marketShift(market, albums);
    return new Set(Array.from({ length: albums }, (_, i) => album(SEED, i + shift, '').id));
  };
  /** The state file's entries: album id → the market that first wrote it. */
  const stateMarkets = async (file: string) =>
    new Map(
      (await readFile(file, 'utf8'))
        .split('\n')
        .slice(1)
        .filter(Boolean)
        .map((line) => {
          const [id, , market] = line.split('\t');
          return [id as string, market as string];
        }),
    );
  const number = (cell: string) => Number(cell.replaceAll(',', ''));
  const tableOf = (page: Awaited<ReturnType<typeof open>>, id: string) => {
    const chart = page.seen.charts.find((c) => c.id === id);
    assert.ok(chart, `chart ${id} is in the page`);
    return { alt: chart.alt, rows: chart.table };
  };

  /**
   * What the page must say of a day: per market the albums listed (the catalogue) and the new
   * ones written (what the state recorded for that market this day); the overlap and the count
   * by markets over the listed albums.
   */
  function assertMarkets(
    page: Awaited<ReturnType<typeof open>>,
    report: RunReport,
    listed: Map<string, Set<string>>,
    written: Map<string, number>,
  ) {
    const markets = tableOf(page, 'markets');
    assert.deepEqual(
      markets.rows.map(([market, l, w]) => [market, number(l ?? ''), number(w ?? '')]),
      MARKETS.map((m) => [m, listed.get(m)?.size, written.get(m) ?? 0]),
      'albums per market: listed, and new (written)',
    );
    assert.equal(
      [...written.values()].reduce((sum, w) => sum + w, 0),
      report.state?.new,
      "the new ones add up to the state's new albums",
    );
    assert.match(markets.alt, /listed/);
    assert.match(markets.alt, /new/);
    const both = (a: string, b: string) => {
      const other = listed.get(b) as Set<string>;
      return [...(listed.get(a) as Set<string>)].filter((id) => other.has(id)).length;
    };
    const overlap = tableOf(page, 'overlap');
    assert.deepEqual(
      overlap.rows.map(([a, b, albums]) => [a, b, number(albums ?? '')]),
      MARKETS.flatMap((a, i) => MARKETS.slice(i).map((b) => [a, b, both(a, b)])),
      'overlap between the markets as listed',
    );
    assert.match(overlap.alt, /listed/);
    const byCount = new Map<number, number>();
    for (const id of new Set([...listed.values()].flatMap((ids) => [...ids]))) {
      const count = MARKETS.filter((m) => listed.get(m)?.has(id)).length;
      byCount.set(count, (byCount.get(count) ?? 0) + 1);
    }
    assert.deepEqual(
      tableOf(page, 'market-count').rows.map((row) => row.map(number)),
      [...byCount].sort((x, y) => x[0] - y[0]),
      'albums by number of markets listing them',
    );
    assert.deepEqual(
      tableOf(page, 'state').rows.map(([, count]) => number(count ?? '')),
      [report.state?.new, report.state?.seen],
    );
  }

  test('day one and day two against the emulator, three markets', T, async () => {
    const out = join(dir, 'new-only');
    const state = join(dir, 'new-only.state');
    // Day two lists a longer catalogue from other starts: some albums new, some seen on day one.
    const day1 = await startEmulator({ seed: SEED, albums: 200 });
    const day2 = await startEmulator({ seed: SEED, albums: 320 });
    try {
      const day = async (name: string, on: Emulator) => {
        const args = ['--market', MARKETS.join(','), '--state', state, '--new-only'];
        const { report } = await pull(
          [...args, '--out', `${out}/${name}/{market}.csv`, '--report', `${out}/${name}.html`],
          on,
        );
        const page = await open(`${out}/${name}.html`);
        assertPage(page, report, [...DATA_CHARTS, ...MARKET_CHARTS, ...TIME_CHARTS, 'state']);
        return { report, page };
      };

      const one = await day('day1', day1);
      const listed1 = new Map(MARKETS.map((m) => [m, listedIds(200, m)]));
      const after1 = await stateMarkets(state);
      // The catalogue is what the run saw: on day one every listed album is new.
      assert.deepEqual(
        [...after1.keys()].sort(),
        [...new Set([...listed1.values()].flatMap((ids) => [...ids]))].sort(),
      );
      const written1 = new Map<string, number>();
      for (const market of after1.values()) written1.set(market, (written1.get(market) ?? 0) + 1);
      assertMarkets(one.page, one.report, listed1, written1);

      const two = await day('day2', day2);
      const listed2 = new Map(MARKETS.map((m) => [m, listedIds(320, m)]));
      const written2 = new Map<string, number>();
      for (const [id, market] of await stateMarkets(state)) {
        if (!after1.has(id)) written2.set(market, (written2.get(market) ?? 0) + 1);
      }
      assert.ok(two.report.state && two.report.state.new > 0 && two.report.state.seen > 0);
      assertMarkets(two.page, two.report, listed2, written2);
    } finally {
      await Promise.all([day1.stop(), day2.stop()]);
    }
  });
});

describe('the page as an output of the commit', () => {
  test('to S3: text/html, published with the data', T, async () => {
    const result = await runCli(
      [
        'new-releases',
        '--out',
        's3://reports/dt={date}/albums.csv',
        '--report',
        's3://reports/dt={date}/report.html',
      ],
      { env: { ...emulatorEnv(emulator), ...s3.env } },
    );
    assert.equal(result.status, 0, result.stderr);
    const keys = await s3.listKeys('reports');
    const key = keys.find((k) => k.endsWith('/report.html'));
    assert.ok(key, keys.join(' '));
    const got = await s3.getObject('reports', key);
    assert.equal(got?.contentType, 'text/html; charset=utf-8');
    assert.match(got?.body.toString() ?? '', /^<!doctype html>/);
  });

  test('a failed run publishes no report (and no data)', T, async () => {
    const out = join(dir, 'failed');
    const result = await runCli(
      [
        'new-releases',
        '--market',
        'SE,XX',
        '--out',
        `${out}/{market}.csv`,
        '--report',
        `${out}/report.html`,
      ],
      { env: emulatorEnv(emulator) },
    );
    assert.notEqual(result.status, 0);
    // XX is refused before anything is opened; a run failing part-way is below.
    const failing = await startEmulator({ albums: 200, faults: [{ kind: '500', market: 'DE' }] });
    try {
      const run = await runCli(
        [
          'new-releases',
          '--market',
          'SE,DE',
          '--max-retries',
          '0',
          '--out',
          `${out}/{market}.csv`,
          '--report',
          `${out}/report.html`,
        ],
        { env: emulatorEnv(failing) },
      );
      assert.equal(run.status, 4, run.stderr);
      assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing published, no temp file');
    } finally {
      await failing.stop();
    }
  });

  test('the option is checked before anything is fetched', T, async () => {
    const cases: [string[], RegExp][] = [
      [['--report', '-'], /--report needs a file path or s3:\/\/ key/],
      [['--report', ''], /--report is empty/],
      [['--report', 'x.txt'], /name it \.html/],
      [['--report', 'r-{market}.html', '--market', 'SE,DE'], /one report per run/],
      [['--report', 'r-{day}.html'], /unknown placeholder \{day\}/],
      [
        ['--out', join(dir, 'same.html'), '--force', '--report', join(dir, 'same.html')],
        /name the same output/,
      ],
    ];
    const requests = emulator.stats.apiRequests;
    for (const [args, message] of cases) {
      const result = await runCli(['new-releases', ...args], { env: emulatorEnv(emulator) });
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    assert.equal(emulator.stats.apiRequests, requests, 'nothing fetched');
  });

  test('Vega is loaded only by a run with --report', T, async () => {
    // A resolve hook in the CLI's process names every vega module it loads.
    const hook = `data:text/javascript,${encodeURIComponent(
      "import { registerHooks } from 'node:module';" +
        'registerHooks({ resolve(s, c, next) { if (/^vega/.test(s)) process.stderr.write("LOADED " + s + "\\n"); return next(s, c); } });',
    )}`;
    const { spawn } = await import('node:child_process');
    const cli = (extra: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', hook, CLI, 'new-releases', '--out', join(dir, 'hook.csv'), ...extra],
          {
            env: { PATH: process.env.PATH, ...emulatorEnv(emulator) },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
        });
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stderr }));
      });
    const without = await cli([]);
    assert.equal(without.status, 0, without.stderr);
    assert.doesNotMatch(without.stderr, /LOADED vega/);
    const withReport = await cli(['--report', join(dir, 'hook.html')]);
    assert.equal(withReport.status, 0, withReport.stderr);
    assert.match(withReport.stderr, /LOADED vega-lite/);
    assert.match(withReport.stderr, /LOADED vega\n/);
  });
});

describe('the aggregates', () => {
  const item = (album: unknown, market?: string): SourceItem => ({
    album,
    market,
    fetchedAt: '2026-11-26T00:00:00Z',
  });

  test('top artists: exact up to the capacity, then bounded counts that keep the heavy ones', () => {
    const exact = new TopArtists(10);
    for (let i = 0; i < 10; i++) for (let k = 0; k <= i; k++) exact.add(`a${i}`, `Artist ${i}`);
    assert.equal(exact.exact, true);
    assert.deepEqual(
      exact.top(3).map((a) => [a.id, a.albums, a.error]),
      [
        ['a9', 10, 0],
        ['a8', 9, 0],
        ['a7', 8, 0],
      ],
    );
    // 5 heavy artists (100 albums each) among 9,500 with one album, 200 counters: every artist
    // with more than N / 200 = 50 albums is guaranteed to be kept, with an error of at most 50.
    const bounded = new TopArtists(200);
    const truth = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const id = i % 20 === 0 ? `heavy${(i / 20) % 5}` : `tail${i}`;
      bounded.add(id, id);
      truth.set(id, (truth.get(id) ?? 0) + 1);
    }
    assert.equal(bounded.exact, false);
    assert.equal(bounded.distinct, 200, 'memory: the capacity, not the distinct artists');
    const top = bounded.top(5);
    assert.deepEqual(top.map((a) => a.id).sort(), [
      'heavy0',
      'heavy1',
      'heavy2',
      'heavy3',
      'heavy4',
    ]);
    for (const a of top) {
      const real = truth.get(a.id) as number;
      assert.ok(a.albums >= real && a.albums - a.error <= real, `${a.id}: bounds hold`);
      assert.ok(a.error <= 50, `${a.id}: error at most N / capacity`);
    }
  });

  test('top artists: every counter within its bounds on a skewed random stream', () => {
    // A deterministic Zipf-like stream over 2,000 artists into 100 counters.
    const top = new TopArtists(100);
    const truth = new Map<string, number>();
    let x = 12345;
    for (let i = 0; i < 50_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const id = `a${Math.floor(2000 / (1 + (x % 2000))) + (x % 7 === 0 ? x % 2000 : 0)}`;
      top.add(id, id);
      truth.set(id, (truth.get(id) ?? 0) + 1);
    }
    const all = top.top(100);
    assert.equal(all.length, 100);
    // Space-Saving's invariant: the counts add up to the stream's length.
    assert.equal(
      all.reduce((sum, a) => sum + a.albums, 0),
      50_000,
    );
    for (const a of all) {
      const real = truth.get(a.id) ?? 0;
      assert.ok(
        a.albums >= real && a.albums - a.error <= real,
        `${a.id}: ${a.albums} ± ${a.error} vs ${real}`,
      );
    }
    const heaviest = [...truth].sort((p, q) => q[1] - p[1])[0] as [string, number];
    assert.equal(all[0]?.id, heaviest[0]);
  });

  test('market overlap: exact while small, a bounded sample after', () => {
    const small = new MarketOverlap(100, ['SE', 'DE']);
    for (let i = 0; i < 30; i++) small.add(`x${i}`, 'SE');
    for (let i = 20; i < 50; i++) small.add(`x${i}`, 'DE');
    const s = small.summary();
    assert.equal(s.theta, 1);
    assert.equal(s.distinctAlbums, 50);
    assert.deepEqual(
      s.pairs.find((p) => p.a === 'SE' && p.b === 'DE'),
      { a: 'SE', b: 'DE', albums: 10 },
    );
    const big = new MarketOverlap(1000, ['SE', 'DE']);
    for (let i = 0; i < 20_000; i++) {
      big.add(`album-${i}`, 'SE');
      if (i % 2 === 0) big.add(`album-${i}`, 'DE');
    }
    const b = big.summary();
    assert.ok(b.theta < 1);
    // A uniform sample of at most 1000 ids: within 15 % of the truth.
    assert.ok(Math.abs(b.distinctAlbums - 20_000) < 3_000, String(b.distinctAlbums));
    const both = b.pairs.find((p) => p.a === 'SE' && p.b === 'DE')?.albums ?? 0;
    assert.ok(Math.abs(both - 10_000) < 1_500, String(both));
  });

  test('release dates: by day when recent, by year and precision, 0000 and junk apart', () => {
    const agg = new ReportAggregator('2026-11-26', []);
    for (const date of [
      '2026-11-20',
      '2026-11-20',
      '2026-03',
      '2026',
      '0000',
      'soon',
      '1850-01-01',
    ]) {
      agg.add(item({ id: date, release_date: date, album_type: 'single', total_tracks: 3 }));
    }
    agg.add(item(null));
    const a = agg.snapshot();
    assert.equal(a.albums, 8);
    assert.deepEqual(a.releases.recent, [{ date: '2026-11-20', albums: 2 }]);
    assert.deepEqual(a.releases.years, [{ year: 2026, day: 2, month: 1, year_only: 1 }]);
    assert.equal(a.releases.unknownYear, 1);
    assert.equal(a.releases.unparseable, 2);
    assert.equal(a.releases.outsideYears, 1);
    assert.deepEqual(a.albumTypes, [
      { type: 'single', albums: 7 },
      { type: '(missing)', albums: 1 },
    ]);
    assert.equal(a.tracksMissing, 1);
  });

  test('markets count what they listed; a --new-only day with nothing new still draws them', () => {
    const agg = new ReportAggregator('2026-11-26', ['SE', 'DE']);
    for (const market of ['SE', 'DE']) {
      for (const id of ['a1', 'a2']) agg.listed({ id, release_date: '2026' }, market);
    }
    const a = agg.snapshot();
    assert.equal(a.albums, 0);
    assert.equal(a.listed, 4);
    assert.deepEqual(a.markets, [
      { market: 'SE', listed: 2, written: 0 },
      { market: 'DE', listed: 2, written: 0 },
    ]);
    const data = dataCharts(a, { new: 0, seen: 2, newOnly: true });
    assert.deepEqual(
      data.charts.map((c) => c.id),
      ['markets', 'overlap', 'market-count', 'state'],
    );
    assert.deepEqual(data.charts[0]?.table.rows, [
      ['SE', 2, 0],
      ['DE', 2, 0],
    ]);
    assert.ok(data.notes.some((n) => /None of the 4 albums the markets listed was new/.test(n)));
  });

  test('names from the data cannot break out of the page', async () => {
    const agg = new ReportAggregator('2026-11-26', ['SE', 'DE']);
    const evil = '</svg><script>alert(1)</script><img src=http://x/y>';
    for (const market of ['SE', 'DE']) {
      const listed = item(
        {
          id: 'a1',
          album_type: evil,
          release_date: '2026-11-20',
          total_tracks: 1,
          artists: [{ id: 'r1', name: evil }],
        },
        market,
      );
      agg.listed(listed.album, market);
      agg.add(listed);
    }
    const data = dataCharts(agg.snapshot(), null);
    const time = timeCharts({
      seconds: 1,
      bucketSeconds: 0.1,
      buckets: [{ at: 0, seconds: 0.1, requests: 1, rateLimited: 0, inFlight: 1, rows: 1 }],
      pauses: [],
      backoffs: [],
      requests: 1,
    });
    const { renderSvgs } = await import('../src/report/render.ts');
    const svgs = await renderSvgs([...data.charts, ...time.charts]);
    const html = reportHtml(
      {
        runId: evil,
        startedAt: evil,
        stagedAt: '',
        stagedSeconds: 0,
        source: { via: 'search', query: evil, api: evil, markets: ['SE', 'DE'] },
        model: 'flat',
        format: 'csv',
        gzip: false,
        numbers: {
          pages: 1,
          albums: 2,
          rows: 2,
          rejected: 0,
          retries: 0,
          rateLimited: 0,
          rateLimitWaitMs: 0,
          tokens: 1,
          totalAlbums: null,
          serializedBytes: 1,
          storedBytes: 1,
        },
        requests: 1,
        outputs: [
          {
            location: evil,
            market: evil,
            rows: 1,
            serializedBytes: 1,
            storedBytes: 1,
            sha256: null,
          },
        ],
        rejects: null,
        manifest: null,
        report: evil,
        state: null,
        marketsFailed: [{ market: evil, code: 'ERR_SPOTIFY_HTTP', message: evil }],
        searchCapped: false,
        searchLimit: null,
        limits: [],
      },
      data,
      time,
      svgs,
    );
    assert.doesNotMatch(html, /<script|<img/i);
    assert.equal(html.match(/<svg\b/g)?.length, svgs.length, 'one svg element per chart');
  });
});
