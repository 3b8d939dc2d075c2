/**
 * `--report`: one self-contained HTML page per run, staged as one more output of the run's
 * commit. The aggregates are filled in the run's own streaming pass (taps on the album stream,
 * the run's events, undici's diagnostics channels) in bounded memory; the charts are drawn once,
 * when every data output is staged, by Vega-Lite and Vega, which only this step loads.
 */
import type { ReportedSettings } from '../core/options/report.ts';
import type { SourceItem, SourcePage } from '../core/records.ts';
import type { RunEvent, RunStats } from '../core/stats.ts';
import { REPORT_LIMITS, ReportAggregator } from './aggregate.ts';
import { dataCharts, timeCharts } from './charts.ts';
import { type ReportFacts, type ReportOutput, reportHtml } from './html.ts';
import { TIMELINE_BUCKETS, TIMELINE_PAUSES, Timeline } from './timeline.ts';

export { REPORT_LIMITS, ReportAggregator } from './aggregate.ts';
export type { ReportFacts, ReportOutput, RunNumbers } from './html.ts';
export { Timeline } from './timeline.ts';

export interface ReporterOptions {
  /** The run's settings the page states (markets, the API, the format…). */
  settings: ReportedSettings;
  /** The run's UTC date (YYYY-MM-DD). */
  date: string;
  stats: RunStats;
  /** The run's start, `performance.now()`: the time axis starts there. */
  started: number;
}

/** What the run knows once every data output is staged. */
export interface RenderInput {
  runId: string;
  startedAt: Date;
  stats: RunStats;
  outputs: ReportOutput[];
  rejects: string | null;
  manifest: string | null;
  report: string;
  /** Distinct albums new to the incremental state and seen before. */
  state: { location: string; new: number; seen: number } | null;
  marketsFailed: { market: string; code: string; message: string }[];
}

/** The memory bounds as the page states them (bench/report.ts measures the bytes). */
const LIMITS = [
  `top artists exact up to ${REPORT_LIMITS.artists.toLocaleString('en-US')} distinct artists, then a Space-Saving summary of that many counters;`,
  `market overlap exact up to ${REPORT_LIMITS.overlapAlbums.toLocaleString('en-US')} distinct albums, then a hash sample of at most that many;`,
  `release dates in at most ${REPORT_LIMITS.recentDays + 14} day and ${new Date().getUTCFullYear() + 6 - REPORT_LIMITS.firstYear} year buckets;`,
  `${TIMELINE_BUCKETS} time intervals and ${TIMELINE_PAUSES} pauses at most.`,
];

/** What a run feeds while it goes, and draws the page from once its outputs are staged. */
export class RunReporter {
  readonly #aggregator: ReportAggregator;
  readonly #timeline: Timeline;
  readonly #started: number;
  readonly #settings: ReportedSettings;

  constructor(o: ReporterOptions) {
    this.#aggregator = new ReportAggregator(o.date, o.settings.markets);
    this.#timeline = new Timeline(o.settings.apiUrl, o.stats, o.started);
    this.#started = o.started;
    this.#settings = o.settings;
  }

  /** One page as its market listed it, before rejects, dedupe and `--new-only` (a tap). */
  listed(page: SourcePage): void {
    for (const album of page.items) this.#aggregator.listed(album, page.market);
  }

  /** One album that goes on to the outputs, after `--new-only` (a tap). */
  add(item: SourceItem): void {
    this.#aggregator.add(item);
  }

  /** One of the run's events (rate limits become shaded pauses). */
  event(e: RunEvent): void {
    this.#timeline.event(e);
  }

  /** Stops observing the run (idempotent; also on failure). */
  stop(): void {
    this.#timeline.stop();
  }

  /** The API requests seen so far. */
  get requests(): number {
    return this.#timeline.snapshot().requests;
  }

  /** Stops observing and draws the page: the run's numbers as they are now. */
  async render(r: RenderInput): Promise<string> {
    this.stop();
    const { stats } = r;
    const settings = this.#settings;
    const timeline = this.#timeline.snapshot();
    const state = r.state && { ...r.state, newOnly: settings.newOnly };
    const data = dataCharts(this.#aggregator.snapshot(), state);
    const time = timeCharts(timeline);
    // Loaded here, not above: only a run with --report pays for Vega.
    const { renderSvgs } = await import('./render.ts');
    const svgs = await renderSvgs([...data.charts, ...time.charts]);
    const facts: ReportFacts = {
      runId: r.runId,
      startedAt: r.startedAt.toISOString(),
      stagedAt: new Date().toISOString(),
      stagedSeconds: Math.round(performance.now() - this.#started) / 1000,
      source: {
        via: settings.via,
        query: settings.query,
        api: settings.apiUrl,
        markets: settings.markets,
      },
      model: settings.model,
      format: settings.format,
      gzip: settings.gzip,
      numbers: {
        pages: stats.pages,
        albums: stats.albums,
        rows: stats.rows,
        rejected: stats.rejected,
        retries: stats.retries,
        rateLimited: stats.rateLimited,
        rateLimitWaitMs: stats.rateLimitWaitMs,
        tokens: stats.tokens,
        totalAlbums: stats.totalAlbums ?? null,
        serializedBytes: stats.bytes,
        storedBytes: r.outputs.reduce((sum, out) => sum + out.storedBytes, 0),
      },
      requests: timeline.requests,
      outputs: r.outputs,
      rejects: r.rejects,
      manifest: r.manifest,
      report: r.report,
      state,
      marketsFailed: r.marketsFailed,
      searchCapped: stats.searchCapped,
      searchLimit: stats.searchLimit ?? null,
      limits: LIMITS,
    };
    return reportHtml(facts, data, time, svgs);
  }
}
