/**
 * `--report`: what the page costs.
 *
 * 1. Memory of the aggregates, per kind of entry (heap retained, after GC): per artist counter,
 *    per album remembered for the market overlap, per date bucket; then the whole aggregator
 *    after 1,000,000 emulator albums in three markets, and its CPU per album.
 * 2. Drawing the page from those aggregates: Vega + Vega-Lite loaded, 11 charts compiled and
 *    rendered to SVG, and the page's size.
 * 3. End to end: 1,000,000 albums (quick: 20,000) to a file, without and with --report, each run
 *    as its own process (wall time and peak RSS, bench/harness.ts's measure()).
 * 4. With `--libraries`: the chart-library comparison the choice was made on — Vega-Lite + Vega,
 *    Vega alone (specs compiled ahead), Apache ECharts (server-side SVG) and Observable Plot
 *    (+ linkedom as its DOM), each installed into a temporary folder with npm and drawing the
 *    same four charts in its own process: install size, import and render time, SVG bytes.
 *
 *   npx node bench/report.ts [--quick] [--libraries] [--no-runs]   (bench/run.ts: reportBench())
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { album, spotifyId } from '../src/emulator/catalogue.ts';
import {
  MarketOverlap,
  REPORT_LIMITS,
  ReportAggregator,
  TopArtists,
} from '../src/report/aggregate.ts';
import { dataCharts, timeCharts } from '../src/report/charts.ts';
import { reportHtml } from '../src/report/html.ts';
import { renderSvgs } from '../src/report/render.ts';
import { bin as cli, MiB, measure, median, root, startEmulatorProcess } from './harness.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What is being measured: held here, at module level, so that only dropping it frees it. */
const keep: { value: unknown } = { value: undefined };

/** Heap bytes `keep.value` holds: the heap with it minus the heap once dropped (full GCs). */
function heapHeld(): number {
  gc();
  gc();
  const withIt = process.memoryUsage().heapUsed;
  keep.value = undefined;
  gc();
  gc();
  return withIt - process.memoryUsage().heapUsed;
}

/** A flat copy of a string, as JSON.parse hands it to the pipeline (no rope, no slice). */
const flat = (s: string) => JSON.parse(JSON.stringify(s)) as string;

/** Heap bytes per entry of each structure the aggregates keep. */
export function entryCosts(n = 100_000) {
  const top = new TopArtists(n);
  for (let i = 0; i < n; i++) top.add(flat(spotifyId(3, 2, i)), flat(`Artist name ${i}`));
  keep.value = top;
  const perArtist = heapHeld() / n;
  const overlap = new MarketOverlap(n, ['SE', 'DE', 'US']);
  for (let i = 0; i < n; i++) {
    const id = flat(spotifyId(3, 1, i));
    overlap.add(id, 'SE');
    if (i % 2 === 0) overlap.add(id, 'DE');
  }
  keep.value = overlap;
  const perOverlapAlbum = heapHeld() / n;
  // Date buckets: the day buckets (YYYY-MM-DD → count) and the year buckets.
  const days = new Map<string, number>();
  for (let i = 0; i < n; i++)
    days.set(flat(new Date(i * 86_400_000).toISOString().slice(0, 10)), i);
  keep.value = days;
  const perDayBucket = heapHeld() / n;
  const years = new Map<number, { year: number; day: number; month: number; year_only: number }>();
  for (let i = 0; i < n; i++) years.set(i, { year: i, day: 1, month: 2, year_only: 3 });
  keep.value = years;
  const perYearBucket = heapHeld() / n;
  const round = Math.round;
  return {
    perArtist: round(perArtist),
    perOverlapAlbum: round(perOverlapAlbum),
    perDayBucket: round(perDayBucket),
    perYearBucket: round(perYearBucket),
  };
}

/**
 * Feeds `albums` emulator albums listed in three markets to an aggregator, left in `keep.value`;
 * returns its CPU per album and what it summarized.
 */
