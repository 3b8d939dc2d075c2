import type { TopLevelSpec } from 'vega-lite';
import type { Aggregates } from './aggregate.ts';
import type { TimelineSnapshot } from './timeline.ts';

/** A cell of a chart's data table. */
export type Cell = string | number;

/** One chart of the page: its Vega-Lite spec, and the same numbers for people who cannot see it. */
export interface Chart {
  /** Unique in the page; used for ids and by the browser test. */
  id: string;
  title: string;
  /** The text alternative: what the chart shows, in a sentence or two. */
  description: string;
  spec: TopLevelSpec;
  table: { columns: string[]; rows: Cell[][] };
  /** Spans the page's width (the run over time); else half of it. */
  wide?: boolean;
}

/** A section's charts, and what it says instead of a chart that has no data. */
export interface ChartSection {
  charts: Chart[];
  notes: string[];
}

const HALF = 380;
const WIDE = 860;
const HEIGHT = 180;
const PAUSE_COLOR = '#d62728';

const n = (value: number) => value.toLocaleString('en-US');
const plural = (count: number, noun: string) => `${n(count)} ${noun}${count === 1 ? '' : 's'}`;

/** The largest item of a list, for a sentence: "most in 2025 (312 albums)". */
function peak<T>(items: T[], value: (item: T) => number): T | undefined {
  let best: T | undefined;
  for (const item of items) if (best === undefined || value(item) > value(best)) best = item;
  return best;
}

const base = (width: number, height = HEIGHT) =>
  ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width,
    height,
    background: 'white',
    config: {
      font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      view: { stroke: null },
      axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', grid: false },
      // Counts: no tick at half an album.
      axisQuantitative: { tickMinStep: 1 },
      legend: { labelFontSize: 11, titleFontSize: 11 },
    },
  }) as const;

/** Every day from `from` to `to` (YYYY-MM-DD, UTC). */
function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(from); t <= Date.parse(to); t += 86_400_000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** The data charts: releases, types, tracks, artists, markets, overlap, new vs seen. */
export function dataCharts(
  a: Aggregates,
  state: { new: number; seen: number; newOnly: boolean } | null,
): ChartSection {
  const charts: Chart[] = [];
  const notes: string[] = [];
  if (a.listed === 0 && a.albums === 0) {
    notes.push('This run received no albums: there is no data to chart.');
    if (state !== null) charts.push(stateChart(state));
    return { charts, notes };
  }
  const newOnly = state?.newOnly === true;
  // What went on to the rows: with --new-only the new albums; rejects and dedupe drop some too.
  const written = newOnly
    ? `the ${plural(a.albums, 'new album')} written (--new-only)`
    : `the ${plural(a.albums, 'album')} written (after rejects and dedupe)`;
  if (a.albums > 0) charts.push(...albumCharts(a, notes));
  else {
    notes.push(
      `None of the ${plural(a.listed, 'album')} the markets listed was ${newOnly ? 'new (--new-only)' : 'written'}: releases, types, tracks and artists have nothing to chart.`,
    );
  }
  if (a.albums > 0 && a.albums !== a.listed) {
    // The charts above describe what was written; the market charts below, what was listed.
    for (const chart of charts)
      chart.description += ` Counts ${written}, not the ${n(a.listed)} listed.`;
    notes.push(
      `Releases, types, tracks and artists count ${written}; albums per market and the overlap count the ${n(a.listed)} the markets listed.`,
    );
  }
  charts.push(...marketCharts(a, newOnly, notes));
  if (state !== null) charts.push(stateChart(state));
  return { charts, notes };
}

