import { once } from 'node:events';
import { Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Branch, runBranches } from './branches.ts';
import { Commit } from './commit.ts';
import type { Column } from './core/columns.ts';
import { type ErrorCode, SpotifyBatchError, toSpotifyBatchError } from './core/errors.ts';
import type { NormalizedOptions, Options } from './core/options.ts';
import type { SinkResult, StagedSink } from './core/sink.ts';
import { createStats, type EventListener, type RunStats } from './core/stats.ts';
import { type Encoding, encode, type OutputReport } from './encode.ts';
import { manifestObject } from './manifest.ts';
import { type Plan, planOutputs, rawIsPlain, resolveOptions, runVars, target } from './plan.ts';
import { preflight } from './preflight.ts';
import type { RunReporter } from './report/index.ts';
import { fileError } from './sinks/file.ts';
import { Destinations } from './sinks/open.ts';
import { isBrokenPipe } from './sinks/stdout.ts';
import { liveSource, type Page } from './sources/albums.ts';
import { SpotifyClient } from './sources/client.ts';
import { rawLine, replaySource } from './sources/replay.ts';
import { acquireLease, type LoadedState, loadState, stateLines } from './state.ts';
import { AlbumsTransform, type RejectHandler } from './transforms/albums.ts';
import { checkRows, RowsTransform } from './transforms/rows.ts';
import { checkStar, STAR_TABLE_NAMES, STAR_TABLES, StarSplitter } from './transforms/star.ts';
import { type StateCounts, type StateEntries, StateTracker, unclaim } from './transforms/state.ts';
import { Tap } from './transforms/tap.ts';

export type { OutputReport } from './encode.ts';

export interface RunContext {
  /** Aborting stops the run: requests are cancelled, every staged output is discarded. */
  signal?: AbortSignal;
  /** Environment for defaults (credentials, endpoints). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where `--out -` writes. @default process.stdout */
  stdout?: NodeJS.WritableStream;
  /** Told about retries and rate limits as they happen. */
  onEvent?: EventListener;
  /** Counters the run fills as it goes (read them for a progress display). @default fresh ones */
  stats?: RunStats;
}

/** A market that failed under `onMarketError: 'skip'`. */
export interface MarketFailure {
  market: string;
  code: ErrorCode;
  message: string;
}

/** What a finished run reports (also the CLI's summary line and JSON report). */
export interface RunReport
  extends Omit<RunStats, 'totalAlbums' | 'searchLimit' | 'bytes'>,
    SinkResult {
  /** Bytes the serializers produced, all outputs together (before compression). */
  serializedBytes: number;
  /** Bytes stored at the destinations, all outputs together (after compression). */
  storedBytes: number;
  runId: string;
  startedAt: string;
  endedAt: string;
  totalAlbums: number | null;
  searchLimit: number | null;
  seconds: number;
  /**
   * The commit's cost: seconds from the last byte of the last output to every output published
   * (the manifest included).
   */
  commitSeconds: number;
  outputs: OutputReport[];
  /** Where the manifest went, when one was written. */
  manifest: string | null;
  /** Where the HTML report went (`--report`), when one was written. */
  report: string | null;
  /** Where the raw landing went (`--raw`), when one was written. */
  raw: string | null;
  marketsFailed: MarketFailure[];
  /** stdout only: the reader went away before the end (e.g. `| head`); not an error. */
  outputClosed: boolean;
  /**
   * With outputClosed: the run's other outputs (rejects, raw, report, state), which are then
   * not written, since the data they go with was cut short.
   */
  notWritten: string[];
  /** With `state`: what the run did with the incremental state. */
  state: StateReport | null;
}

/** The incremental state after a run (albums counted once each, whatever the markets). */
export interface StateReport {
  location: string;
  /** Albums not in the state before: first emitted by this run. */
  new: number;
  /** Albums already in the state (left out with `newOnly`). */
  seen: number;
  /** Ids dropped for being first seen more than `stateTtlDays` ago. */
  droppedByTtl: number;
  /** Ids in the state as written. */
  ids: number;
  /** The state's version as written (S3 ETag; a file's size and mtime), when written. */
  version: string | null;
  /**
   * Null when the state was written. Otherwise why not: the data outputs were published, so the
   * next run emits this run's new albums again (at least once, never lost).
   */
  error: string | null;
}

/** Errors that belong to one market (its list, its pages, its records), not to the whole run. */
const MARKET_ERRORS = new Set<ErrorCode>([
  'ERR_SPOTIFY_HTTP',
  'ERR_SPOTIFY_FORBIDDEN',
  'ERR_BAD_PAGE',
  'ERR_BAD_RECORD',
  'ERR_NETWORK',
]);

