import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Column } from './core/columns.ts';
import { type ErrorCode, SpotifyBatchError, toSpotifyBatchError } from './core/errors.ts';
import {
  type Destination,
  expandOut,
  type NormalizedOptions,
  normalizeOptions,
  type Options,
  parseDestination,
} from './core/options.ts';
import type { Sink, SinkResult } from './core/sink.ts';
import { createStats, type EventListener, type RunStats } from './core/stats.ts';
import { FileSink } from './sinks/file.ts';
import { S3Sink } from './sinks/s3.ts';
import { isBrokenPipe, StdoutSink } from './sinks/stdout.ts';
import { AlbumSource } from './sources/albums.ts';
import { SpotifyClient } from './sources/client.ts';
import { COALESCE_BYTES, Coalescer, createCsvStringifier } from './transforms/csv.ts';
import { DigestTransform } from './transforms/digest.ts';
import { NdjsonSerializer } from './transforms/ndjson.ts';
import { ParquetSerializer } from './transforms/parquet.ts';
import { type RejectHandler, RowsTransform } from './transforms/rows.ts';
import { STAR_TABLE_NAMES, STAR_TABLES, StarSplitter, type StarTable } from './transforms/star.ts';

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

/** One object or file the run wrote. */
export interface OutputReport extends SinkResult {
  /** The market of a per-market output (`{market}` in `out`), else null. */
  market: string | null;
  rows: number;
  /** Serialized bytes (before compression). */
  bytes: number;
  /** Bytes stored (after compression) and their SHA-256: computed when a manifest is written. */
  storedBytes: number | null;
  sha256: string | null;
}

/** A market that failed under `onMarketError: 'skip'`. */
export interface MarketFailure {
  market: string;
  code: ErrorCode;
  message: string;
}

/** What a finished run reports (also the CLI's summary line and JSON report). */
export interface RunReport extends Omit<RunStats, 'totalAlbums' | 'searchLimit'>, SinkResult {
  runId: string;
  startedAt: string;
  endedAt: string;
  totalAlbums: number | null;
  searchLimit: number | null;
  seconds: number;
  outputs: OutputReport[];
  /** Where the manifest went, when one was written. */
  manifest: string | null;
  marketsFailed: MarketFailure[];
  /** stdout only: the reader went away before the end (e.g. `| head`); not an error. */
  outputClosed: boolean;
}

/** Errors that belong to one market (its list, its pages, its records), not to the whole run. */
const MARKET_ERRORS = new Set<ErrorCode>([
  'ERR_SPOTIFY_HTTP',
  'ERR_SPOTIFY_FORBIDDEN',
  'ERR_BAD_PAGE',
  'ERR_BAD_RECORD',
  'ERR_NETWORK',
]);

interface Job {
  /** Markets this output holds, in order. */
  markets: string[];
  /** Set for per-market outputs. */
  market: string | undefined;
}

/**
 * Runs one pull: Spotify → album rows → CSV → destination(s). Resolves with the report once
 * every output is complete and in place; rejects with a {@link SpotifyBatchError} after removing
 * whatever it had written (including per-market outputs that had completed).
 */