export function aggregatorAt(albums: number) {
  const apiUrl = 'http://127.0.0.1:1';
  const markets = ['SE', 'DE', 'US'];
  // As the source hands them on: albums parsed from JSON (fresh strings), in a market, made
  // ahead in chunks so that only the aggregator's own work is timed.
  const CHUNK = 10_000;
  let cpuMs = 0;
  const agg = new ReportAggregator('2026-11-26', markets);
  for (let from = 0; from < albums; from += CHUNK) {
    const items = [];
    for (let i = from; i < Math.min(albums, from + CHUNK); i++) {
      const parsed = JSON.parse(JSON.stringify(album(1, i, apiUrl))) as unknown;
      items.push({ album: parsed, market: markets[i % 3], fetchedAt: '' });
    }
    const start = performance.now();
    for (const item of items) {
      agg.listed(item.album, item.market);
      agg.add(item);
    }
    cpuMs += performance.now() - start;
  }
  keep.value = agg;
  const snapshot = agg.snapshot();
  return {
    albums,
    nsPerAlbum: (cpuMs / albums) * 1e6,
    appearances: snapshot.artists.appearances,
    exactArtists: snapshot.artists.exact,
    theta: snapshot.overlap?.theta ?? 1,
  };
}

/** Draws a page from the aggregates (Vega loaded in this call, as in a run). */
export async function drawPage(agg: ReportAggregator) {
  const start = performance.now();
  const data = dataCharts(agg.snapshot(), { new: 1000, seen: 500, newOnly: false });
  const time = timeCharts({
    seconds: 60,
    bucketSeconds: 0.1,
    buckets: Array.from({ length: 600 }, (_, i) => ({
      at: i / 10,
      seconds: 0.1,
      requests: 2 + (i % 5),
      rateLimited: i % 97 === 0 ? 1 : 0,
      inFlight: 1 + (i % 4),
      rows: 3000 + (i % 50) * 10,
    })),
    pauses: [{ from: 10, to: 12 }],
    backoffs: [],
    requests: 2400,
  });
  const svgs = await renderSvgs([...data.charts, ...time.charts]);
  const html = reportHtml(
    {
      runId: 'bench',
      startedAt: '',
      stagedAt: '',
      stagedSeconds: 60,
      source: { via: 'new-releases', query: null, api: '', markets: ['SE', 'DE', 'US'] },
      model: 'flat',
      format: 'csv',
      gzip: false,
      numbers: {
        pages: 0,
        albums: 0,
        rows: 0,
        rejected: 0,
        retries: 0,
        rateLimited: 0,
        rateLimitWaitMs: 0,
        tokens: 0,
        totalAlbums: null,
        serializedBytes: 0,
        storedBytes: 0,
      },
      requests: 0,
      outputs: [],
      rejects: null,
      manifest: null,
      report: 'report.html',
      state: null,
      marketsFailed: [],
      searchCapped: false,
      searchLimit: null,
      limits: [],
    },
    data,
    time,
    svgs,
  );
  return {
    charts: svgs.length,
    seconds: (performance.now() - start) / 1000,
    pageBytes: Buffer.byteLength(html),
    svgBytes: svgs.reduce((sum, s) => sum + Buffer.byteLength(s), 0),
  };
}