/** One staged output and how to describe it once published. */
interface Staged {
  sink: StagedSink;
  encoding: Encoding;
  market: string | null;
  rows: () => number;
}

/**
 * Runs one pull: Spotify → album rows → encoded bytes → every output staged → published
 * together (src/commit.ts). Resolves with the report once every output is in place; rejects with
 * a {@link SpotifyBatchError} after discarding every staged output, so the destination is left
 * as it was.
 */
export async function run(
  options: Options | NormalizedOptions,
  context: RunContext = {},
): Promise<RunReport> {
  const started = performance.now();
  const startedAt = new Date();
  const env = context.env ?? process.env;
  const o = await resolveOptions(options, env);
  const stats = context.stats ?? createStats();
  const vars = runVars(startedAt);
  // The run's own controller: a failure anywhere stops every request of the shared client.
  const controller = new AbortController();
  const signal = context.signal
    ? AbortSignal.any([context.signal, controller.signal])
    : controller.signal;
  const stdout = (context.stdout ?? process.stdout) as Writable;
  const plan = planOutputs(o, vars);
  const destinations = new Destinations(o.s3, env, stdout, signal, context.onEvent);
  await using commit = new Commit(destinations);
  // Proven before the first request to Spotify: a mistake costs a second and no quota. A signal
  // that cancelled a probe explains its error.
  await preflight(plan, destinations, { newOnly: o.newOnly }).catch((error: unknown) => {
    throw signal.aborted ? abortReason(signal.reason) : error;
  });
  // One writer per state: the lease is taken before anything is fetched, released last (it is
  // declared after the commit, so it is disposed of before it).
  await using _lease =
    plan.state === undefined
      ? undefined
      : await acquireLease(destinations, plan.state, vars.runId, startedAt, context.onEvent);
  const state = plan.state === undefined ? undefined : await loadState(destinations, plan.state);
  const added: StateEntries = new Map();
  const stateCounts: StateCounts = { new: 0, seen: 0 };
  // --report: its aggregates fill in during this run's own pass; Vega loads only to draw it.
  const reporter: RunReporter | undefined =
    plan.report === undefined ? undefined : await startReporter(o, vars.date, stats, started);
  const onEvent: EventListener | undefined =
    reporter === undefined
      ? context.onEvent
      : (event) => {
          reporter.event(event);
          context.onEvent?.(event);
        };
  const client = new SpotifyClient({ ...o, stats, signal, onEvent });
  const markets: (string | undefined)[] = o.perMarket ? o.markets : [undefined];
  // Per-market outputs run up to `concurrency` markets at once (the shared client still bounds
  // the requests in flight); each gets its share of one page window, so parsed pages waiting
  // to be consumed stay near `concurrency` in all, not concurrency².
  const workers = Math.min(o.concurrency, markets.length);
  const window = Math.max(1, Math.floor(o.concurrency / workers));
  const staged: (Staged & { index: number })[] = [];
  const marketsFailed: (MarketFailure & { index: number })[] = [];
  let outputClosed = false;
  /** Phase two has begun: from here on the run finishes publishing whatever happens. */
  let committing = false;
  try {
    const rejects =
      plan.rejects === undefined
        ? undefined
        : await commit.open(plan.rejects, target(plan, plan.rejects));
    const onReject = rejects && rejectHandler(rejects.writable, o.maxRejects, stats);
    const raw =
      plan.raw === undefined ? undefined : await openRaw(commit, plan, plan.raw, o.markets);
    // Opened now, so a destination that refuses it fails the run before anything is fetched.
    const reportSink =
      plan.report === undefined
        ? undefined
        : await commit.open(plan.report, target(plan, plan.report));
    let fatal: SpotifyBatchError | undefined;
    const runMarket = async (market: string | undefined, index: number): Promise<void> => {
      const locations = plan.outputs.filter((p) => p.market === market).map((p) => p.location);
      const toStdout = locations[0] === '-';
      const opened: Staged[] = [];
      const claimed: [string, boolean][] = [];
      try {
        const fanout = await fanOut(o, locations, stats);
        const branches: Branch[] = [];
        for (const table of fanout.tables) {
          const sink = await commit.open(table.location, target(plan, table.location));
          opened.push({ sink, encoding: table.encoding, market: market ?? null, rows: table.rows });
          branches.push({ rows: table.rows$, stages: table.encoding.stages, sink });
        }
        // Pages, live or replayed (a replay's markets come from its raw lines: src/plan.ts
        // resolveOptions); one stage makes them albums the same way for both. With {market}
        // outputs a replay reads its inputs once per market, `workers` markets at a time, as the
        // live run fetches them: one pass routed to every market would hold every market's
        // outputs open at once (185 S3 uploads and their part buffers), since a raw landing
        // interleaves the markets that were fetched together.
        const pagesOf = market === undefined ? o.markets : [market];
        const source =
          o.from.length > 0
            ? replaySource(o.from, (location) => destinations.read(location), {
                markets: pagesOf,
                stats,
                fetchedAt: startedAt.toISOString(),
                maxItems: o.maxItems,
              })
            : liveSource({
                ...o,
                ...(o.perMarket ? { concurrency: window } : {}),
                markets: pagesOf,
                stats,
                signal,
                client,
                keepText: raw !== undefined,
                onPage: raw?.page,
              });
        const through: Transform[] = [
          new AlbumsTransform({
            stats,
            check: o.model === 'star' ? checkStar : checkRows(o.columns),
            // A star's dim_album is keyed by id: it always dedupes.
            dedupe: o.dedupe || o.model === 'star',
            onReject,
          }),
        ];
        if (state !== undefined) {
          through.push(
            new StateTracker({
              known: state.entries,
              added,
              today: vars.date,
              counts: stateCounts,
              newOnly: o.newOnly,
              claimed,
            }),
          );
        }
        // The report sees the albums that go on to the rows (after --new-only).
        if (reporter !== undefined) through.push(new Tap((item) => reporter.add(item)));
        await runBranches(source, through, fanout.head, branches, signal);
        staged.push(...opened.map((s) => ({ ...s, index })));
      } catch (caught) {
        await commit.discard(
          opened.map((s) => s.sink),
          caught,
        );
        // Nothing of this market is published: the state must not record its albums.
        unclaim(claimed, added, stateCounts);
        if (fatal !== undefined) return; // stopped because another market failed
        const error = signal.aborted ? abortReason(signal.reason) : caught;
        if (toStdout && isBrokenPipe(error)) {
          outputClosed = true;
          return;
        }
        // stdout on a full disk (`> /dev/full`) is a destination error like any file's.
        const code = (error as { code?: unknown } | null)?.code;
        const failure =
          toStdout && !(error instanceof SpotifyBatchError) && typeof code === 'string'
            ? fileError(error, 'stdout', 'write to')
            : toSpotifyBatchError(error);
        if (o.onMarketError === 'skip' && market !== undefined && MARKET_ERRORS.has(failure.code)) {
          marketsFailed.push({ market, code: failure.code, message: failure.message, index });
          context.onEvent?.({ event: 'market-failed', market, reason: failure.message });
          return;
        }
        // Name the market when the failure is about its pages (not a shared token or sink).
        const url = failure.context.url ?? '';
        if (market !== undefined && new RegExp(`[?&](country|market)=${market}\\b`).test(url)) {
          failure.message = `market ${market}: ${failure.message}`;
          failure.context.market ??= market;
        }
        fatal = failure;
        controller.abort(failure);
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (fatal === undefined && !outputClosed && next < markets.length) {
          const index = next++;
          await runMarket(markets[index], index);
        }
      }),
    );
    if (fatal !== undefined) throw fatal;
    const lastByte = performance.now();
    // Reports and the manifest list markets in the order they were given.
    staged.sort((a, b) => a.index - b.index);
    marketsFailed.sort((a, b) => a.index - b.index);
    const failures = marketsFailed.map(({ index: _, ...failure }) => failure);
    rejects?.writable.end();
    await raw?.end();
    // A reader that left early (`| head`) ends the run cleanly, with nothing else published.
    const publishing = outputClosed
      ? []
      : [
          ...staged.map((s) => s.sink),
          ...(rejects ? [rejects] : []),
          ...(raw ? [raw.sink] : []),
          ...(reportSink ? [reportSink] : []),
        ];
    const describe = (results: SinkResult[]): OutputReport[] =>
      staged.map((s, i) => s.encoding.output(results[i] as SinkResult, s.market, s.rows()));
    // The page is drawn once every data output is staged, and published with them.
    if (reporter !== undefined && reportSink !== undefined && !outputClosed) {
      const html = await reporter.render({
        runId: vars.runId,
        startedAt,
        options: o,
        stats,
        outputs: describe(staged.map((s) => ({ location: s.sink.location }))),
        rejects: plan.rejects ?? null,
        manifest: plan.manifest ?? null,
        report: plan.report as string,
        state: state === undefined ? null : { location: state.location, ...stateCounts },
        marketsFailed: failures,
      });
      reportSink.writable.end(html);
    }
    // The lease keeps other runs of this tool out; a state changed by anything else since it
    // was read fails the run here, before any output is published.
    if (state !== undefined && (await destinations.version(state.location)) !== state.version) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `option --state: ${state.location} changed while this run was going; nothing was published`,
        { context: { path: state.location } },
      );
    }
    // The state is written only when the data goes out with it (not after `| head` closed).
    const written = { dropped: 0, kept: 0 };
    const stateSink =
      state === undefined || outputClosed
        ? undefined
        : await stageState(commit, plan, state, added, vars.date, o.stateTtlDays, written, signal);
    // Every output staged before the commit point (the last parts of rejects, raw and the report
    // may still be uploading, and a signal still cancels them), and a signal that came in while
    // they were staged still wins. After this line, publishing runs to its end (a part-way
    // publish reports itself, see the catch).
    await Promise.all([...publishing, ...(stateSink ? [stateSink] : [])].map((s) => s.staged));
    if (signal.aborted) throw abortReason(signal.reason);
    committing = true;
    let endedAt = new Date();
    const manifest = !outputClosed ? (plan.manifest ?? null) : null;
    const stateSection = (after: SinkResult[]) =>
      state === undefined
        ? {}
        : { state: { location: state.location, version: after[0]?.version ?? null } };
    const published = await commit.publish(publishing, {
      after: stateSink ? [stateSink] : [],
      manifest:
        manifest === null
          ? undefined
          : {
              location: manifest,
              render: (published, after) => {
                endedAt = new Date();
                const outputs = describe(published);
                const body = {
                  runId: vars.runId,
                  startedAt: startedAt.toISOString(),
                  endedAt: endedAt.toISOString(),
                  source: {
                    via: o.via,
                    ...(o.via === 'search' ? { query: o.query } : {}),
                    api: o.apiUrl,
                  },
                  markets: {
                    // A star's three tables hold the same markets: each listed once.
                    done: [
                      ...new Set(
                        outputs.flatMap((out) => (out.market !== null ? [out.market] : o.markets)),
                      ),
                    ],
                    failed: failures,
                  },
                  pages: stats.pages,
                  albums: stats.albums,
                  // What was published (a skipped market's discarded rows are not counted).
                  rows:
                    o.model === 'star' ? stats.rows : outputs.reduce((n, out) => n + out.rows, 0),
                  rejected: stats.rejected,
                  bytes: outputs.reduce((n, out) => n + out.storedBytes, 0),
                  objects: outputs.map(manifestObject),
                  ...stateSection(after),
                };
                return `${JSON.stringify(body, null, 2)}\n`;
              },
            },
    });
    if (manifest === null) endedAt = new Date();
    const outputs = outputClosed ? [] : describe(published.results);
    const first: SinkResult = outputs[0] ?? { location: staged[0]?.sink.location ?? '-' };
    const { bytes, ...counts } = stats;
    return {
      ...counts,
      serializedBytes: bytes,
      storedBytes: outputs.reduce((sum, out) => sum + out.storedBytes, 0),
      totalAlbums: stats.totalAlbums ?? null,
      searchLimit: stats.searchLimit ?? null,
      location: first.location,
      ...(first.etag === undefined ? {} : { etag: first.etag }),
      ...(first.parts === undefined ? {} : { parts: first.parts }),
      runId: vars.runId,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      seconds: Math.round(performance.now() - started) / 1000,
      commitSeconds: Math.round(performance.now() - lastByte) / 1000,
      outputs,
      manifest,
      report: outputClosed ? null : (plan.report ?? null),
      raw: outputClosed ? null : (plan.raw ?? null),
      marketsFailed: failures,
      outputClosed,
      notWritten: outputClosed
        ? [plan.rejects, plan.raw, plan.report, plan.state].filter((l) => l !== undefined)
        : [],
      // Not written when the reader left early (it is in notWritten).
      state:
        state === undefined || outputClosed
          ? null
          : {
              location: state.location,
              new: stateCounts.new,
              seen: stateCounts.seen,
              droppedByTtl: written.dropped,
              ids: written.kept,
              version: published.after[0]?.version ?? null,
              error: stateSink === undefined ? null : (published.afterError?.message ?? null),
            },
    };
  } catch (error) {
    // A signal or another market's failure explains the errors it caused downstream.
    // Once publishing started, its own error says what is out; a signal does not replace it.
    const failure = toSpotifyBatchError(
      signal.aborted && !committing ? abortReason(signal.reason) : error,
    );
    controller.abort(failure);
    throw failure;
  } finally {
    // Nothing of this run may go on after it: stray requests end now, then the pool closes.
    // Leaving the `await using` scope then discards whatever was not published.
    controller.abort();
    reporter?.stop();
    await client.close().catch(() => {});
  }
}

