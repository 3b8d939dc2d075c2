import type { PublishedRun } from '../commit/publish.ts';
import type { SinkResult } from '../core/sink.ts';
import type { RunStats } from '../core/stats.ts';
import type { Plan } from '../plan/plan.ts';
import type { OutputReport } from '../transforms/encode.ts';
import type { StateCounts } from '../transforms/state.ts';
import type { Pulled } from './market.ts';
import type { MarketFailure } from './markets.ts';

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

/** What the summary uses of the run (src/run/scope.ts's RunScope is one). */
interface SummaryScope {
  readonly stats: RunStats;
  readonly vars: { runId: string };
  readonly startedAt: Date;
  /** `performance.now()` at the start. */
  readonly started: number;
}

/** The report of a run that published (or, `closed`, ended early with nothing). */
export function summarize(
  { stats, vars, startedAt, started }: SummaryScope,
  plan: Plan,
  pulled: Pick<Pulled, 'describe' | 'locations' | 'failed' | 'closed'>,
  published: PublishedRun,
  {
    lastByte,
    state,
  }: {
    /** `performance.now()` when the last byte was staged. */
    lastByte: number;
    /** Albums new and seen, and ids the state dropped by age and kept as written. */
    state: { counts: StateCounts; written: { dropped: number; kept: number } } | undefined;
  },
): RunReport {
  const outputClosed = pulled.closed;
  const outputs = outputClosed ? [] : pulled.describe(published.results);
  const stateCounts = state && { ...state.counts, ...state.written };
  // The first data output is what the one-line summary names when nothing is out.
  const first: SinkResult = outputs[0] ?? { location: pulled.locations[0] ?? '-' };
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
    endedAt: published.endedAt.toISOString(),
    seconds: Math.round(performance.now() - started) / 1000,
    commitSeconds: Math.round(performance.now() - lastByte) / 1000,
    outputs,
    manifest: outputClosed ? null : (plan.manifest ?? null),
    report: outputClosed ? null : (plan.report ?? null),
    raw: outputClosed ? null : (plan.raw ?? null),
    marketsFailed: pulled.failed,
    outputClosed,
    notWritten: outputClosed
      ? [plan.rejects, plan.raw, plan.report, plan.state].filter((l) => l !== undefined)
      : [],
    // Not written when the reader left early (it is in notWritten).
    state:
      plan.state === undefined || stateCounts === undefined || outputClosed
        ? null
        : {
            location: plan.state,
            new: stateCounts.new,
            seen: stateCounts.seen,
            droppedByTtl: stateCounts.dropped,
            ids: stateCounts.kept,
            version: published.state?.version ?? null,
            error: published.stateError,
          },
  };
}
