import type { Readable, Transform } from 'node:stream';
import type { Commit } from '../commit/commit.ts';
import type { StagedRun } from '../commit/publish.ts';
import { abortReason, type SpotifyBatchError } from '../core/errors.ts';
import type { MarketsConfig } from '../core/options/markets.ts';
import type { NormalizedOptions } from '../core/options/normalize.ts';
import type { SourceConfig } from '../core/options/source.ts';
import type { SourcePage } from '../core/records.ts';
import type { StagedSink } from '../core/sink.ts';
import type { EventListener, RunStats } from '../core/stats.ts';
import { type Plan, target } from '../plan/plan.ts';
import type { RunReporter } from '../report/index.ts';
import type { Destinations } from '../sinks/open.ts';
import { liveSource } from '../sources/albums.ts';
import type { SpotifyClient } from '../sources/client.ts';
import { replaySource } from '../sources/replay.ts';
import { AlbumsTransform } from '../transforms/albums.ts';
import type { Encoding, OutputReport } from '../transforms/encode.ts';
import { checkRows } from '../transforms/rows.ts';
import { checkStar } from '../transforms/star.ts';
import { type StateCounts, type StateEntries, StateTracker, unclaim } from '../transforms/state.ts';
import { Tap } from '../transforms/tap.ts';
import { AwaitTurn, Turns } from '../transforms/turn.ts';
import { type Branch, runBranches } from './branches.ts';
import { type MarketFailure, pullMarkets, triage } from './markets.ts';
import { fanOut, type RowsConfig, type SideOutputs, sideSinks } from './outputs.ts';

/** What a pull uses of the run (src/run/scope.ts's RunScope is one). */
export interface PullScope {
  readonly commit: Commit;
  /** Where a replay reads its inputs. */
  readonly destinations: Destinations;
  /** Where a live pull asks Spotify. */
  readonly client: SpotifyClient;
  readonly reporter: RunReporter | undefined;
  readonly stats: RunStats;
  readonly signal: AbortSignal;
  readonly startedAt: Date;
  /** The caller's listener: told of each market skipped. */
  readonly onEvent: EventListener | undefined;
  /** Stops the other markets when one fails the run. */
  abort(reason: SpotifyBatchError): void;
}

/** What the pull takes of the options. */
export interface PullConfig {
  source: SourceConfig;
  markets: MarketsConfig;
  outputs: RowsConfig;
  /** The whole page window (`--concurrency`). */
  concurrency: number;
  /** With a state: only albums it does not know go on. */
  newOnly: boolean;
}

export function pullConfig(
  o: Pick<NormalizedOptions, 'source' | 'markets' | 'outputs' | 'pacing' | 'state'>,
): PullConfig {
  const { source, markets, outputs } = o;
  return { source, markets, outputs, concurrency: o.pacing.concurrency, newOnly: o.state.newOnly };
}

/** What the pull does with the run's state (src/run/lease.ts holds it). */
export interface PullState {
  loaded: { entries: StateEntries };
  added: StateEntries;
  today: string;
  counts: StateCounts;
}

/** One staged data output and how to describe it once published. */
interface Staged {
  sink: StagedSink;
  encoding: Encoding;
  market: string | null;
  rows: () => number;
}

/** The staged data outputs as the report, the manifest and the summary list them. */
function describe(staged: Staged[], results: { location: string }[]): OutputReport[] {
  return staged.map((s, i) =>
    s.encoding.output(results[i] ?? { location: s.sink.location }, s.market, s.rows()),
  );
}

/** What every market's pull shares. */
interface Shared {
  run: PullScope;
  config: PullConfig;
  plan: Plan;
  side: SideOutputs;
  state: PullState | undefined;
  /** Each market's share of the page window. */
  window: number;
  turns: Turns | undefined;
}

/** What the pull staged, as phase two takes it, and where its data outputs are. */
export interface Pulled extends StagedRun {
  failed: MarketFailure[];
  /** The data outputs' locations, in the order the markets were given. */
  locations: string[];
}

/**
 * source → albums → rows → encode → staged sinks, for every market of a `{market}` run (or the
 * one list). A market's failure is judged by the triage (src/pull/markets.ts): skipped, the
 * reader gone, or the run's failure.
 */