/** The `--report` aggregates, loaded only by a run that asks for a report. */
async function startReporter(
  o: NormalizedOptions,
  date: string,
  stats: RunStats,
  started: number,
): Promise<RunReporter> {
  const { RunReporter } = await import('./report/index.ts');
  return new RunReporter({ date, markets: o.markets, apiUrl: o.apiUrl, stats, started });
}

/** Stages the new state (kept ids and this run's new ones) as one more output of the commit. */
async function stageState(
  commit: Commit,
  plan: Plan,
  state: LoadedState,
  added: StateEntries,
  today: string,
  ttlDays: number,
  counts: { dropped: number; kept: number },
  signal: AbortSignal,
): Promise<StagedSink> {
  const sink = await commit.open(state.location, {
    ...target(plan, state.location),
    // Written only over the version read at the start (or where there was none).
    expect: state.version,
  });
  await pipeline(
    Readable.from(stateLines(state.entries, added, today, ttlDays, counts)),
    sink.writable,
    { signal },
  );
  return sink;
}

interface FanOut {
  /** Where the albums go in. */
  head: Writable;
  tables: { location: string; rows$: Readable; rows: () => number; encoding: Encoding }[];
}

/**
 * The albums → rows stage and the outputs it feeds: the flat model is one branch (the rows
 * transform is both the head and the branch's rows); the star model, three tables under `out`.
 */