export async function run(
  options: Options | NormalizedOptions,
  context: RunContext = {},
): Promise<RunReport> {
  const started = performance.now();
  const startedAt = new Date();
  const env = context.env ?? process.env;
  const o = 'perMarket' in options ? options : normalizeOptions(options, env);
  const stats = context.stats ?? createStats();
  const vars = { date: startedAt.toISOString().slice(0, 10), runId: runIdFor(startedAt) };
  // The run's own controller: a failure anywhere stops every request of the shared client.
  const controller = new AbortController();
  const signal = context.signal
    ? AbortSignal.any([context.signal, controller.signal])
    : controller.signal;
  const client = new SpotifyClient({ ...o, stats, signal, onEvent: context.onEvent });
  const jobs: Job[] = o.perMarket
    ? o.markets.map((market) => ({ markets: [market], market }))
    : [{ markets: o.markets, market: undefined }];
  const done: { sink: Sink; output: OutputReport; index: number }[] = [];
  const marketsFailed: (MarketFailure & { index: number })[] = [];
  let rejects: Sink | undefined;
  let outputClosed = false;
  try {
    rejects = o.rejects === undefined ? undefined : await FileSink.open(o.rejects);
    const onReject = rejects && rejectHandler(rejects, o.maxRejects, stats);
    let fatal: SpotifyBatchError | undefined;
    const runOne = async (job: Job, index: number): Promise<void> => {
      const out = expandOut(o.out, { ...vars, market: job.market });
      // A star model writes under `out` (a folder); only a flat output can be stdout.
      const toStdout = o.model === 'flat' && parseDestination(out).kind === 'stdout';
      try {
        const jobContext = { client, stats, signal, onReject, env, context };
        const outputs =
          o.model === 'star'
            ? await runStarJob(o, out, jobContext)
            : [await runJob(o, job, parseDestination(out), jobContext)];
        done.push(...outputs.map((d) => ({ ...d, index })));
      } catch (caught) {
        if (fatal !== undefined) return; // stopped because another job failed
        const error = signal.aborted ? abortReason(signal.reason) : caught;
        if (toStdout && isBrokenPipe(error)) {
          outputClosed = true;
          return;
        }
        const failure = toSpotifyBatchError(error);
        if (
          o.onMarketError === 'skip' &&
          job.market !== undefined &&
          MARKET_ERRORS.has(failure.code)
        ) {
          marketsFailed.push({
            market: job.market,
            code: failure.code,
            message: failure.message,
            index,
          });
          context.onEvent?.({
            event: 'market-failed',
            market: job.market,
            reason: failure.message,
          });
          return;
        }
        fatal = failure;
        controller.abort(failure);
      }
    };
    // Per-market outputs run up to `concurrency` markets at once (the shared client still bounds
    // the requests in flight), so the API stays busy across market boundaries.
    let next = 0;
    const workers = o.perMarket ? Math.min(o.concurrency, jobs.length) : 1;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (fatal === undefined && !outputClosed && next < jobs.length) {
          const index = next++;
          await runOne(jobs[index] as Job, index);
        }
      }),
    );
    if (fatal !== undefined) throw fatal;
    // Reports and the manifest list markets in the order they were given.
    done.sort((a, b) => a.index - b.index);
    marketsFailed.sort((a, b) => a.index - b.index);
    if (outputClosed) {
      await rejects?.abort(new Error('output closed'));
    } else if (rejects) {
      rejects.writable.end();
      await rejects.commit();
    }
    const endedAt = new Date();
    const outputs = done.map((d) => d.output);
    const manifest =
      o.manifest && !outputClosed
        ? await writeManifest(
            o,
            manifestLocation(o, vars),
            {
              runId: vars.runId,
              startedAt: startedAt.toISOString(),
              endedAt: endedAt.toISOString(),
              source: {
                via: o.via,
                ...(o.via === 'search' ? { query: o.query } : {}),
                api: o.apiUrl,
              },
              markets: {
                done: done.flatMap((d) => jobMarkets(o, d.output)),
                failed: marketsFailed.map(({ index: _, ...failure }) => failure),
              },
              pages: stats.pages,
              albums: stats.albums,
              rows: stats.rows,
              rejected: stats.rejected,
              bytes: stats.bytes,
              objects: outputs.map(manifestObject),
            },
            env,
          )
        : null;
    const first: SinkResult = outputs[0] ?? { location: '-' };
    return {
      ...stats,
      totalAlbums: stats.totalAlbums ?? null,
      searchLimit: stats.searchLimit ?? null,
      location: first.location,
      ...(first.etag === undefined ? {} : { etag: first.etag }),
      ...(first.parts === undefined ? {} : { parts: first.parts }),
      runId: vars.runId,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      seconds: Math.round(performance.now() - started) / 1000,
      outputs,
      manifest,
      marketsFailed: marketsFailed.map(({ index: _, ...failure }) => failure),
      outputClosed,
    };
  } catch (error) {
    controller.abort(error);
    // All or nothing: outputs of this run that had completed are taken back.
    await Promise.all([...done.map((d) => d.sink.remove().catch(() => {})), rejects?.abort(error)]);
    throw toSpotifyBatchError(error);
  } finally {
    // Nothing of this run may go on after it: stray requests end now, then the pool closes.
    controller.abort();
    await Promise.all(done.map((d) => d.sink.release()));
    await client.close().catch(() => {});
  }
}