/** Releases, types, tracks and artists of the albums passed on to the outputs. */
function albumCharts(a: Aggregates, notes: string[]): Chart[] {
  const charts: Chart[] = [];

  // Releases in the recent weeks, by day: the days with none are drawn as zero.
  const recent = a.releases.recent;
  if (recent.length > 0) {
    const counts = new Map(recent.map((r) => [r.date, r.albums]));
    // Up to the run's day, or to the last (future) release date listed.
    const runDay = new Date(Date.parse(a.releases.recentTo) - 14 * 86_400_000)
      .toISOString()
      .slice(0, 10);
    const to = [recent.at(-1)?.date as string, runDay].sort().at(-1) as string;
    const values = days(a.releases.recentFrom, to).map((date) => ({
      date,
      albums: counts.get(date) ?? 0,
    }));
    const top = peak(values, (v) => v.albums);
    const total = values.reduce((sum, v) => sum + v.albums, 0);
    charts.push({
      id: 'releases-recent',
      title: 'Releases in the recent weeks, by day',
      description: `Bar chart: ${plural(total, 'album')} with a day-precision release date from ${values[0]?.date} to ${values.at(-1)?.date}; the most on ${top?.date} (${plural(top?.albums ?? 0, 'album')}).`,
      spec: {
        ...base(HALF),
        data: { values },
        mark: { type: 'bar', color: '#4c78a8' },
        encoding: {
          x: {
            field: 'date',
            type: 'temporal',
            timeUnit: 'utcyearmonthdate',
            title: 'release date (UTC)',
            axis: { format: '%b %d', labelOverlap: true },
          },
          y: { field: 'albums', type: 'quantitative', title: 'albums' },
        },
      },
      table: {
        columns: ['release date', 'albums'],
        rows: values.filter((v) => v.albums > 0).map((v) => [v.date, v.albums]),
      },
    });
  } else {
    notes.push(
      `No album has a day-precision release date in the ${a.releases.recentFrom} – ${a.releases.recentTo} window.`,
    );
  }

  // Every release by year, split by the precision of its date; 0000 and the rest apart.
  const years = a.releases.years;
  if (years.length > 0) {
    const first = years[0]?.year as number;
    const lastYear = years.at(-1)?.year as number;
    const byYear = new Map(years.map((y) => [y.year, y]));
    const values: { year: string; precision: string; albums: number }[] = [];
    const rows: Cell[][] = [];
    for (let year = first; year <= lastYear; year++) {
      const y = byYear.get(year) ?? { year, day: 0, month: 0, year_only: 0 };
      values.push(
        { year: String(year), precision: 'day', albums: y.day },
        { year: String(year), precision: 'month', albums: y.month },
        { year: String(year), precision: 'year only', albums: y.year_only },
      );
      if (y.day + y.month + y.year_only > 0) {
        rows.push([String(year), y.day, y.month, y.year_only]);
      }
    }
    const top = peak(years, (y) => y.day + y.month + y.year_only);
    const apart = [
      a.releases.unknownYear > 0 ? `${plural(a.releases.unknownYear, 'album')} dated 0000` : '',
      a.releases.outsideYears > 0
        ? `${plural(a.releases.outsideYears, 'album')} dated outside the chart's years`
        : '',
      a.releases.unparseable > 0
        ? `${plural(a.releases.unparseable, 'album')} without a usable date`
        : '',
    ].filter(Boolean);
    charts.push({
      id: 'releases-years',
      title: 'Releases by year, by date precision',
      description: `Stacked bar chart of albums by year of release from ${first} to ${lastYear}, split by whether Spotify gave the day, the month or only the year; the most in ${top?.year} (${plural((top?.day ?? 0) + (top?.month ?? 0) + (top?.year_only ?? 0), 'album')}).${apart.length ? ` Counted apart: ${apart.join(', ')}.` : ''}`,
      spec: {
        ...base(HALF),
        data: { values },
        mark: 'bar',
        encoding: {
          x: {
            field: 'year',
            type: 'ordinal',
            title: 'year of release',
            axis: { labelOverlap: 'greedy', labelAngle: -90 },
          },
          y: { field: 'albums', type: 'quantitative', title: 'albums', stack: 'zero' },
          color: {
            field: 'precision',
            type: 'nominal',
            title: 'date given to the',
            scale: {
              domain: ['day', 'month', 'year only'],
              range: ['#4c78a8', '#f58518', '#b279a2'],
            },
            legend: { orient: 'top', direction: 'horizontal' },
          },
          order: { field: 'precision', sort: 'ascending' },
        },
      },
      table: {
        columns: ['year', 'day precision', 'month precision', 'year precision'],
        rows: [
          ...rows,
          ...(a.releases.unknownYear > 0
            ? [['0000 (unknown)', '', '', a.releases.unknownYear]]
            : []),
          ...(a.releases.outsideYears > 0
            ? [['outside the chart', '', '', a.releases.outsideYears]]
            : []),
          ...(a.releases.unparseable > 0
            ? [['no usable date', '', '', a.releases.unparseable]]
            : []),
        ],
      },
    });
    if (apart.length > 0) notes.push(`Release dates counted apart: ${apart.join(', ')}.`);
  } else {
    notes.push('No album has a release date with a year (0000 or none at all).');
  }

  // Album types.
  const types = a.albumTypes;
  charts.push({
    id: 'album-types',
    title: 'Album types',
    description: `Bar chart of albums by type: ${types.map((t) => `${t.type} ${n(t.albums)}`).join(', ')}.`,
    spec: {
      ...base(HALF, Math.max(60, types.length * 24)),
      data: { values: types },
      mark: { type: 'bar', color: '#54a24b' },
      encoding: {
        y: { field: 'type', type: 'nominal', sort: '-x', title: null },
        x: { field: 'albums', type: 'quantitative', title: 'albums' },
      },
    },
    table: { columns: ['type', 'albums'], rows: types.map((t) => [t.type, t.albums]) },
  });

  // Tracks per album: every count from the least to the most, zero where no album has it.
  if (a.tracks.length > 0) {
    const counts = new Map(a.tracks.map((t) => [t.tracks, t.albums]));
    const bins = a.tracks.map((t) => t.tracks);
    const from = Number.parseInt(bins[0] as string, 10);
    const to = Number.parseInt(bins.at(-1) as string, 10);
    const values = Array.from({ length: to - from + 1 }, (_, i) => {
      const label = bins.find((b) => Number.parseInt(b, 10) === from + i) ?? String(from + i);
      return { tracks: label, albums: counts.get(label) ?? 0 };
    });
    const top = peak(a.tracks, (t) => t.albums);
    charts.push({
      id: 'tracks',
      title: 'Tracks per album',
      description: `Histogram of albums by number of tracks, from ${a.tracks[0]?.tracks} to ${a.tracks.at(-1)?.tracks}; the most common is ${top?.tracks} (${plural(top?.albums ?? 0, 'album')}).${a.tracksMissing ? ` ${plural(a.tracksMissing, 'album')} without a track count.` : ''}`,
      spec: {
        ...base(HALF),
        data: { values },
        mark: { type: 'bar', color: '#72b7b2' },
        encoding: {
          x: {
            field: 'tracks',
            type: 'ordinal',
            sort: null,
            title: 'tracks',
            axis: { labelAngle: 0, labelOverlap: 'greedy' },
          },
          y: { field: 'albums', type: 'quantitative', title: 'albums' },
        },
      },
      table: { columns: ['tracks', 'albums'], rows: a.tracks.map((t) => [t.tracks, t.albums]) },
    });
  }

  // The top artists of this pull.
  const artists = a.artists;
  if (artists.top.length > 0) {
    const bound = artists.exact
      ? ''
      : ` More than ${n(artists.distinct)} distinct artists: counts come from a bounded summary and are at most the stated error too high.`;
    charts.push({
      id: 'top-artists',
      title: `Top ${artists.top.length} artists by albums in this pull`,
      description: `Bar chart of the artists with the most albums in this pull: ${artists.top
        .slice(0, 5)
        .map((t) => `${t.name} ${n(t.albums)}`)
        .join(', ')}${artists.top.length > 5 ? ', …' : ''}.${bound}`,
      spec: {
        ...base(HALF, Math.max(60, artists.top.length * 18)),
        data: {
          values: artists.top.map((t) => ({ artist: t.name, id: t.id, albums: t.albums })),
        },
        mark: { type: 'bar', color: '#e45756' },
        encoding: {
          y: {
            field: 'id',
            type: 'nominal',
            sort: { field: 'albums', order: 'descending' },
            title: null,
            // One bar per artist id; the axis shows the name (two artists may share one).
            axis: {
              labelExpr: `${JSON.stringify(Object.fromEntries(artists.top.map((t) => [t.id, t.name])))}[datum.value]`,
              labelLimit: 180,
            },
          },
          x: { field: 'albums', type: 'quantitative', title: 'albums' },
        },
      },
      table: {
        columns: artists.exact
          ? ['artist', 'artist id', 'albums']
          : ['artist', 'artist id', 'albums (at most)', 'error'],
        rows: artists.top.map((t) =>
          artists.exact ? [t.name, t.id, t.albums] : [t.name, t.id, t.albums, t.error],
        ),
      },
    });
    if (!artists.exact) notes.push(bound.trim());
  }

  return charts;
}