async function fanOut(o: NormalizedOptions, locations: string[], stats: RunStats): Promise<FanOut> {
  // The manifest and the report list each output's SHA-256.
  const enc = (columns: readonly Column[]) =>
    encode({ ...o, digest: o.manifest || o.report !== undefined }, columns, stats);
  if (o.model === 'flat') {
    const rows = new RowsTransform({ stats, columns: o.columns });
    return {
      head: rows,
      tables: [
        {
          location: locations[0] as string,
          rows$: rows,
          rows: () => rows.rows,
          encoding: await enc(o.columns),
        },
      ],
    };
  }
  const splitter = new StarSplitter(stats);
  return {
    head: splitter,
    tables: await Promise.all(
      STAR_TABLE_NAMES.map(async (table, i) => ({
        location: locations[i] as string,
        rows$: splitter.outputs[table],
        rows: () => splitter.rows[table],
        encoding: await enc(STAR_TABLES[table]),
      })),
    ),
  };
}

/** Whatever aborted the run, as an ERR_INTERRUPTED error (signals bring their own). */
function abortReason(reason: unknown): SpotifyBatchError {
  if (reason instanceof SpotifyBatchError) return reason;
  const detail = reason instanceof Error ? reason.message : String(reason);
  return new SpotifyBatchError('ERR_INTERRUPTED', `run aborted (${detail})`, { cause: reason });
}

