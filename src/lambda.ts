/**
 * AWS Lambda handler (`spotify-batch/lambda`): one pull per invocation, returning the run report.
 * It stops itself a few seconds before Lambda's deadline so every staged output is discarded
 * cleanly rather than frozen mid-way.
 *
 * Configuration: the event's `options` (the library's {@link Options}) alone suffice; the
 * function's environment can set the options a scheduled pull needs, and the event overrides it:
 *
 * | variable | option |
 * | --- | --- |
 * | SPOTIFY_BATCH_OUT | out (e.g. s3://bucket/dt={date}/market={market}/albums.csv) |
 * | SPOTIFY_BATCH_MARKET | markets (comma list, or all) |
 * | SPOTIFY_BATCH_FORMAT, SPOTIFY_BATCH_GZIP (true/false) | format, gzip |
 * | SPOTIFY_BATCH_MODEL | model (flat or star) |
 * | SPOTIFY_BATCH_COLUMNS | columns (comma list) |
 * | SPOTIFY_BATCH_VIA, SPOTIFY_BATCH_QUERY | via, query |
 * | SPOTIFY_BATCH_LIMIT, SPOTIFY_BATCH_CONCURRENCY, SPOTIFY_BATCH_MAX_ITEMS | limit, concurrency, maxItems |
 * | SPOTIFY_BATCH_REJECTS, SPOTIFY_BATCH_ON_MARKET_ERROR | rejects, onMarketError |
 * | SPOTIFY_BATCH_DATE | date (YYYY-MM-DD: a backfill's `{date}`) |
 *
 * plus what the CLI reads (SPOTIFY_CLIENT_ID/SECRET, SPOTIFY_API_URL, AWS_REGION,
 * AWS_ENDPOINT_URL_S3, …). Every value is validated as the CLI's flags are.
 */
import { SpotifyBatchError, usageError } from './core/errors.ts';
import { type Options, wholeNumber } from './core/options.ts';
import type { RunEvent } from './core/stats.ts';
import { type RunReport, resolveOptions, run } from './pipeline.ts';

export interface LambdaEvent {
  options?: Options;
}

/** The part of Lambda's context object the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/**
 * Retries, rate limits, skipped markets, an upload S3 would not abort: one JSON line each on
 * stderr, which Lambda sends to CloudWatch Logs, as the CLI's `--log-format json` writes them.
 */
function logEvent(e: RunEvent): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
}

/** Time kept back from Lambda's deadline for discarding the staged outputs. */
const ABORT_MARGIN_MS = 10_000;

/** The options the environment sets (see the table above); unset variables set nothing. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): Options {
  const get = (name: string) => {
    const value = env[`SPOTIFY_BATCH_${name}`];
    return value === undefined || value === '' ? undefined : value;
  };
  const list = (name: string) => get(name)?.split(',');
  const number = (name: string) => wholeNumber(`SPOTIFY_BATCH_${name}`, get(name));
  const gzip = get('GZIP');
  if (gzip !== undefined && gzip !== 'true' && gzip !== 'false') {
    throw usageError(`SPOTIFY_BATCH_GZIP must be true or false, got ${gzip}`);
  }
  const options = {
    out: get('OUT'),
    markets: list('MARKET'),
    format: get('FORMAT'),
    gzip: gzip === undefined ? undefined : gzip === 'true',
    model: get('MODEL'),
    columns: list('COLUMNS'),
    via: get('VIA'),
    query: get('QUERY'),
    limit: number('LIMIT'),
    concurrency: number('CONCURRENCY'),
    maxItems: number('MAX_ITEMS'),
    rejects: get('REJECTS'),
    onMarketError: get('ON_MARKET_ERROR'),
    date: get('DATE'),
  };
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Options;
}

export async function handler(
  event: LambdaEvent = {},
  context?: LambdaContext,
): Promise<RunReport> {
  const merged = { ...optionsFromEnv(process.env), ...event.options };
  // A function writes somewhere: stdout would go to its log.
  if (merged.out === undefined || merged.out === '-') {
    throw new SpotifyBatchError(
      'ERR_CONFIG',
      "name the destination: SPOTIFY_BATCH_OUT or the event's options.out, e.g. s3://bucket/albums.csv",
    );
  }
  const options = await resolveOptions(merged, process.env);
  const remaining = context?.getRemainingTimeInMillis();
  if (remaining === undefined) return run(options, { onEvent: logEvent });
  const controller = new AbortController();
  const timer = setTimeout(
    () => {
      controller.abort(
        new SpotifyBatchError(
          'ERR_INTERRUPTED',
          'stopped before the Lambda deadline; nothing was published',
        ),
      );
    },
    Math.max(1_000, remaining - ABORT_MARGIN_MS),
  );
  try {
    return await run(options, { signal: controller.signal, onEvent: logEvent });
  } finally {
    clearTimeout(timer);
  }
}