const LISTED = 'listed';

/**
 * Albums per market and how their lists overlap, from what each market listed (before rejects,
 * dedupe and --new-only); beside the listed ones, when they differ, those written under each
 * market (with --new-only the new ones: an album new in several markets is written under one).
 */
function marketCharts(a: Aggregates, newOnly: boolean, notes: string[]): Chart[] {
  const charts: Chart[] = [];
  if (a.markets.length > 1) {
    const both = newOnly || a.markets.some((m) => m.written !== m.listed);
    const WRITTEN = newOnly ? 'new (written)' : 'written';
    const values = a.markets
      .slice(0, 40)
      .flatMap((m) => [
        { market: m.market, series: LISTED, albums: m.listed },
        ...(both ? [{ market: m.market, series: WRITTEN, albums: m.written }] : []),
      ]);
    const list = (count: (m: Aggregates['markets'][number]) => number) =>
      a.markets.map((m) => `${m.market} ${n(count(m))}`).join(', ');
    const beside = newOnly
      ? 'the new albums written under each market (--new-only; an album new in several markets is written under one)'
      : 'the albums written under each market (after rejects and dedupe; an album in several markets is written under one)';
    charts.push({
      id: 'markets',
      title: both ? `Albums per market: listed, and ${WRITTEN}` : 'Albums listed per market',
      description: `Bar chart of the albums each market listed (before rejects, dedupe and --new-only): ${list((m) => m.listed)}.${both ? ` Beside them, ${beside}: ${list((m) => m.written)}.` : ''}`,
      spec: {
        ...base(HALF, Math.max(60, Math.min(a.markets.length, 40) * (both ? 30 : 18))),
        data: { values },
        mark: 'bar',
        encoding: {
          y: { field: 'market', type: 'nominal', sort: null, title: null },
          ...(both ? { yOffset: { field: 'series', type: 'nominal', sort: null } } : {}),
          x: { field: 'albums', type: 'quantitative', title: 'albums' },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { domain: [LISTED, WRITTEN], range: ['#4c78a8', '#54a24b'] },
            legend: both ? { orient: 'top', direction: 'horizontal' } : null,
          },
        },
      },
      table: {
        columns: both ? ['market', LISTED, WRITTEN] : ['market', LISTED],
        rows: a.markets.map((m) => (both ? [m.market, m.listed, m.written] : [m.market, m.listed])),
      },
    });
  }
  if (a.overlap !== null && a.overlap.distinctAlbums > 0) {
    const o = a.overlap;
    const sampled = o.theta < 1;
    const about = sampled ? 'about ' : '';
    const sample = sampled
      ? ` Estimated from a uniform sample of ${(o.theta * 100).toPrecision(2)} % of the albums.`
      : '';
    // The heatmap shows the 12 markets with the most albums (a readable grid).
    const shown = [...a.markets]
      .sort((x, y) => y.listed - x.listed)
      .slice(0, 12)
      .map((m) => m.market);
    const order = a.markets.map((m) => m.market).filter((m) => shown.includes(m));
    const cells = o.pairs.filter((p) => order.includes(p.a) && order.includes(p.b));
    const rank = new Map(a.markets.map((m, i) => [m.market, i]));
    const upper = (p: { a: string; b: string }) => (rank.get(p.a) ?? 0) <= (rank.get(p.b) ?? 0);
    const shared = o.pairs.filter((p) => p.a !== p.b && upper(p));
    const most = peak(shared, (p) => p.albums);
    charts.push({
      id: 'overlap',
      title: 'Overlap between markets',
      description: `Heat map of distinct albums listed in both of two markets as listed, before rejects, dedupe and --new-only (the diagonal: in that market)${order.length < a.markets.length ? `, for the ${order.length} markets with the most albums` : ''}; ${about}${plural(o.distinctAlbums, 'distinct album')} in all${most ? `; the largest overlap is ${most.a}–${most.b} with ${about}${plural(most.albums, 'album')}` : ''}.${sample}`,
      spec: {
        ...base(Math.min(HALF, 40 * order.length + 40), Math.min(HALF, 28 * order.length + 20)),
        data: { values: cells },
        encoding: {
          x: {
            field: 'a',
            type: 'nominal',
            sort: order,
            title: null,
            axis: { labelAngle: 0, orient: 'top' },
          },
          y: { field: 'b', type: 'nominal', sort: order, title: null },
        },
        layer: [
          {
            mark: 'rect',
            encoding: {
              color: {
                field: 'albums',
                type: 'quantitative',
                title: 'albums',
                scale: { scheme: 'blues' },
              },
            },
          },
          {
            mark: { type: 'text', fontSize: 10 },
            encoding: {
              text: { field: 'albums', type: 'quantitative', format: ',' },
              // Light text on the darker half of the scale.
              color: {
                condition: {
                  test: `datum.albums > ${Math.max(...cells.map((c) => c.albums)) / 2}`,
                  value: 'white',
                },
                value: '#222',
              },
            },
          },
        ],
      },
      table: {
        columns: ['market', 'market', sampled ? 'albums in both (estimated)' : 'albums in both'],
        rows: o.pairs.filter(upper).map((p) => [p.a, p.b, p.albums]),
      },
    });
    charts.push({
      id: 'market-count',
      title: 'Albums by number of markets listing them',
      description: `Bar chart of distinct albums by how many of the run's markets list them (before rejects, dedupe and --new-only): ${o.byMarketCount.map((c) => `${plural(c.markets, 'market')}: ${about}${n(c.albums)}`).join('; ')}.${sample}`,
      spec: {
        ...base(HALF, 140),
        data: {
          values: o.byMarketCount.map((c) => ({ markets: String(c.markets), albums: c.albums })),
        },
        mark: { type: 'bar', color: '#9d755d' },
        encoding: {
          x: {
            field: 'markets',
            type: 'ordinal',
            sort: null,
            title: 'markets listing the album',
            axis: { labelAngle: 0 },
          },
          y: { field: 'albums', type: 'quantitative', title: 'distinct albums' },
        },
      },
      table: {
        columns: ['markets', sampled ? 'distinct albums (estimated)' : 'distinct albums'],
        rows: o.byMarketCount.map((c) => [c.markets, c.albums]),
      },
    });
    if (sampled) notes.push(`Market overlap:${sample}`);
  }
  return charts;
}