export async function pullAll(
  run: PullScope,
  config: PullConfig,
  plan: Plan,
  side: SideOutputs,
  state: PullState | undefined,
): Promise<Pulled> {
  const markets: (string | undefined)[] = config.markets.perMarket
    ? config.markets.list
    : [undefined];
  // Per-market outputs run up to `concurrency` markets at once (the shared client still
  // bounds the requests in flight); each gets its share of one page window, so parsed pages
  // waiting to be consumed stay near `concurrency` in all, not concurrency². With turns the
  // market whose turn it is takes the whole window while the others hold their share: at
  // most concurrency + (workers - 1) × share pages, under 2 × concurrency (bench/turns.ts).
  const workers = Math.min(config.concurrency, markets.length);
  const shared: Shared = {
    run,
    config,
    plan,
    side,
    state,
    window: Math.max(1, Math.floor(config.concurrency / workers)),
    // Side by side, markets still claim the state's albums in --market order (transforms/turn.ts).
    turns: state === undefined || workers < 2 ? undefined : new Turns(markets.length),
  };
  const { signal } = run;
  const done = await pullMarkets(
    markets,
    workers,
    (market, index) => pullMarket(market, index, shared),
    (caught, market) =>
      triage(caught, {
        market,
        toStdout: plan.outputs.find((p) => p.market === market)?.location === '-',
        onMarketError: config.markets.onMarketError,
        aborted: signal.aborted ? abortReason(signal.reason) : undefined,
      }),
    { abort: (failure) => run.abort(failure), onEvent: run.onEvent },
  );
  return {
    sinks: [...done.staged.map((s) => s.sink), ...sideSinks(side)],
    describe: (results) => describe(done.staged, results),
    locations: done.staged.map((s) => s.sink.location),
    failed: done.failed,
    closed: done.outputClosed,
  };
}

/**
 * One market (or the only list): its outputs opened, its source → albums → rows → encoders →
 * staged sinks. On failure, what it staged is discarded and the state forgets its albums
 * before the error goes on to the triage.
 */
async function pullMarket(market: string | undefined, index: number, m: Shared): Promise<Staged[]> {
  const { run, config, plan, state } = m;
  const { commit, stats } = run;
  const locations = plan.outputs.filter((p) => p.market === market).map((p) => p.location);
  const opened: Staged[] = [];
  const claimed: [string, boolean][] = [];
  try {
    const fanout = await fanOut(config.outputs, locations, stats);
    const branches: Branch[] = [];
    for (const table of fanout.tables) {
      const sink = await commit.open(table.location, target(plan, table.location));
      opened.push({ sink, encoding: table.encoding, market: market ?? null, rows: table.rows });
      branches.push({ rows: table.rows$, stages: table.encoding.stages, sink });
    }
    const turn = m.turns?.before(index);
    const pages = pageSource(market, m, turn);
    await runBranches(pages, albumStages(m, turn, claimed), fanout.head, branches, run.signal);
    return opened;
  } catch (caught) {
    await commit.discard(
      opened.map((s) => s.sink),
      caught,
    );
    // Nothing of this market is published: the state must not record its albums.
    if (state !== undefined) unclaim(claimed, state.added, state.counts);
    throw caught;
  } finally {
    m.turns?.done(index);
  }
}

/**
 * A market's pages, live or replayed (a replay's markets come from its raw lines:
 * src/run/options.ts); one stage after it makes them albums the same way for both. With
 * {market} outputs a replay reads its inputs once per market, `workers` markets at a time, as
 * the live run fetches them: one pass routed to every market would hold every market's outputs
 * open at once (185 S3 uploads and their part buffers), since a raw landing interleaves the
 * markets that were fetched together.
 */
function pageSource(
  market: string | undefined,
  { run, config, side, window: share }: Shared,
  turn: Promise<void> | undefined,
): Readable {
  const { from, via, query, limit, maxItems } = config.source;
  const { stats } = run;
  const markets = market === undefined ? config.markets.list : [market];
  if (from.length > 0) {
    return replaySource(from, (location) => run.destinations.read(location), {
      markets,
      stats,
      fetchedAt: run.startedAt.toISOString(),
      maxItems,
    });
  }
  // A market waiting for its turn fetches its share of the window ahead; once every market
  // before it is done it takes the whole window, since the markets after it wait on it.
  let window = share;
  turn?.then(
    () => {
      window = config.concurrency;
    },
    () => {},
  );
  return liveSource({
    via,
    query,
    limit,
    maxItems,
    concurrency: turn === undefined ? share : () => window,
    markets,
    stats,
    signal: run.signal,
    client: run.client,
    keepText: side.raw !== undefined,
    onPage: side.raw?.page,
  });
}

/**
 * The stages between pages and rows: the report sees each page as its market listed it (before
 * rejects, dedupe and --new-only drop albums: its per-market counts and overlap, one page held at
 * most); the albums stage; with a state, the market's turn and the tracker (which notes in
 * `claimed` what it adds); and the report sees the albums that go on to the rows (after
 * --new-only): everything else it charts.
 */
function albumStages(
  { run, config, side, state }: Shared,
  turn: Promise<void> | undefined,
  claimed: [string, boolean][],
): Transform[] {
  const { reporter, stats } = run;
  const { model, columns } = config.outputs;
  return [
    ...(reporter === undefined ? [] : [new Tap<SourcePage>((page) => reporter.listed(page), 1)]),
    new AlbumsTransform({
      stats,
      check: model === 'star' ? checkStar : checkRows(columns),
      dedupe: config.markets.dedupe,
      onReject: side.onReject,
    }),
    ...(state === undefined || turn === undefined ? [] : [new AwaitTurn(turn)]),
    ...(state === undefined
      ? []
      : [
          new StateTracker({
            known: state.loaded.entries,
            added: state.added,
            today: state.today,
            counts: state.counts,
            newOnly: config.newOnly,
            claimed,
          }),
        ]),
    ...(reporter === undefined ? [] : [new Tap((item) => reporter.add(item))]),
  ];
}