interface JobContext {
  client: SpotifyClient;
  stats: RunStats;
  signal: AbortSignal;
  onReject: RejectHandler | undefined;
  env: NodeJS.ProcessEnv;
  context: RunContext;
}

/** One output: its own source, transforms and sink; committed only if all of it succeeded. */
async function runJob(
  o: NormalizedOptions,
  job: Job,
  destination: Destination,
  { client, stats, signal, onReject, env, context }: JobContext,
): Promise<{ sink: Sink; output: OutputReport }> {
  const sink = await openSink(destination, o, env, context, contentType(o));
  const rows = new RowsTransform({ stats, columns: o.columns, dedupe: o.dedupe, onReject });
  const encoding = encode(o, o.columns, stats);
  try {
    const stages = [
      new AlbumSource({ ...o, markets: job.markets, stats, signal, client }),
      rows,
      ...encoding.stages,
      sink.writable,
    ];
    await pipeline(stages as unknown as [NodeJS.ReadableStream, Writable], { signal });
    const result = await sink.commit();
    return { sink, output: encoding.output(result, job.market ?? null, rows.rows) };
  } catch (error) {
    await sink.abort(signal.aborted ? abortReason(signal.reason) : error);
    throw error;
  }
}

/**
 * The star schema from one pass: the album stream feeds a splitter whose three row streams each
 * go through their own serializer into their own sink. All or none: a failure anywhere stops
 * all three and aborts them; the tables are committed only when all three streams finished, and
 * a failed commit takes back the ones already committed.
 */
async function runStarJob(
  o: NormalizedOptions,
  prefix: string,
  { client, stats, signal, onReject, env, context }: JobContext,
): Promise<{ sink: Sink; output: OutputReport }[]> {
  const ext = `${o.format}${o.gzip ? '.gz' : ''}`;
  const sinks: { table: StarTable; sink: Sink }[] = [];
  const committed: { sink: Sink; output: OutputReport }[] = [];
  const job = new AbortController();
  const jobSignal = AbortSignal.any([signal, job.signal]);
  let first: unknown;
  const fail = (error: unknown): never => {
    first ??= error;
    job.abort(error);
    throw error;
  };
  try {
    for (const table of STAR_TABLE_NAMES) {
      const destination = parseDestination(`${prefix}${table}.${ext}`);
      sinks.push({ table, sink: await openSink(destination, o, env, context, contentType(o)) });
    }
    const splitter = new StarSplitter(stats, onReject);
    const branches = sinks.map(({ table, sink }) => {
      const encoding = encode(o, STAR_TABLES[table], stats);
      const stages = [splitter.outputs[table], ...encoding.stages, sink.writable];
      const done = pipeline(stages as unknown as [NodeJS.ReadableStream, Writable], {
        signal: jobSignal,
      });
      return { table, sink, encoding, done: done.catch(fail) };
    });
    const source = new AlbumSource({ ...o, stats, signal: jobSignal, client });
    const feeding = pipeline(source, splitter, { signal: jobSignal }).catch(fail);
    const settled = await Promise.allSettled([feeding, ...branches.map((b) => b.done)]);
    if (settled.some((r) => r.status === 'rejected')) throw first;
    for (const branch of branches) {
      const result = await branch.sink.commit();
      committed.push({
        sink: branch.sink,
        output: branch.encoding.output(result, null, splitter.rows[branch.table]),
      });
    }
    return committed;
  } catch (error) {
    const reason = signal.aborted ? abortReason(signal.reason) : error;
    await Promise.all([
      ...committed.map((c) => c.sink.remove().catch(() => {})),
      ...sinks
        .filter((s) => !committed.some((c) => c.sink === s.sink))
        .map((s) => s.sink.abort(reason)),
    ]);
    throw error;
  }
}

/**
 * rows → the bytes stored: the format's serializer, 64 KiB coalescing (large enough chunks for
 * lib-storage), gzip when asked, and the digest when a manifest will list the output.
 */