function stateChart(state: { new: number; seen: number; newOnly: boolean }): Chart {
  const values = [
    { albums: state.new, kind: 'new (first seen in this run)' },
    {
      albums: state.seen,
      kind: state.newOnly ? 'seen before (left out)' : 'seen before',
    },
  ];
  return {
    id: 'state',
    title: 'New and already seen albums',
    description: `Bar chart against the incremental state: ${plural(state.new, 'album')} new, ${plural(state.seen, 'album')} seen in an earlier run${state.newOnly ? ' (left out by --new-only)' : ''}; distinct albums, whatever the markets.`,
    spec: {
      ...base(HALF, 70),
      data: { values },
      mark: 'bar',
      encoding: {
        y: { field: 'kind', type: 'nominal', sort: null, title: null },
        x: { field: 'albums', type: 'quantitative', title: 'distinct albums' },
        color: {
          field: 'kind',
          type: 'nominal',
          legend: null,
          scale: { range: ['#54a24b', '#bab0ac'] },
        },
      },
    },
    table: { columns: ['albums', 'count'], rows: values.map((v) => [v.kind, v.albums]) },
  };
}

/** At most `max` rows for a table: neighbouring buckets summed (and the peak kept). */
function coarse(t: TimelineSnapshot, max: number) {
  const step = Math.max(1, Math.ceil(t.buckets.length / max));
  const rows: {
    at: number;
    seconds: number;
    requests: number;
    rateLimited: number;
    inFlight: number;
    rows: number;
  }[] = [];
  for (let i = 0; i < t.buckets.length; i += step) {
    const group = t.buckets.slice(i, i + step);
    rows.push({
      at: group[0]?.at ?? 0,
      seconds: group.reduce((s, b) => s + b.seconds, 0),
      requests: group.reduce((s, b) => s + b.requests, 0),
      rateLimited: group.reduce((s, b) => s + b.rateLimited, 0),
      inFlight: Math.max(...group.map((b) => b.inFlight)),
      rows: group.reduce((s, b) => s + b.rows, 0),
    });
  }
  return rows;
}

