import type { Transform } from 'node:stream';
import type { Commit } from './commit/commit.ts';
import { manifestBody, manifestOf } from './commit/manifest.ts';
import { publishRun } from './commit/publish.ts';
import { abortReason, type SpotifyBatchError } from './core/errors.ts';
import type { NormalizedOptions } from './core/options/normalize.ts';
import type { OutputsConfig } from './core/options/outputs.ts';
import type { ReportedSettings } from './core/options/report.ts';
import type { SourceConfig } from './core/options/source.ts';
import type { Options } from './core/options.ts';
import type { SourcePage } from './core/records.ts';
import type { StagedSink } from './core/sink.ts';
import type { RunStats } from './core/stats.ts';
import { type Plan, planOutputs, target } from './plan/plan.ts';
import { preflight } from './plan/preflight.ts';
import {
  type FolderChanges,
  folderChanges,
  type PreviousRun,
  tellChanges,
} from './plan/previous.ts';
import { type Branch, runBranches } from './pull/branches.ts';
import { type MarketsDone, pullMarkets, triage } from './pull/markets.ts';
import {
  endSideOutputs,
  fanOut,
  openSideOutputs,
  type SideOutputs,
  sideSinks,
} from './pull/outputs.ts';
import { type RunReport, summarize } from './pull/summary.ts';
import type { RunReporter } from './report/index.ts';
import { type HeldState, leaseState, stateUpdate } from './run/lease.ts';
import { resolveOptions } from './run/options.ts';
import { type RunContext, RunScope, startClock } from './run/scope.ts';
import type { Destinations } from './sinks/open.ts';
import { liveSource } from './sources/albums.ts';
import type { SpotifyClient } from './sources/client.ts';
import { replaySource } from './sources/replay.ts';
import { AlbumsTransform } from './transforms/albums.ts';
import type { Encoding, OutputReport } from './transforms/encode.ts';
import { checkRows } from './transforms/rows.ts';
import { checkStar } from './transforms/star.ts';
import { StateTracker, unclaim } from './transforms/state.ts';
import { Tap } from './transforms/tap.ts';
import { AwaitTurn, Turns } from './transforms/turn.ts';

export type { MarketFailure } from './pull/markets.ts';
export type { RunReport, StateReport } from './pull/summary.ts';
export { resolveOptions } from './run/options.ts';
export type { RunContext } from './run/scope.ts';
export type { OutputReport } from './transforms/encode.ts';

/** One staged data output and how to describe it once published. */
interface Staged {
  sink: StagedSink;
  encoding: Encoding;
  market: string | null;
  rows: () => number;
}

/**
 * Runs one pull: plan → preflight → lease → per market: source → albums → rows → encode →
 * staged sinks → commit (src/commit/commit.ts) → report. Resolves with the report once every output is
 * in place; rejects with a {@link SpotifyBatchError} after discarding every staged output, so
 * the destination is left as it was.
 */