function encode(o: NormalizedOptions, columns: readonly Column[], stats: RunStats) {
  const coalescer = new Coalescer(stats);
  const digest = o.manifest ? new DigestTransform() : undefined;
  const stages: Transform[] = [
    serializer(o, columns),
    coalescer,
    ...(o.gzip ? [createGzip({ chunkSize: COALESCE_BYTES })] : []),
    ...(digest ? [digest] : []),
  ];
  const output = (result: SinkResult, market: string | null, rows: number): OutputReport => ({
    ...result,
    market,
    rows,
    bytes: coalescer.bytes,
    storedBytes: digest?.bytes ?? null,
    sha256: digest?.sha256 ?? null,
  });
  return { stages, output };
}

/** rows → bytes in the run's format. */
function serializer(o: NormalizedOptions, columns: readonly Column[]): Transform {
  switch (o.format) {
    case 'csv':
      return createCsvStringifier({ escapeFormulas: o.csvEscapeFormulas, columns });
    case 'ndjson':
      return new NdjsonSerializer(columns);
    case 'parquet':
      return new ParquetSerializer(columns, o.parquetRowGroupRows);
  }
}

/**
 * Content-Type for S3. Compressed outputs are stored as `application/gzip` without a
 * Content-Encoding header: with `Content-Encoding: gzip`, HTTP clients (browsers, curl
 * --compressed, some S3 readers) decompress on download while Athena, Spark, DuckDB and
 * `aws s3 cp` go by the `.gz` name and decompress again.
 */
function contentType(o: NormalizedOptions): string {
  if (o.gzip) return 'application/gzip';
  return {
    csv: 'text/csv; charset=utf-8',
    ndjson: 'application/x-ndjson',
    parquet: 'application/vnd.apache.parquet',
  }[o.format];
}

/** An output as the manifest lists it: `bytes` and `sha256` of what was stored. */
function manifestObject({ location, market, rows, storedBytes, sha256, etag }: OutputReport) {
  return {
    location,
    market,
    rows,
    bytes: storedBytes,
    sha256,
    ...(etag === undefined ? {} : { etag }),
  };
}

/** Markets an output holds, for the manifest. */
function jobMarkets(o: NormalizedOptions, output: OutputReport): string[] {
  return output.market !== null ? [output.market] : o.markets;
}

function runIdFor(date: Date): string {
  return `${date.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z-${randomBytes(3).toString('hex')}`;
}

/**
 * `_manifest.json` beside the data: in the directory (or key prefix) that holds every output —
 * for `s3://b/dt={date}/market={market}/albums.csv`, in `s3://b/dt=…/`.
 */
function manifestLocation(o: NormalizedOptions, vars: { date: string; runId: string }): string {
  const marker = '\u0000';
  const expanded = expandOut(o.out, { ...vars, market: marker });
  const fixed = expanded.includes(marker) ? expanded.slice(0, expanded.indexOf(marker)) : expanded;
  const dir = fixed.slice(0, fixed.lastIndexOf('/') + 1);
  if (/^s3:\/\//i.test(fixed)) return `${dir}_manifest.json`;
  return posix.join(dir === '' ? '.' : dir, '_manifest.json');
}

async function writeManifest(
  o: NormalizedOptions,
  location: string,
  body: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const sink = await openSink(parseDestination(location), o, env, {}, 'application/json');
  try {
    sink.writable.end(`${JSON.stringify(body, null, 2)}\n`);
    await sink.commit();
    return location;
  } catch (error) {
    await sink.abort(error);
    throw error;
  } finally {
    await sink.release();
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
  destination: Destination,
  o: NormalizedOptions,
  env: NodeJS.ProcessEnv,
  context: RunContext,
  contentType = 'text/csv; charset=utf-8',
): Promise<Sink> {
  switch (destination.kind) {
    case 'stdout':
      return new StdoutSink(context.stdout as NodeJS.WritableStream & Writable);
    case 'file':
      // Templated outputs name partitions (dt=…/market=…) that do not exist yet.
      return FileSink.open(destination.path, {
        createDirs: /\{(date|run_id|market)\}/.test(o.out),
      });
    case 's3':
      return S3Sink.open({
        ...o.s3,
        bucket: destination.bucket,
        key: destination.key,
        contentType,
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
        { cause: error, context: error.context },
      );
    }
    rejects.writable.write(
      `${JSON.stringify({ reason: error.message, field: error.context.field ?? null, record })}\n`,
    );
  };
}