/** The run over time: requests per second, in flight, rows per second; 429 pauses shaded. */
export function timeCharts(t: TimelineSnapshot): ChartSection {
  const charts: Chart[] = [];
  const notes: string[] = [];
  const seconds = Math.max(t.seconds, t.bucketSeconds);
  const rate = (count: number) => Math.round((count / t.bucketSeconds) * 100) / 100;
  const values = t.buckets.map((b) => ({
    at: b.at,
    requests: rate(b.requests),
    limited: rate(b.rateLimited),
    inFlight: b.inFlight,
    rows: rate(b.rows),
  }));
  const pauseSeconds = t.pauses.reduce((s, p) => s + (p.to - p.from), 0);
  const pauseText =
    t.pauses.length > 0
      ? ` Shaded: ${plural(t.pauses.length, 'rate-limit pause')} (${pauseSeconds.toFixed(1)} s in all).`
      : ' No rate-limit pause.';
  const shading = [
    ...(t.pauses.length > 0
      ? [
          {
            data: { values: t.pauses },
            mark: { type: 'rect' as const, color: PAUSE_COLOR, opacity: 0.15 },
            encoding: {
              x: { field: 'from', type: 'quantitative' as const },
              x2: { field: 'to' },
            },
          },
        ]
      : []),
    ...(t.backoffs.length > 0
      ? [
          {
            data: { values: t.backoffs.map((at) => ({ at })) },
            mark: { type: 'rule' as const, color: PAUSE_COLOR, strokeDash: [3, 2] },
            encoding: { x: { field: 'at', type: 'quantitative' as const } },
          },
        ]
      : []),
  ];
  const x = {
    field: 'at',
    type: 'quantitative' as const,
    title: 'seconds since the start',
    scale: { domain: [0, seconds], nice: false },
    axis: { tickMinStep: 0 },
  };
  const line = (field: string, color: string, title: string) => ({
    data: { values },
    mark: { type: 'line' as const, interpolate: 'step-after' as const, color, strokeWidth: 1.5 },
    encoding: { x, y: { field, type: 'quantitative' as const, title } },
  });
  const table = coarse(t, 60);
  const span = (r: { at: number; seconds: number }) =>
    `${r.at.toFixed(1)}–${(r.at + r.seconds).toFixed(1)}`;
  const peakRate = peak(values, (v) => v.requests);
  charts.push({
    id: 'requests',
    title: 'Requests per second',
    description: `Line chart of Spotify API requests sent per second over the ${seconds.toFixed(1)} s of the run (${plural(t.requests, 'request')} in all, retries included), with the 429 answers per second; the peak was ${n(peakRate?.requests ?? 0)} requests/s at ${peakRate?.at ?? 0} s.${pauseText}`,
    wide: true,
    spec: {
      ...base(WIDE, 150),
      layer: [
        ...shading,
        line('requests', '#4c78a8', 'requests / s'),
        {
          data: { values: values.filter((v) => v.limited > 0) },
          mark: { type: 'point', color: PAUSE_COLOR, filled: true, size: 30 },
          encoding: { x, y: { field: 'limited', type: 'quantitative' } },
        },
      ],
    },
    table: {
      columns: ['seconds', 'requests', '429 answers'],
      rows: table.map((r) => [span(r), r.requests, r.rateLimited]),
    },
  });
  const peakFlight = peak(values, (v) => v.inFlight);
  charts.push({
    id: 'in-flight',
    title: 'Requests in flight',
    description: `Line chart of the most Spotify API requests in flight at once in each interval; at most ${n(peakFlight?.inFlight ?? 0)}.${pauseText}`,
    wide: true,
    spec: {
      ...base(WIDE, 110),
      layer: [...shading, line('inFlight', '#f58518', 'in flight (peak)')],
    },
    table: {
      columns: ['seconds', 'in flight (peak)'],
      rows: table.map((r) => [span(r), r.inFlight]),
    },
  });
  const peakRows = peak(values, (v) => v.rows);
  const totalRows = t.buckets.reduce((s, b) => s + b.rows, 0);
  charts.push({
    id: 'rows',
    title: 'Rows written per second',
    description: `Line chart of rows produced per second, all outputs together (${plural(totalRows, 'row')}); the peak was ${n(peakRows?.rows ?? 0)} rows/s at ${peakRows?.at ?? 0} s.${pauseText}`,
    wide: true,
    spec: { ...base(WIDE, 110), layer: [...shading, line('rows', '#54a24b', 'rows / s')] },
    table: { columns: ['seconds', 'rows'], rows: table.map((r) => [span(r), r.rows]) },
  });
  notes.push(
    `Intervals of ${t.bucketSeconds.toFixed(1)} s; requests counted for the Spotify Web API only (token requests not).`,
  );
  return { charts, notes };
}