export async function run(
  options: Options | NormalizedOptions,
  context: RunContext = {},
): Promise<RunReport> {
  // Started before the options are resolved: a replay's look at its inputs is part of the run.
  const clock = startClock();
  const o = await resolveOptions(options, context.env ?? process.env);
  await using run = new RunScope(clock, { s3: o.s3, date: o.state.date }, context);
  const { started, startedAt, stats, vars, signal, destinations, commit } = run;
  // Proven before the first request to Spotify: a mistake costs a second and no quota.
  // It also reads the folder's previous manifest and moves the raw landing beside a taken one.
  const { plan, previous } = await run.guard(
    preflight(planOutputs(o, vars), destinations, { newOnly: o.state.newOnly, runId: vars.runId }),
  );
  const state = await leaseState(run, plan, o.state.newOnly);
  // --report: its aggregates fill in during this run's own pass; Vega loads only to draw it.
  const reporter =
    plan.report === undefined
      ? undefined
      : await startReporter(o.report.settings, vars.date, stats, started);
  run.connect(o.source.spotify, o.pacing, reporter);
  const { client } = run;
  try {
    const side = await openSideOutputs(commit, plan, o.outputs.maxRejects, o.markets.list, stats);
    const markets: (string | undefined)[] = o.markets.perMarket ? o.markets.list : [undefined];
    // Per-market outputs run up to `concurrency` markets at once (the shared client still
    // bounds the requests in flight); each gets its share of one page window, so parsed pages
    // waiting to be consumed stay near `concurrency` in all, not concurrency². With turns the
    // market whose turn it is takes the whole window while the others hold their share: at
    // most concurrency + (workers - 1) × share pages, under 2 × concurrency (bench/turns.ts).
    const workers = Math.min(o.pacing.concurrency, markets.length);
    const market$: MarketContext = {
      source: o.source,
      markets: o.markets.list,
      outputs: o.outputs,
      dedupe: o.markets.dedupe,
      newOnly: o.state.newOnly,
      plan,
      commit,
      destinations,
      client,
      stats,
      signal,
      side,
      startedAt,
      window: Math.max(1, Math.floor(o.pacing.concurrency / workers)),
      concurrency: o.pacing.concurrency,
      state,
      reporter,
      // Side by side, markets still claim the state's albums in --market order (transforms/turn.ts).
      turns: state === undefined || workers < 2 ? undefined : new Turns(markets.length),
    };
    const done = await pullMarkets(
      markets,
      workers,
      (market, index) => pullMarket(market, index, market$),
      (caught, market) =>
        triage(caught, {
          market,
          toStdout: plan.outputs.find((p) => p.market === market)?.location === '-',
          onMarketError: o.markets.onMarketError,
          aborted: signal.aborted ? abortReason(signal.reason) : undefined,
        }),
      { abort: (failure) => run.abort(failure), onEvent: run.onEvent },
    );
    const lastByte = performance.now();
    await endSideOutputs(side);
    const describe = (results: { location: string }[]): OutputReport[] =>
      done.staged.map((s, i) =>
        s.encoding.output(results[i] ?? { location: s.sink.location }, s.market, s.rows()),
      );
    // The previous run's outputs this run does not rewrite: carried over or removed.
    const changes = folderChanges(
      done.outputClosed ? undefined : previous,
      plan,
      done.staged.map((s) => s.sink.location),
    );
    // The page is drawn once every data output is staged, and published with them.
    if (reporter !== undefined && side.report !== undefined && !done.outputClosed) {
      side.report.writable.end(
        await reporter.render({
          runId: vars.runId,
          startedAt,
          stats,
          outputs: describe(done.staged.map((s) => ({ location: s.sink.location }))),
          ...placesOf(plan),
          state: state === undefined ? null : { location: state.loaded.location, ...state.counts },
          marketsFailed: done.failed,
        }),
      );
    }
    const published = await publishAll({
      o,
      plan,
      commit,
      destinations,
      done,
      side,
      state,
      previous,
      changes,
      describe,
      stats,
      vars,
      startedAt,
      signal,
      onCommitPoint: () => run.commitPoint(),
    });
    tellChanges(changes, plan, run.onEvent);
    return summarize({
      plan,
      stats,
      runId: vars.runId,
      startedAt,
      started,
      lastByte,
      outputs: done.outputClosed ? [] : describe(published.results),
      published,
      stagedLocation: done.staged[0]?.sink.location ?? '-',
      failed: done.failed,
      outputClosed: done.outputClosed,
      stateCounts: state === undefined ? undefined : { ...state.counts, ...state.written },
    });
  } catch (error) {
    throw run.failed(error);
  }
}

/** What phase two publishes, and what it says of it in the manifest. */
interface PublishContext {
  o: NormalizedOptions;
  plan: Plan;
  commit: Commit;
  destinations: Destinations;
  done: MarketsDone<Staged>;
  side: SideOutputs;
  state: HeldState | undefined;
  previous: PreviousRun | undefined;
  changes: FolderChanges;
  describe: (results: { location: string }[]) => OutputReport[];
  stats: RunStats;
  vars: { runId: string; date: string };
  startedAt: Date;
  signal: AbortSignal;
  onCommitPoint: () => void;
}

/**
 * Phase two (src/commit/publish.ts): every staged output published, the state after them, the
 * folder's outputs this run replaces removed, and the manifest last. A reader that left early
 * (`| head`) ends the run cleanly with nothing else published (the state neither: the data it
 * goes with was cut short).
 */
function publishAll(p: PublishContext): ReturnType<typeof publishRun> {
  const { o, plan, done, state, previous, changes, vars } = p;
  const closed = done.outputClosed;
  return publishRun(
    p.commit,
    p.destinations,
    plan.manifest,
    closed ? [] : [...done.staged.map((s) => s.sink), ...sideSinks(p.side)],
    {
      state: state === undefined || closed ? undefined : stateUpdate(state, plan, o.state.ttlDays),
      signal: p.signal,
      folder:
        previous === undefined || closed
          ? undefined
          : {
              manifestVersion: previous.manifestVersion,
              remove: changes.removed.map(({ location, version }) => ({ location, version })),
            },
      manifest: closed
        ? undefined
        : (results, stateResult, endedAt) =>
            manifestBody({
              ...manifestOf(
                { source: o.source, markets: o.markets.list, outputs: o.outputs },
                plan,
                p.stats,
                vars,
              ),
              startedAt: p.startedAt,
              endedAt,
              failed: done.failed,
              outputs: p.describe(results),
              carried: changes.carried.map((c) => ({ ...c.entry, runId: c.runId, raw: c.raw })),
              state:
                state === undefined
                  ? undefined
                  : { location: state.loaded.location, version: stateResult?.version ?? null },
            }),
      onCommitPoint: p.onCommitPoint,
    },
  );
}

