import { pipeline } from 'node:stream/promises';
import { SpotifyBatchError, toSpotifyBatchError } from './core/errors.ts';
import { type NormalizedOptions, normalizeOptions, type Options } from './core/options.ts';
import type { Sink, SinkResult } from './core/sink.ts';
import { createStats, type EventListener, type RunStats } from './core/stats.ts';
import { FileSink } from './sinks/file.ts';
import { S3Sink } from './sinks/s3.ts';
import { isBrokenPipe, StdoutSink } from './sinks/stdout.ts';
import { AlbumSource } from './sources/albums.ts';
import { Coalescer, createCsvStringifier } from './transforms/csv.ts';
import { type RejectHandler, RowsTransform } from './transforms/rows.ts';

export interface RunContext {
  /** Aborting stops the run: requests are cancelled, the destination is cleaned up. */
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

/** What a finished run reports (also the CLI's summary line and JSON report). */
export interface RunReport extends Omit<RunStats, 'totalAlbums' | 'searchLimit'>, SinkResult {
  totalAlbums: number | null;
  searchLimit: number | null;
  seconds: number;
  /** stdout only: the reader went away before the end (e.g. `| head`); not an error. */
  outputClosed: boolean;
}

/**
 * Runs one pull: Spotify → album rows → CSV → destination. Resolves with the report once the
 * output is complete and in place; rejects with a {@link SpotifyBatchError} after removing
 * whatever it had started to write.
 */
export async function run(
  options: Options | NormalizedOptions,
  context: RunContext = {},
): Promise<RunReport> {
  const started = performance.now();
  const env = context.env ?? process.env;
  const normalized = 'destination' in options ? options : normalizeOptions(options, env);
  const signal = context.signal ?? new AbortController().signal;
  const stats = context.stats ?? createStats();

  const sink = await openSink(normalized, env, context);
  let rejects: Sink | undefined;
  try {
    rejects =
      normalized.rejects === undefined ? undefined : await FileSink.open(normalized.rejects);
    const source = new AlbumSource({ ...normalized, stats, signal, onEvent: context.onEvent });
    const rows = new RowsTransform(
      stats,
      rejects && rejectHandler(rejects, normalized.maxRejects, stats),
    );
    await pipeline(
      source,
      rows,
      createCsvStringifier({ escapeFormulas: normalized.csvEscapeFormulas }),
      new Coalescer(stats),
      sink.writable,
      { signal },
    );
    rejects?.writable.end();
    const result = await sink.commit();
    if (rejects) await rejects.commit();
    return report(stats, result, started, false);
  } catch (caught) {
    const error = signal.aborted ? abortReason(signal.reason) : caught;
    if (sink instanceof StdoutSink && isBrokenPipe(error)) {
      await rejects?.abort(error);
      return report(stats, { location: '-' }, started, true);
    }
    await Promise.all([sink.abort(error), rejects?.abort(error)]);
    throw toSpotifyBatchError(error);
  }
}

/** Whatever aborted the run, as an ERR_INTERRUPTED error (signals bring their own). */
function abortReason(reason: unknown): SpotifyBatchError {
  if (reason instanceof SpotifyBatchError) return reason;
  const detail = reason instanceof Error ? reason.message : String(reason);
  return new SpotifyBatchError('ERR_INTERRUPTED', `run aborted (${detail}); nothing was written`, {
    cause: reason,
  });
}

async function openSink(
  options: NormalizedOptions,
  env: NodeJS.ProcessEnv,
  context: RunContext,
): Promise<Sink> {
  const destination = options.destination;
  switch (destination.kind) {
    case 'stdout':
      return new StdoutSink(
        context.stdout as NodeJS.WritableStream & import('node:stream').Writable,
      );
    case 'file':
      return FileSink.open(destination.path);
    case 's3':
      return S3Sink.open({
        ...options.s3,
        bucket: destination.bucket,
        key: destination.key,
        contentType: 'text/csv; charset=utf-8',
        env,
      });
  }
}

/** Writes each rejected record as one NDJSON line; fails the run past `maxRejects`. */
function rejectHandler(rejects: Sink, maxRejects: number, stats: RunStats): RejectHandler {
  return (record, error) => {
    if (stats.rejected + 1 > maxRejects) {
      throw new SpotifyBatchError(
        'ERR_BAD_RECORD',
        `more than --max-rejects ${maxRejects} bad records; last: ${error.message}`,
        {
          cause: error,
          context: error.context,
        },
      );
    }
    rejects.writable.write(
      `${JSON.stringify({ reason: error.message, field: error.context.field ?? null, record })}\n`,
    );
  };
}

function report(
  stats: RunStats,
  result: SinkResult,
  started: number,
  outputClosed: boolean,
): RunReport {
  return {
    ...stats,
    totalAlbums: stats.totalAlbums ?? null,
    searchLimit: stats.searchLimit ?? null,
    ...result,
    seconds: Math.round(performance.now() - started) / 1000,
    outputClosed,
  };
}