/** End to end, without and with --report. */
export async function endToEnd(albums: number, runs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-report-bench-'));
  const emulator = await startEmulatorProcess(albums);
  try {
    const args = (report: boolean) => [
      'new-releases',
      '--market',
      'SE,DE,US',
      '--out',
      join(dir, '{market}.csv'),
      '--concurrency',
      '8',
      '--quiet',
      ...(report ? ['--report', join(dir, 'report.html')] : []),
    ];
    const result: Record<'without' | 'with', { seconds: number; rssMiB: number }[]> = {
      without: [],
      with: [],
    };
    for (let i = 0; i < runs; i++) {
      result.without.push(await measure(process.execPath, [cli, ...args(false)], emulator.env));
      result.with.push(await measure(process.execPath, [cli, ...args(true)], emulator.env));
    }
    const pageBytes = (await stat(join(dir, 'report.html'))).size;
    return {
      albums,
      runs,
      without: {
        seconds: median(result.without.map((r) => r.seconds)),
        rssMiB: median(result.without.map((r) => r.rssMiB)),
      },
      with: {
        seconds: median(result.with.map((r) => r.seconds)),
        rssMiB: median(result.with.map((r) => r.rssMiB)),
      },
      pageBytes,
    };
  } finally {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// --- 4. the library comparison ------------------------------------------------------------------

const DATA = `
export const artists = Array.from({ length: 20 }, (_, i) => ({ artist: 'Artist ' + i + ' name', albums: 200 - i * 7 }));
export const years = [];
for (let y = 1990; y <= 2026; y++) for (const p of ['day', 'month', 'year']) years.push({ year: String(y), precision: p, albums: ((y * 7 + p.length * 13) % 97) + 5 });
export const series = Array.from({ length: 400 }, (_, i) => ({ t: i * 0.25, requests: 10 + ((i * 37) % 17), inflight: 1 + (i % 4) }));
export const pauses = [{ from: 20, to: 23 }, { from: 60, to: 62.5 }];
export const overlap = [];
for (const a of ['SE', 'DE', 'US']) for (const b of ['SE', 'DE', 'US']) overlap.push({ a, b, albums: (a.charCodeAt(0) * b.charCodeAt(1)) % 100 });
`;
const TIMED = (lib: string, load: string, render: string, items: string) => `
const t0 = performance.now();
${load}
const importMs = performance.now() - t0;
const d = await import('./data.mjs');
${render}
const items = ${items};
let t = performance.now();
const out = [];
for (const item of items) out.push(await draw(item));
const firstMs = performance.now() - t;
t = performance.now();
for (let i = 0; i < 5; i++) for (const item of items) await draw(item);
const warmMs = (performance.now() - t) / 5;
console.log(JSON.stringify({ lib: ${JSON.stringify(lib)}, importMs, firstMs, warmMs, svgBytes: out.reduce((s, x) => s + x.length, 0) }));
`;
const VL_SPECS = `[
  { data: { values: d.artists }, mark: 'bar', encoding: { y: { field: 'artist', type: 'nominal', sort: '-x' }, x: { field: 'albums', type: 'quantitative' } } },
  { data: { values: d.years }, mark: 'bar', encoding: { x: { field: 'year', type: 'ordinal' }, y: { field: 'albums', type: 'quantitative', aggregate: 'sum' }, color: { field: 'precision', type: 'nominal' } } },
  { layer: [
    { data: { values: d.pauses }, mark: { type: 'rect', opacity: 0.2, color: 'red' }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } },
    { data: { values: d.series }, transform: [{ fold: ['requests', 'inflight'] }], mark: 'line', encoding: { x: { field: 't', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' }, color: { field: 'key', type: 'nominal' } } } ] },
  { data: { values: d.overlap }, mark: 'rect', encoding: { x: { field: 'a', type: 'nominal' }, y: { field: 'b', type: 'nominal' }, color: { field: 'albums', type: 'quantitative' } } },
].map((s) => ({ width: 600, height: 200, ...s }))`;
const CANDIDATES = [
  {
    lib: 'vega-lite + vega',
    packages: ['vega@6', 'vega-lite@6'],
    script: TIMED(
      'vega-lite + vega',
      "const vega = await import('vega'); const vl = await import('vega-lite');",
      `async function draw(s) { const view = new vega.View(vega.parse(vl.compile(s).spec), { renderer: 'none' }); const svg = await view.toSVG(); view.finalize(); return svg; }`,
      VL_SPECS,
    ),
  },
  {
    lib: 'vega (specs compiled ahead)',
    packages: ['vega@6', 'vega-lite@6'],
    prepare: `const vl = await import('vega-lite'); const d = await import('./data.mjs'); (await import('node:fs')).writeFileSync('compiled.json', JSON.stringify(${VL_SPECS}.map((s) => vl.compile(s).spec)));`,
    script: TIMED(
      'vega (specs compiled ahead)',
      "const vega = await import('vega');",
      `async function draw(s) { const view = new vega.View(vega.parse(s), { renderer: 'none' }); const svg = await view.toSVG(); view.finalize(); return svg; }`,
      "JSON.parse((await import('node:fs')).readFileSync('compiled.json', 'utf8'))",
    ),
  },
  {
    lib: 'echarts (server-side SVG)',
    packages: ['echarts@6'],
    script: TIMED(
      'echarts (server-side SVG)',
      "const echarts = await import('echarts');",
      `function draw(o) { const c = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 600, height: 240 }); c.setOption({ animation: false, ...o }); const svg = c.renderToSVGString(); c.dispose(); return svg; }`,
      `[
        { yAxis: { type: 'category', data: d.artists.map((a) => a.artist) }, xAxis: { type: 'value' }, series: [{ type: 'bar', data: d.artists.map((a) => a.albums) }] },
        { xAxis: { type: 'category', data: [...new Set(d.years.map((y) => y.year))] }, yAxis: { type: 'value' }, legend: {}, series: ['day', 'month', 'year'].map((p) => ({ name: p, type: 'bar', stack: 's', data: d.years.filter((y) => y.precision === p).map((y) => y.albums) })) },
        { xAxis: { type: 'value' }, yAxis: { type: 'value' }, legend: {}, series: [
          { name: 'requests', type: 'line', showSymbol: false, data: d.series.map((s) => [s.t, s.requests]), markArea: { data: d.pauses.map((p) => [{ xAxis: p.from }, { xAxis: p.to }]) } },
          { name: 'inflight', type: 'line', showSymbol: false, data: d.series.map((s) => [s.t, s.inflight]) }] },
        { xAxis: { type: 'category', data: ['SE', 'DE', 'US'] }, yAxis: { type: 'category', data: ['SE', 'DE', 'US'] }, visualMap: { min: 0, max: 100 }, series: [{ type: 'heatmap', data: d.overlap.map((o) => [o.a, o.b, o.albums]) }] },
      ]`,
    ),
  },
  {
    lib: 'observable plot + linkedom',
    packages: ['@observablehq/plot@0.6', 'linkedom@0.18'],
    script: TIMED(
      'observable plot + linkedom',
      "const Plot = await import('@observablehq/plot'); const { parseHTML } = await import('linkedom');",
      `function draw(o) { const { document } = parseHTML('<!doctype html><html><body></body></html>'); return Plot.plot({ document, width: 600, height: 240, ...o }).outerHTML; }`,
      `[
        { marks: [Plot.barX(d.artists, { y: 'artist', x: 'albums', sort: { y: '-x' } })], marginLeft: 120 },
        { marks: [Plot.barY(d.years, { x: 'year', y: 'albums', fill: 'precision' })], x: { type: 'band' }, color: { legend: true } },
        { marks: [Plot.rectY(d.pauses, { x1: 'from', x2: 'to', y1: 0, y2: 30, fill: 'red', fillOpacity: 0.2 }), Plot.lineY(d.series, { x: 't', y: 'requests' }), Plot.lineY(d.series, { x: 't', y: 'inflight', stroke: 'orange' })] },
        { marks: [Plot.cell(d.overlap, { x: 'a', y: 'b', fill: 'albums' })] },
      ]`,
    ),
  },
];

export async function libraries(runs = 5) {
  const results: {
    lib: string;
    installBytes: number;
    packages: number;
    importMs: number;
    firstMs: number;
    warmMs: number;
    svgBytes: number;
  }[] = [];
  for (const c of CANDIDATES) {
    const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-charts-'));
    try {
      await writeFile(
        join(dir, 'package.json'),
        '{"name":"bench","version":"1.0.0","type":"module"}',
      );
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', ...c.packages], {
        cwd: dir,
        stdio: 'ignore',
      });
      await writeFile(join(dir, 'data.mjs'), DATA);
      await writeFile(join(dir, 'bench.mjs'), c.script);
      if (c.prepare) {
        await writeFile(join(dir, 'prepare.mjs'), c.prepare);
        execFileSync(process.execPath, ['prepare.mjs'], { cwd: dir });
        // Measure what a run would install: the runtime package and its dependencies only.
        execFileSync('npm', ['uninstall', '--no-audit', '--no-fund', '--silent', 'vega-lite'], {
          cwd: dir,
          stdio: 'ignore',
        });
      }
      const installBytes = Number(
        execFileSync('du', ['-sb', join(dir, 'node_modules')], { encoding: 'utf8' }).split('\t')[0],
      );
      const packages =
        execFileSync('npm', ['ls', '--all', '--parseable'], { cwd: dir, encoding: 'utf8' })
          .trim()
          .split('\n').length - 1;
      const samples = Array.from({ length: runs }, () =>
        JSON.parse(
          execFileSync(process.execPath, ['bench.mjs'], {
            cwd: dir,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          }),
        ),
      ) as { importMs: number; firstMs: number; warmMs: number; svgBytes: number }[];
      results.push({
        lib: c.lib,
        installBytes,
        packages,
        importMs: median(samples.map((s) => s.importMs)),
        firstMs: median(samples.map((s) => s.firstMs)),
        warmMs: median(samples.map((s) => s.warmMs)),
        svgBytes: samples[0]?.svgBytes ?? 0,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return results;
}

/** The section of bench/RESULTS.md (bench/run.ts calls this). */
export async function reportBench({
  quick,
  runs,
  large,
  withLibraries = false,
  withRuns = true,
}: {
  quick: boolean;
  runs: number;
  large: number;
  withLibraries?: boolean;
  /** The end-to-end runs (off: the aggregates and the page only, in seconds). */
  withRuns?: boolean;
}): Promise<string> {
  const costs = entryCosts(quick ? 20_000 : 100_000);
  const at = aggregatorAt(large);
  const page = await drawPage(keep.value as ReportAggregator);
  const retainedBytes = heapHeld();
  const e2e = withRuns ? await endToEnd(large, runs) : undefined;
  const libs = withLibraries ? await libraries(quick ? 1 : 5) : [];
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  const bounds = [
    ['artist counter (Space-Saving)', costs.perArtist, REPORT_LIMITS.artists],
    ['album in the market overlap', costs.perOverlapAlbum, REPORT_LIMITS.overlapAlbums],
    ['day bucket (recent releases)', costs.perDayBucket, REPORT_LIMITS.recentDays + 14],
    ['year bucket', costs.perYearBucket, new Date().getUTCFullYear() + 6 - REPORT_LIMITS.firstYear],
  ] as const;
  return `## The --report page (bench/report.ts)

The aggregates are filled in the run's own pass, in bounded memory: a fixed number of entries of each kind, whatever the pull (heap retained per entry, after GC):

| entry | bytes each | at most | bound |
| --- | --- | --- | --- |
${bounds.map(([what, bytes, max]) => `| ${what} | ${bytes} | ${max.toLocaleString('en')} | ${kib(bytes * max)} |`).join('\n')}

Plus fixed arrays (16 album types, ${REPORT_LIMITS.maxTracks + 1} track counts, one count per market) and the run over time (600 intervals × 4 numbers, 200 pauses). After ${at.albums.toLocaleString('en')} emulator albums in three markets (${at.appearances.toLocaleString('en')} artist appearances; top artists ${at.exactArtists ? 'exact' : 'from a full summary'}; the overlap ${at.theta < 1 ? `sampled at θ = ${at.theta.toPrecision(2)}` : 'exact'}), the aggregator retains **${(retainedBytes / MiB).toFixed(1)} MiB** and costs ${at.nsPerAlbum.toFixed(0)} ns of CPU per album.

Drawing the page from those aggregates (Vega and Vega-Lite loaded, ${page.charts} charts compiled and rendered to SVG, in-process): ${page.seconds.toFixed(2)} s; the page is ${kib(page.pageBytes)} (${kib(page.svgBytes)} of SVG).

${
  e2e === undefined
    ? ''
    : `End to end, ${e2e.albums.toLocaleString('en')} albums in three markets to files (\`--concurrency 8\`, median of ${e2e.runs}, each run its own process, the two runs taking turns):

| run | wall s | peak RSS MiB |
| --- | --- | --- |
| without --report | ${e2e.without.seconds.toFixed(2)} | ${e2e.without.rssMiB.toFixed(0)} |
| with --report | ${e2e.with.seconds.toFixed(2)} | ${e2e.with.rssMiB.toFixed(0)} |

The page of that run: ${kib(e2e.pageBytes)}. A run without --report loads none of it (test/report.test.ts checks that no Vega module is resolved).
`
}${
  libs.length === 0
    ? ''
    : `
Chart library comparison (\`npx node bench/report.ts --libraries\`): the same four charts (a 20-bar chart, a 37 × 3 stacked bar chart, two 400-point lines with shaded pauses, a 3 × 3 heat map) drawn to SVG in Node, each library installed into its own folder, median of ${quick ? 1 : 5} processes:

| library | installed | packages | import ms | first render ms | warm render ms | SVG bytes |
| --- | --- | --- | --- | --- | --- | --- |
${libs.map((l) => `| ${l.lib} | ${(l.installBytes / MiB).toFixed(1)} MiB | ${l.packages} | ${l.importMs.toFixed(0)} | ${l.firstMs.toFixed(0)} | ${l.warmMs.toFixed(0)} | ${l.svgBytes.toLocaleString('en')} |`).join('\n')}
`
}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const md = await reportBench({
    quick,
    runs: quick ? 1 : 3,
    large: quick ? 20_000 : 1_000_000,
    withLibraries: process.argv.includes('--libraries'),
    withRuns: !process.argv.includes('--no-runs'),
  });
  await mkdir(join(root, 'bench/out'), { recursive: true });
  await writeFile(join(root, 'bench/out/report.md'), md);
  process.stdout.write(md);
}