/** What each market's pull shares with the others. */
interface MarketContext {
  source: SourceConfig;
  /** Every market of the run: the one output of a run without `{market}` holds them all. */
  markets: string[];
  outputs: OutputsConfig;
  /** Keep only the first row per (album, artist); a star's dim_album is keyed by id: always. */
  dedupe: boolean;
  /** With a state: only albums it does not know go on. */
  newOnly: boolean;
  plan: Plan;
  commit: Commit;
  destinations: Destinations;
  client: SpotifyClient;
  stats: RunStats;
  signal: AbortSignal;
  side: SideOutputs;
  startedAt: Date;
  /** This market's share of the page window. */
  window: number;
  /** The whole page window (`--concurrency`). */
  concurrency: number;
  state: HeldState | undefined;
  reporter: RunReporter | undefined;
  turns: Turns | undefined;
}

/**
 * One market (or the only list): its outputs opened, its source → albums → rows → encoders →
 * staged sinks. On failure, what it staged is discarded and the state forgets its albums
 * before the error goes on to the triage.
 */
async function pullMarket(
  market: string | undefined,
  index: number,
  m: MarketContext,
): Promise<Staged[]> {
  const { source, outputs, plan, commit, stats, signal, side, state, reporter } = m;
  const locations = plan.outputs.filter((p) => p.market === market).map((p) => p.location);
  const opened: Staged[] = [];
  const claimed: [string, boolean][] = [];
  try {
    const fanout = await fanOut(outputs, locations, stats);
    const branches: Branch[] = [];
    for (const table of fanout.tables) {
      const sink = await commit.open(table.location, target(plan, table.location));
      opened.push({ sink, encoding: table.encoding, market: market ?? null, rows: table.rows });
      branches.push({ rows: table.rows$, stages: table.encoding.stages, sink });
    }
    // Pages, live or replayed (a replay's markets come from its raw lines: src/run/options.ts);
    // one stage makes them albums the same way for both. With {market} outputs a replay reads its inputs once per market, `workers` markets at a time, as the
    // live run fetches them: one pass routed to every market would hold every market's
    // outputs open at once (185 S3 uploads and their part buffers), since a raw landing
    // interleaves the markets that were fetched together.
    const pagesOf = market === undefined ? m.markets : [market];
    // A market waiting for its turn fetches its share of the window ahead; once every market
    // before it is done it takes the whole window, since the markets after it wait on it.
    const turn = m.turns?.before(index);
    let window = m.window;
    turn?.then(
      () => {
        window = m.concurrency;
      },
      () => {},
    );
    const { from, via, query, limit, maxItems } = source;
    const pages =
      from.length > 0
        ? replaySource(from, (location) => m.destinations.read(location), {
            markets: pagesOf,
            stats,
            fetchedAt: m.startedAt.toISOString(),
            maxItems,
          })
        : liveSource({
            via,
            query,
            limit,
            maxItems,
            concurrency: turn === undefined ? m.window : () => window,
            markets: pagesOf,
            stats,
            signal,
            client: m.client,
            keepText: side.raw !== undefined,
            onPage: side.raw?.page,
          });
    const through: Transform[] = [
      // The report sees each page as its market listed it, before rejects, dedupe and
      // --new-only drop albums: its per-market counts and overlap (one page held at most).
      ...(reporter === undefined ? [] : [new Tap<SourcePage>((page) => reporter.listed(page), 1)]),
      new AlbumsTransform({
        stats,
        check: outputs.model === 'star' ? checkStar : checkRows(outputs.columns),
        dedupe: m.dedupe,
        onReject: side.onReject,
      }),
    ];
    if (state !== undefined) {
      if (turn !== undefined) through.push(new AwaitTurn(turn));
      through.push(
        new StateTracker({
          known: state.loaded.entries,
          added: state.added,
          today: state.today,
          counts: state.counts,
          newOnly: m.newOnly,
          claimed,
        }),
      );
    }
    // And the albums that go on to the rows (after --new-only): everything else it charts.
    if (reporter !== undefined) through.push(new Tap((item) => reporter.add(item)));
    await runBranches(pages, through, fanout.head, branches, signal);
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

/** The `--report` aggregates, loaded only by a run that asks for a report. */
async function startReporter(
  settings: ReportedSettings,
  date: string,
  stats: RunStats,
  started: number,
): Promise<RunReporter> {
  const { RunReporter } = await import('./report/index.ts');
  return new RunReporter({ settings, date, stats, started });
}

/** Where the report says the run's other outputs went. */
function placesOf(plan: Plan) {
  return {
    rejects: plan.rejects ?? null,
    manifest: plan.manifest ?? null,
    report: plan.report as string,
  };
}