/**
 * The raw landing: one line per page as received (src/sources/replay.ts reads it back), gzipped
 * unless the name ends in .ndjson/.jsonl. Writes wait for the sink, so memory stays one page.
 */
async function openRaw(commit: Commit, plan: Plan, location: string, markets: string[]) {
  const plain = rawIsPlain(location);
  const sink = await commit.open(location, target(plan, location));
  const gzip = plain ? undefined : (await import('node:zlib')).createGzip();
  const head: Writable = gzip ?? sink.writable;
  const piping = gzip === undefined ? Promise.resolve() : pipeline(gzip, sink.writable);
  piping.catch(() => {}); // surfaces through the sink's staged promise and end()
  return {
    sink,
    page: async (page: Page, market: string | undefined, fetchedAt: string) => {
      const line = rawLine(
        {
          url: page.url ?? '',
          market: market ?? null,
          // The run's markets on every line: a replay takes them as its own (readRunMarkets).
          markets,
          offset: page.offset,
          status: 200,
          fetchedAt,
        },
        page.text ?? '',
      );
      if (!head.write(line)) await once(head, 'drain');
    },
    end: async () => {
      head.end();
      await piping;
    },
  };
}

/** Writes each rejected record as one NDJSON line; fails the run past `maxRejects`. */
function rejectHandler(rejects: Writable, maxRejects: number, stats: RunStats): RejectHandler {
  return (record, error) => {
    if (stats.rejected + 1 > maxRejects) {
      throw new SpotifyBatchError(
        'ERR_BAD_RECORD',
        `more than --max-rejects ${maxRejects} bad records; last: ${error.message}`,
        { cause: error, context: error.context },
      );
    }
    rejects.write(
      `${JSON.stringify({ reason: error.message, field: error.context.field ?? null, record })}\n`,
    );
  };
}
