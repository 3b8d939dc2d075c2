/**
 * AWS Lambda handler (`spotify-batch/lambda`): one pull per invocation, configured by the
 * function's environment, returning the run report. It stops itself a few seconds before
 * Lambda's deadline so the multipart upload is aborted cleanly rather than frozen mid-way.
 *
 * Environment: SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET (required), SPOTIFY_BATCH_OUT (required,
 * e.g. s3://bucket/spotify/albums.csv), and optionally SPOTIFY_BATCH_VIA, SPOTIFY_BATCH_QUERY,
 * SPOTIFY_BATCH_LIMIT, SPOTIFY_BATCH_CONCURRENCY, SPOTIFY_BATCH_MAX_ITEMS, plus what the CLI
 * reads (SPOTIFY_API_URL, AWS_REGION, AWS_ENDPOINT_URL_S3, …). An event may carry `options`
 * that override the environment.
 */
import { SpotifyBatchError } from './core/errors.ts';
import type { Options, Via } from './core/options.ts';
import { type RunReport, run } from './pipeline.ts';

export interface LambdaEvent {
  options?: Options;
}

/** The part of Lambda's context object the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/** Time kept back from Lambda's deadline for aborting the upload. */
const ABORT_MARGIN_MS = 10_000;

export function optionsFromEnv(env: NodeJS.ProcessEnv): Options {
  const out = env.SPOTIFY_BATCH_OUT;
  if (!out) {
    throw new SpotifyBatchError(
      'ERR_CONFIG',
      'SPOTIFY_BATCH_OUT must name the destination, e.g. s3://bucket/albums.csv',
    );
  }
  const options: Options = { out };
  const number = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value))
      throw new SpotifyBatchError('ERR_CONFIG', `${name} must be a number, got ${raw}`);
    return value;
  };
  if (env.SPOTIFY_BATCH_VIA) options.via = env.SPOTIFY_BATCH_VIA as Via;
  if (env.SPOTIFY_BATCH_QUERY) options.query = env.SPOTIFY_BATCH_QUERY;
  const limit = number('SPOTIFY_BATCH_LIMIT');
  if (limit !== undefined) options.limit = limit;
  const concurrency = number('SPOTIFY_BATCH_CONCURRENCY');
  if (concurrency !== undefined) options.concurrency = concurrency;
  const maxItems = number('SPOTIFY_BATCH_MAX_ITEMS');
  if (maxItems !== undefined) options.maxItems = maxItems;
  return options;
}

export async function handler(
  event: LambdaEvent = {},
  context?: LambdaContext,
): Promise<RunReport> {
  const options = { ...optionsFromEnv(process.env), ...event.options };
  const remaining = context?.getRemainingTimeInMillis();
  if (remaining === undefined) return run(options);
  const controller = new AbortController();
  const timer = setTimeout(
    () => {
      controller.abort(
        new SpotifyBatchError(
          'ERR_INTERRUPTED',
          'stopped before the Lambda deadline; nothing was written',
        ),
      );
    },
    Math.max(1_000, remaining - ABORT_MARGIN_MS),
  );
  try {
    return await run(options, { signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}
